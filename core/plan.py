"""Steps to a DAG: dependencies, order, and what lies downstream of what.

A step depends on the steps in its `needs`, on every step its templates and
expressions refer to (`steps.<id>`), and on the `branch` step that governs it.
`check` finds every problem of references and cycles; `build` returns the plan.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core import templates

if TYPE_CHECKING:
    from core.recipe import Recipe

# Step ids must be names Jinja can follow: steps.<id>.
STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Problem:
    """A reference or structure problem at a key path of the recipe."""

    loc: tuple[Any, ...]
    message: str
    hint: str | None = None


@dataclass
class Plan:
    """The DAG of a recipe's steps."""

    order: list[str]
    deps: dict[str, set[str]]
    dependents: dict[str, set[str]] = field(default_factory=dict)
    governed_by: dict[str, str] = field(default_factory=dict)  # step -> branch choosing it

    def descendants(self, step: str) -> set[str]:
        """Every step downstream of `step` (not including it)."""
        seen: set[str] = set()
        todo = list(self.dependents.get(step, ()))
        while todo:
            s = todo.pop()
            if s not in seen:
                seen.add(s)
                todo.extend(self.dependents.get(s, ()))
        return seen


def template_fields(step: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...],
                                                                          str, bool]]:
    """(key path, source, is_expression) of every template or expression of a step."""
    out: list[tuple[tuple[Any, ...], str, bool]] = []
    kind = step.kind
    text_fields = {
        "llm": ("prompt", "system"),
        "classify": ("input", "instructions", "system"),
        "template": ("template",),
        "ensemble": ("prompt", "system"),
        "review": ("instructions",),
    }.get(kind, ())
    for name in text_fields:
        value = getattr(step, name, None)
        if value:
            out.append((prefix + (name,), value, False))
    if kind == "branch":
        out.append((prefix + ("on",), step.on, True))
    if kind == "review" and step.when:
        out.append((prefix + ("when",), step.when, True))
    if kind == "map":
        out.append((prefix + ("over",), step.over, True))
        out.extend(template_fields(step.step, prefix + ("step",)))
    return out


def check(recipe: Recipe) -> list[Problem]:
    """Every reference and cycle problem in `recipe`; empty when it is sound."""
    problems: list[Problem] = []
    deps = _dependencies(recipe, problems)
    _check_defaults(recipe, problems)
    for name, expr in recipe.outputs.items():
        _check_refs(recipe, ("outputs", name), expr, True, set(), problems, allow_item=False)
    if not problems:
        cycle = _find_cycle(deps)
        if cycle:
            problems.append(Problem(("steps", cycle[0]), "cycle: " + " -> ".join(cycle),
                                    "remove one of these references or `needs` entries"))
    return problems


def _check_defaults(recipe: Recipe, problems: list[Problem]) -> None:
    """Each input's default must already be of its type (files are read at run time)."""
    from pathlib import Path

    from core.errors import InputError
    from core.inputs import convert

    for name, spec in recipe.inputs.items():
        if spec.default is None or spec.type == "file":
            continue
        try:
            convert(name, spec, spec.default, Path.cwd())
        except InputError as e:
            problems.append(Problem(("inputs", name, "default"), f"default: {e.message}",
                                    f"give a {spec.type} default, or change `type`"))


def build(recipe: Recipe) -> Plan:
    """The plan of a recipe that `check` found sound."""
    problems: list[Problem] = []
    deps = _dependencies(recipe, problems, compile=False)  # check() did the rest
    order = _topological(deps, list(recipe.steps))
    dependents: dict[str, set[str]] = {s: set() for s in recipe.steps}
    for s, ds in deps.items():
        for d in ds:
            dependents[d].add(s)
    governed: dict[str, str] = {}
    for sid, step in recipe.steps.items():
        if step.kind == "branch":
            for target in _branch_targets(step):
                governed[target] = sid
    return Plan(order, deps, dependents, governed)


def _branch_targets(step: Any) -> set[str]:
    targets: set[str] = set(step.default)
    for names in step.cases.values():
        targets.update(names)
    return targets


