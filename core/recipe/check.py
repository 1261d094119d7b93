"""Every reference and structure problem of a recipe, found before anything runs.

A step depends on the steps in its `needs`, on every step its templates and
expressions refer to (`steps.<id>`), and on what its kind's own rules add (a gate
depends on the step it reviews; a branch governs the steps it chooses between).
`problems` lists what is wrong; `dependencies` gives the edges of a sound recipe.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.core.errors import InputError, did_you_mean
from podium.core.recipe import templates
from podium.core.recipe.inputs import convert
from podium.core.recipe.plan import find_cycle
from podium.core.recipe.schema import Recipe
from podium.core.steps import registry

# What a template may read of any object output besides its keys (Jinja looks up
# attributes before keys: `steps.x.items` is the dict's method).
DICT_METHODS = frozenset({"items", "keys", "values", "get"})
# Step ids must be names Jinja can follow: steps.<id>.
STEP_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


@dataclass(frozen=True)
class Problem:
    """A reference or structure problem at a key path of the recipe."""

    loc: tuple[Any, ...]
    message: str
    hint: str | None = None


def problems(recipe: Recipe) -> list[Problem]:
    """Every reference and cycle problem in `recipe`; empty when it is sound."""
    return analyse(recipe)[0]


def analyse(recipe: Recipe) -> tuple[list[Problem], dict[str, set[str]], dict[str, str]]:
    """(problems, dependencies, step -> governing branch) in one pass."""
    found: list[Problem] = []
    deps, governed = dependencies(recipe, found)
    _check_defaults(recipe, found)
    for name, expr in recipe.outputs.items():
        _check_refs(recipe, ("outputs", name), expr, True, set(), found, allow_item=False,
                    known=set(recipe.steps))
    if not found:
        cycle = find_cycle(deps)
        if cycle:
            shown = cycle if len(cycle) <= 12 else [*cycle[:6], f"... {len(cycle) - 10} "
                                                    "more ...", *cycle[-4:]]
            found.append(Problem(("steps", cycle[0]), "cycle: " + " -> ".join(shown),
                                 "remove one of these references or `needs` entries"))
    return found, deps, governed


def _check_defaults(recipe: Recipe, found: list[Problem]) -> None:
    """Each input's default must already be of its type (files are read at run time)."""
    for name, spec in recipe.inputs.items():
        if spec.default is None or spec.type == "file":
            continue
        try:
            convert(name, spec, spec.default, Path.cwd())
        except InputError as e:
            found.append(Problem(("inputs", name, "default"), f"default: {e.message}",
                                 f"give a {spec.type} default, or change `type`"))


def dependencies(recipe: Recipe, found: list[Problem], *, compile: bool = True
                 ) -> tuple[dict[str, set[str]], dict[str, str]]:
    """(each step's dependencies, step -> the branch that governs it), adding the
    problems met on the way to `found`. `compile=False` skips what only a full check
    needs (a pinned recipe was checked when its run was created)."""
    deps: dict[str, set[str]] = {}
    governed: dict[str, str] = {}
    known = set(recipe.steps)
    for sid, step in recipe.steps.items():
        if not STEP_ID.fullmatch(sid):
            found.append(Problem(("steps", sid), f"step id '{sid}' is not a valid name",
                                 "use letters, digits and underscores, e.g. "
                                 f"'{_identifier(sid)}'"))
        mine: set[str] = set()
        for i, need in enumerate(step.needs):
            if need not in known:
                found.append(unknown("step", need, known, ("steps", sid, "needs", i)))
            elif need == sid:
                found.append(Problem(("steps", sid, "needs"), "a step cannot need itself",
                                     f"remove '{sid}' from its own needs"))
            else:
                mine.add(need)
        kind = registry.of(step)
        if kind.check is not None:
            extra, said = kind.check(recipe, sid, step)
            mine |= extra
            found.extend(Problem(loc, message, hint) for loc, message, hint in said)
        for loc, source, is_expr in registry.template_fields(step, ("steps", sid)):
            in_nested = kind.nested is not None and loc[2:3] == (kind.nested,)
            mine |= _check_refs(recipe, loc, source, is_expr, {sid}, found,
                                allow_item=in_nested, compile=compile, known=known)
        mine |= _check_verify(recipe, sid, step, found, compile, known)
        deps[sid] = mine
    for sid, step in recipe.steps.items():
        governs = registry.of(step).governs
        for target in sorted(governs(step)) if governs else ():
            if target in known and target != sid:
                deps.setdefault(target, set()).add(sid)
                governed[target] = sid
    return deps, governed


