"""The step-kind registry: everything the engine knows about a kind, in one place.

A kind is one module in `core/steps/` that builds a `StepKind` and passes it to
`register`: its schema (a pydantic model), the fields that hold templates or
expressions, its runner, how a value typed by a person is parsed, and whether it
calls a model. The recipe loader, the planner, the run loop, reruns, reviews and
`compare` ask the registry; none of them names a kind. Adding a kind is one new
module plus one import line in `core/steps/__init__.py` (or, for a plug-in or a
test, a call to `register`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, Union

from pydantic import Field, create_model

from podium.core.recipe.schema import Recipe, StepBase

if TYPE_CHECKING:
    from podium.core.steps.base import StepContext, StepResult

Runner = Callable[[Any, "StepContext"], Awaitable["StepResult"]]
Problems = list[tuple[tuple[Any, ...], str, str | None]]
# (step, text a person typed, the output it replaces, where) -> the value to store.
ValueParser = Callable[[Any, str, Any, str], Any]
# (recipe, step id, step) -> (steps it depends on besides its templates, problems as
# (key path, message, hint)).
Checker = Callable[[Recipe, str, Any], tuple[set[str], Problems]]


@dataclass(frozen=True)
class Items:
    """How a kind whose output is a list of items (a map's results, an ensemble's
    answers) lets a review gate handle them one by one: the call that makes one item
    (for parsing a person's edit of it), making item `index` again, and the step's
    output recomputed from the items people kept."""

    call: Callable[[Any], Any]
    redo: Callable[[Any, StepContext, int, Any], Awaitable[Any]]
    combine: Callable[[Any, StepContext, list[Any]], Awaitable[Any]]


@dataclass(frozen=True)
class StepKind:
    """What one step kind declares.

    `schema` is the model of a top-level step (its `kind` field a Literal of `name`);
    `call` the model of the same thing as a map's sub-step, if it can be one.
    `templates` and `expressions` name the fields rendered as Jinja templates or
    evaluated as expressions; `nested` a field holding a sub-step whose own fields
    count too. `run(step, ctx)` does one attempt. `parse_value` shapes a value a
    person typed (default: JSON where the output was structured, else text).
    `items` lets a gate review its output item by item. `fields` names the keys of
    its output where they are known before the run (a classify step's label...), so
    a template that misspells one is caught at check time.
    `check` adds the kind's own reference checks; `chosen` reads, from a stored
    output, which downstream steps it lets run (a branch); `governs` lists the
    steps whose running it decides. `cacheable`: a rerun may take its output from
    the cache (not a person's decision). `comparable`: `podium compare` can run it
    on the other tier.
    """

    name: str
    schema: type[StepBase]
    run: Runner
    templates: tuple[str, ...] = ()
    expressions: tuple[str, ...] = ()
    nested: str | None = None
    call: type[Any] | None = None
    calls_model: bool = False
    comparable: bool = False
    cacheable: bool = True
    parse_value: ValueParser | None = None
    check: Checker | None = None
    chosen: Callable[[Any], frozenset[str]] | None = None
    governs: Callable[[Any], set[str]] | None = None
    items: Items | None = None
    fields: Callable[[Any, Recipe], frozenset[str] | None] | None = None


_KINDS: dict[str, StepKind] = {}
_models: dict[int, type[Recipe]] = {}


def register(kind: StepKind) -> StepKind:
    """Add (or replace) a kind; the recipe schema picks it up at the next load."""
    _KINDS[kind.name] = kind
    _models.clear()
    return kind


def unregister(name: str) -> None:
    """Remove a kind (for tests that register a toy one)."""
    _KINDS.pop(name, None)
    _models.clear()


def get(name: str) -> StepKind:
    """The kind called `name` (KeyError if none)."""
    return _KINDS[name]


def names() -> tuple[str, ...]:
    """Every registered kind, in registration order."""
    return tuple(_KINDS)


def call_names() -> tuple[str, ...]:
    """The kinds that can be a map's sub-step."""
    return tuple(k.name for k in _KINDS.values() if k.call is not None)


def of(step: Any) -> StepKind:
    """The kind of a step or sub-step."""
    return _KINDS[step.kind]


def recipe_model() -> type[Recipe]:
    """The `Recipe` model whose steps may be of any registered kind (a tagged union on
    `kind`, so errors keep their place), built once per set of kinds."""
    model = _models.get(0)
    if model is None:
        schemas = tuple(k.schema for k in _KINDS.values())
        union: Any = Annotated[Union[schemas], Field(discriminator="kind")]  # noqa: UP007
        model = create_model("Recipe", __base__=Recipe,
                             steps=(dict[str, union], Field(min_length=1)))
        _models[0] = model
    return model


def output_fields(step: Any, recipe: Recipe) -> frozenset[str] | None:
    """The keys a step's output will have, or None where the shape is not known."""
    fields = of(step).fields
    return fields(step, recipe) if fields is not None else None


def schema_fields(schema: dict[str, Any] | None) -> frozenset[str] | None:
    """The properties of a closed JSON-schema object (what an answer may hold)."""
    if not schema or schema.get("type") != "object" or \
            schema.get("additionalProperties") not in (None, False):
        return None
    props = schema.get("properties")
    return frozenset(props) if isinstance(props, dict) and props else None


def template_fields(step: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[tuple[Any, ...],
                                                                          str, bool]]:
    """(key path, source, is_expression) of every template or expression of a step,
    its sub-step's included."""
    kind = of(step)
    out: list[tuple[tuple[Any, ...], str, bool]] = []
    for name in kind.templates:
        value = getattr(step, name, None)
        if value:
            out.append((prefix + (name,), value, False))
    for name in kind.expressions:
        value = getattr(step, name, None)
        if value:
            out.append((prefix + (name,), value, True))
    if kind.nested is not None:
        out.extend(template_fields(getattr(step, kind.nested), prefix + (kind.nested,)))
    return out