def _dependencies(recipe: Recipe, problems: list[Problem], *,
                  compile: bool = True) -> dict[str, set[str]]:
    deps: dict[str, set[str]] = {}
    known = set(recipe.steps)
    for sid, step in recipe.steps.items():
        if not STEP_ID.fullmatch(sid):
            problems.append(Problem(("steps", sid), f"step id '{sid}' is not a valid name",
                                    "use letters, digits and underscores, e.g. "
                                    f"'{_identifier(sid)}'"))
        mine: set[str] = set()
        for i, need in enumerate(step.needs):
            if need not in known:
                problems.append(_unknown("step", need, known, ("steps", sid, "needs", i)))
            elif need == sid:
                problems.append(Problem(("steps", sid, "needs"), "a step cannot need itself",
                                        f"remove '{sid}' from its own needs"))
            else:
                mine.add(need)
        if step.kind == "review":
            mine |= _check_review(recipe, sid, step, problems)
        for loc, source, is_expr in template_fields(step, ("steps", sid)):
            in_map = "step" in loc[2:3]
            mine |= _check_refs(recipe, loc, source, is_expr, {sid}, problems,
                                allow_item=in_map, compile=compile)
        mine |= _check_verify(recipe, sid, step, problems, compile)
        deps[sid] = mine
    for sid, step in recipe.steps.items():
        if step.kind != "branch":
            continue
        # A case may itself be called "default": keep it apart from the `default` field.
        groups: list[tuple[tuple[str, ...], list[str]]] = [
            (("steps", sid, "cases", case), names) for case, names in step.cases.items()]
        groups.append((("steps", sid, "default"), step.default))
        for loc_base, names in groups:
            for name in names:
                if name not in known:
                    problems.append(_unknown("step", name, known, loc_base))
                elif name == sid:
                    problems.append(Problem(loc_base, "a branch cannot choose itself",
                                            "name the steps that should run after it"))
                else:
                    deps.setdefault(name, set()).add(sid)
    return deps


def _check_verify(recipe: Recipe, sid: str, step: Any, problems: list[Problem],
                  compile: bool) -> set[str]:
    """A cascade's `verify` is an expression that may also read `answer`; it means
    something only when the call is a cascade."""
    found: set[str] = set()
    calls: list[tuple[tuple[Any, ...], Any]] = [(("steps", sid), step)]
    if step.kind == "map":
        calls.append((("steps", sid, "step"), step.step))
    for loc, call in calls:
        source = getattr(call, "verify", None)
        if not source:
            continue
        if call.route == "cascade" and call.model:
            problems.append(Problem(loc + ("verify",), f"model = \"{call.model}\" pins the "
                                    "model, so there is no cascade for verify to check",
                                    "remove model (the cascade picks local, then remote), or "
                                    "remove verify"))
            continue
        if call.route != "cascade":
            problems.append(Problem(loc + ("verify",), "verify only applies to route = "
                                    f"\"cascade\" (this call's route is \"{call.route}\")",
                                    'set route = "cascade", or remove verify'))
            continue
        found |= _check_refs(recipe, loc + ("verify",), source, True, {sid}, problems,
                             allow_item=False, compile=compile,  # answer is the item's
                             extra=frozenset({"answer"}))
    return found


def _check_review(recipe: Recipe, sid: str, step: Any, problems: list[Problem]) -> set[str]:
    """A gate depends on the step it reviews, which must be able to do what is asked."""
    from core.recipe import MODEL_KINDS

    loc = ("steps", sid, "of")
    target = recipe.steps.get(step.of)
    if target is None:
        problems.append(_unknown("step", step.of, set(recipe.steps), loc))
        return set()
    if step.of == sid:
        problems.append(Problem(loc, "a review cannot review itself",
                                "name the step whose output a person checks"))
        return set()
    if step.on_reject == "retry" and target.kind not in MODEL_KINDS:
        problems.append(Problem(("steps", sid, "on_reject"),
                                f"'{step.of}' is a {target.kind} step: running it again "
                                "with feedback (on_reject = \"retry\", the default) gives "
                                "the same output",
                                'set on_reject = "fail", or review a model step'))
    if step.items and target.kind not in ("map", "ensemble"):
        problems.append(Problem(("steps", sid, "items"),
                                f"'{step.of}' is a {target.kind} step, which has no items",
                                "items = true reviews the items of a map or ensemble"))
    return {step.of}