def _check_verify(recipe: Recipe, sid: str, step: Any, found: list[Problem],
                  compile: bool, known: set[str]) -> set[str]:
    """A cascade's `verify` is an expression that may also read `answer`; it means
    something only when the call is a cascade."""
    refs: set[str] = set()
    calls: list[tuple[tuple[Any, ...], Any]] = [(("steps", sid), step)]
    nested = registry.of(step).nested
    if nested is not None:
        calls.append((("steps", sid, nested), getattr(step, nested)))
    for loc, call in calls:
        source = getattr(call, "verify", None)
        if not source:
            continue
        if call.route == "cascade" and call.model:
            found.append(Problem(loc + ("verify",), f"model = \"{call.model}\" pins the "
                                 "model, so there is no cascade for verify to check",
                                 "remove model (the cascade picks local, then remote), or "
                                 "remove verify"))
            continue
        if call.route != "cascade":
            found.append(Problem(loc + ("verify",), "verify only applies to route = "
                                 f"\"cascade\" (this call's route is \"{call.route}\")",
                                 'set route = "cascade", or remove verify'))
            continue
        refs |= _check_refs(recipe, loc + ("verify",), source, True, {sid}, found,
                            allow_item=False, compile=compile,  # answer is the item's
                            extra=frozenset({"answer"}), known=known)
    return refs


def _check_refs(recipe: Recipe, loc: tuple[Any, ...], source: str, is_expr: bool,
                self_ids: set[str], found: list[Problem], *, allow_item: bool,
                known: set[str], compile: bool = True,
                extra: frozenset[str] = frozenset()) -> set[str]:
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
            hint = did_you_mean(name, templates.filter_names(), "filters: " +
                                ", ".join(templates.filter_names()), always=True) or hint
            message = f"unknown filter '{name}'"
        found.append(Problem(loc, f"{what} syntax error (line {e.lineno} of the {what}): "
                             f"{message}", hint))
        return set()
    try:
        steps, inputs, dynamic = templates.references(tree)
        free = templates.free_names(tree) if compile else frozenset()
        fields = templates.fields_read(tree) if compile else frozenset()
    except RecursionError:
        found.append(Problem(loc, "nested too deeply to check", "simplify it"))
        return set()
    loader = templates.loaders_used(tree)
    if loader is not None:
        found.append(Problem(loc, f"{{% {loader} %}} cannot be used: a recipe's templates "
                             "cannot read other template files",
                             "put the text in an input (type = \"file\") or a template step, "
                             "and refer to it: {{ inputs.name }} or {{ steps.id }}"))
    if dynamic:
        found.append(Problem(loc, "steps must be read by name (steps.<id> or "
                             "steps['<id>'])", "a computed reference hides which step "
                             "this one depends on; name the step, or add it to needs "
                             "and use a branch"))
    allowed = {"steps", "inputs"} | ({"item", "index"} if allow_item else set()) | extra
    for name in sorted(free - allowed):
        found.append(Problem(loc, f"unknown name '{name}'", did_you_mean(
            name, allowed, "templates can use inputs.<name> and steps.<id>"
            + (", and item / index inside a map" if allow_item else "")
            + "".join(f", and {n}" for n in sorted(extra)))))
    for s in sorted(steps):
        if s in self_ids:
            found.append(Problem(loc, f"a step cannot refer to its own output (steps.{s})",
                                 "refer to an earlier step, or split this one in two"))
        elif s not in known:
            found.append(unknown("step", s, known, loc, prefix="steps."))
    for i in sorted(inputs):
        if i not in recipe.inputs:
            found.append(unknown("input", i, set(recipe.inputs), loc, prefix="inputs.",
                                 add_hint=f"or declare it: [inputs.{i}]"))
    for s, field in sorted(fields):
        shape = registry.output_fields(recipe.steps[s], recipe) if s in known else None
        if shape is not None and field not in shape and field not in DICT_METHODS:
            found.append(Problem(loc, f"steps.{s} has no field '{field}'", did_you_mean(
                field, shape, f"its output has: {', '.join(sorted(shape))}", always=True)))
    return set(steps & known - self_ids)


def unknown(what: str, name: str, known: set[str], loc: tuple[Any, ...], prefix: str = "",
            add_hint: str | None = None) -> Problem:
    """An unknown name, with the closest known one or the list of them."""
    hint = did_you_mean(name, known, f"known {what}s: " + (", ".join(sorted(known)) or "none"),
                        prefix=prefix)
    if add_hint:
        hint = f"{hint} {add_hint}"
    return Problem(loc, f"unknown {what} '{prefix}{name}'", hint)


def _identifier(name: str) -> str:
    cleaned = "".join(c if c.isascii() and c.isalnum() else "_" for c in name)
    return cleaned if cleaned and not cleaned[0].isdigit() else "s_" + cleaned
