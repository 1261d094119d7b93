"""`branch`: route the run. `on` is an expression; the steps of the case its value
names run, the steps of the other cases are skipped (and so is what depends only on
them)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from podium.core.errors import did_you_mean
from podium.core.recipe import templates
from podium.core.recipe.schema import Recipe, StepBase
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.registry import Problems, StepKind, register


class BranchStep(StepBase):
    """Pick which downstream steps run: `on` is an expression, `cases` map its value to
    steps; the steps of the other cases are skipped, and so is what depends only on them."""

    kind: Literal["branch"]
    on: str = Field(description="Expression, e.g. steps.triage.label")
    cases: dict[str, list[str]]
    default: list[str] = Field(default_factory=list)


def _case_key(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict) and "label" in value:  # a classify output
        value = value["label"]
    return str(value).strip()


async def run_branch(step: BranchStep, ctx: StepContext) -> StepResult:
    """Evaluate `on` and pick the matching case (exact, then ignoring case), else default."""
    value = templates.evaluate(step.on, ctx.values, what=f"{ctx.step_id}.on")
    key = _case_key(value)
    case = key if key in step.cases else next(
        (c for c in step.cases if c.lower() == key.lower()), None)
    chosen = step.cases[case] if case is not None else step.default
    output = {"value": value, "case": case if case is not None else "default",
              "chosen": list(chosen)}
    return StepResult(output)


def targets(step: BranchStep) -> set[str]:
    """Every step some case (or the default) chooses."""
    out: set[str] = set(step.default)
    for names in step.cases.values():
        out.update(names)
    return out


def check(recipe: Recipe, sid: str, step: BranchStep) -> tuple[set[str], Problems]:
    """Each case names known steps other than the branch itself."""
    problems: Problems = []
    known = set(recipe.steps)
    # A case may itself be called "default": keep it apart from the `default` field.
    groups: list[tuple[tuple[str, ...], list[str]]] = [
        (("steps", sid, "cases", case), names) for case, names in step.cases.items()]
    groups.append((("steps", sid, "default"), step.default))
    for loc, names in groups:
        for name in names:
            if name not in known:
                problems.append((loc, f"unknown step '{name}'", did_you_mean(
                    name, known, "known steps: " + ", ".join(sorted(known)))))
            elif name == sid:
                problems.append((loc, "a branch cannot choose itself",
                                 "name the steps that should run after it"))
    problems.extend(_check_labels(recipe, sid, step))
    return set(), problems


def _check_labels(recipe: Recipe, sid: str, step: BranchStep) -> Problems:
    """Cases of a branch on a classify step's label must be among its labels (matched
    as the run matches them, ignoring case): a misspelt case would never be chosen,
    and its messages would quietly go to the default."""
    try:
        tree = templates.parse(step.on, expression=True)
    except templates.TemplateSyntaxError:
        return []  # reported with the expression's other problems
    target = _labelled_step(tree, recipe)
    if target is None:
        return []
    name, labels = target
    known = {label.lower() for label in labels}
    return [(("steps", sid, "cases", case),
             f"case '{case}' is not a label of '{name}', so it is never chosen",
             did_you_mean(case, labels, "labels: " + ", ".join(labels)))
            for case in step.cases if case.lower() not in known]


def _labelled_step(tree: Any, recipe: Recipe) -> tuple[str, list[str]] | None:
    """(step, its labels) when `on` is `steps.<classify step>` or `.label` of one."""
    from jinja2 import nodes

    body = tree.body[0].nodes[0] if tree.body and isinstance(tree.body[0], nodes.Output) \
        and len(tree.body[0].nodes) == 1 else None
    if isinstance(body, nodes.Getattr) and body.attr == "label":
        body = body.node
    if not (isinstance(body, nodes.Getattr) and isinstance(body.node, nodes.Name)
            and body.node.name == "steps"):
        return None
    target = recipe.steps.get(body.attr)
    labels = getattr(target, "labels", None) if target is not None and \
        target.kind == "classify" else None
    return (body.attr, list(labels)) if labels else None


def chosen(output: Any) -> frozenset[str]:
    """The steps a stored branch output let run."""
    return frozenset(output.get("chosen", ())) if isinstance(output, dict) else frozenset()


KIND = register(StepKind("branch", BranchStep, run_branch, expressions=("on",), check=check,
                         governs=targets, chosen=chosen,
                         fields=lambda step, recipe: frozenset({"value", "case", "chosen"})))