def _check_refs(recipe: Recipe, loc: tuple[Any, ...], source: str, is_expr: bool,
                self_ids: set[str], problems: list[Problem], *, allow_item: bool,
                compile: bool = True, extra: frozenset[str] = frozenset()) -> set[str]:
    try:
        tree = templates.parse(source, expression=is_expr)
        if compile:  # unknown filters and tests show only when compiled
            templates.compile_check(source, expression=is_expr)
    except templates.TemplateSyntaxError as e:
        what = "expression" if is_expr else "template"
        hint = ("expressions are Jinja2 expressions: steps.x.label == 'angry', "
                "inputs.n > 3" if is_expr else
                "templates are Jinja2: {{ steps.x }}, {% if ... %}...{% endif %}")
        message = e.message or ""
        if message.startswith("No filter named"):
            name = message.split("'")[1] if "'" in message else ""
            close = difflib.get_close_matches(name, templates.filter_names(), n=1)
            hint = (f"did you mean '{close[0]}'? " if close else "") + \
                "filters: " + ", ".join(templates.filter_names())
            message = f"unknown filter '{name}'"
        problems.append(Problem(loc, f"{what} syntax error (line {e.lineno} of the {what}): "
                                f"{message}", hint))
        return set()
    steps, inputs, dynamic = templates.references(tree)
    free = templates.free_names(tree) if compile else frozenset()
    if dynamic:
        problems.append(Problem(loc, "steps must be read by name (steps.<id> or "
                                "steps['<id>'])", "a computed reference hides which step "
                                "this one depends on; name the step, or add it to needs "
                                "and use a branch"))
    allowed = {"steps", "inputs"} | ({"item", "index"} if allow_item else set()) | extra
    for name in sorted(free - allowed):
        close = difflib.get_close_matches(name, sorted(allowed), n=1)
        hint = f"did you mean '{close[0]}'?" if close else (
            "templates can use inputs.<name> and steps.<id>"
            + (", and item / index inside a map" if allow_item else "")
            + "".join(f", and {n}" for n in sorted(extra)))
        problems.append(Problem(loc, f"unknown name '{name}'", hint))
    known = set(recipe.steps)
    for s in sorted(steps):
        if s in self_ids:
            problems.append(Problem(loc, f"a step cannot refer to its own output (steps.{s})",
                                    "refer to an earlier step, or split this one in two"))
        elif s not in known:
            problems.append(_unknown("step", s, known, loc, prefix="steps."))
    for i in sorted(inputs):
        if i not in recipe.inputs:
            problems.append(_unknown("input", i, set(recipe.inputs), loc, prefix="inputs.",
                                     add_hint=f"or declare it: [inputs.{i}]"))
    return set(steps & known - self_ids)


def _unknown(what: str, name: str, known: set[str], loc: tuple[Any, ...], prefix: str = "",
             add_hint: str | None = None) -> Problem:
    close = difflib.get_close_matches(name, sorted(known), n=1)
    hint = f"did you mean '{prefix}{close[0]}'?" if close else (
        f"known {what}s: " + (", ".join(sorted(known)) or "none"))
    if add_hint:
        hint += " " + add_hint
    return Problem(loc, f"unknown {what} '{prefix}{name}'", hint)


def _identifier(name: str) -> str:
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "s_" + cleaned


def _find_cycle(deps: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for d in sorted(deps.get(node, ())):
            if state.get(d) == 1:
                return stack[stack.index(d):] + [d]
            if d not in state:
                found = visit(d)
                if found:
                    return found
        stack.pop()
        state[node] = 2
        return None

    for n in sorted(deps):
        if n not in state:
            found = visit(n)
            if found:
                return list(reversed(found))
    return None


def _topological(deps: dict[str, set[str]], declared: list[str]) -> list[str]:
    """Kahn's algorithm, keeping the recipe's own order among peers."""
    position = {s: i for i, s in enumerate(declared)}
    remaining = {s: set(deps.get(s, ())) for s in declared}
    order: list[str] = []
    while remaining:
        ready = sorted((s for s, d in remaining.items() if not d), key=position.__getitem__)
        if not ready:
            raise ValueError("cycle in plan")  # check() reports cycles before this
        for s in ready:
            order.append(s)
            del remaining[s]
        for d in remaining.values():
            d.difference_update(ready)
    return order
