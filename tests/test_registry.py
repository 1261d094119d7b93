"""A new step kind is one module: this test module declares a toy kind and registers
it, and the loader, the planner, the run loop, reruns, hand edits and the JSON Schema
all take it without another line anywhere."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Literal

import pytest
from pydantic import Field

from podium.core.errors import RecipeErrors, ReviewError
from podium.core.recipe.load import json_schema, loads
from podium.core.recipe.schema import StepBase
from podium.core.review.edits import edit_output
from podium.core.steps import registry
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.values import label_value
from tests.conftest import ScriptedProvider
from tests.test_engine import make_engine, statuses


class ShoutStep(StepBase):
    """Upper-case a rendered template, `times` times over."""

    kind: Literal["shout"]
    text: str = Field(description="What to shout (template).")
    times: int = Field(1, ge=1, le=5)


async def run_shout(step: ShoutStep, ctx: StepContext) -> StepResult:
    from podium.core.recipe import templates

    said = templates.render(step.text, ctx.values, what=f"{ctx.step_id}.text")
    return StepResult(" ".join([said.upper()] * step.times))


def parse_shout(step: ShoutStep, text: str, original: Any, where: str) -> Any:
    if text != text.upper():
        raise ReviewError(f"{where}: a shout is upper case", "type it in capitals")
    return text


@pytest.fixture
def shout() -> Iterator[registry.StepKind]:
    kind = registry.register(registry.StepKind(
        "shout", ShoutStep, run_shout, templates=("text",), parse_value=parse_shout))
    yield kind
    registry.unregister("shout")


TOML = """
[inputs.name]
default = "ada"

[steps.greet]
kind = "template"
template = "hello {{ inputs.name }}"

[steps.loud]
kind = "shout"
text = "{{ steps.greet }}!"
times = 2

[steps.after]
kind = "template"
template = "[{{ steps.loud }}]"
"""


def test_a_toy_kind_registered_here_loads_plans_and_runs(shout: registry.StepKind) -> None:
    recipe = loads(TOML, "toy.toml")
    assert recipe.plan.deps["loud"] == {"greet"}  # found through its declared template field
    assert recipe.plan.order == ["greet", "loud", "after"]
    engine = make_engine(ScriptedProvider())
    result = asyncio.run(engine.run(recipe, {}))
    assert result.status == "succeeded"
    assert result.outputs == {"after": "[HELLO ADA! HELLO ADA!]"}
    assert "shout" in str(json_schema())


def test_a_toy_kind_gets_the_same_checks_as_the_shipped_ones(
        shout: registry.StepKind) -> None:
    with pytest.raises(RecipeErrors) as e:
        loads(TOML.replace("times = 2", "tims = 2"), "toy.toml")
    (err,) = e.value.errors
    assert (err.field, err.line) == ("steps.loud.tims", 12)
    assert (err.hint or "").startswith("did you mean 'times'?")
    with pytest.raises(RecipeErrors) as e:
        loads(TOML.replace("steps.greet }}!", "steps.gret }}!"), "toy.toml")
    (err,) = e.value.errors
    assert (err.field, err.line) == ("steps.loud.text", 11)
    assert (err.message, err.hint) == ("unknown step 'steps.gret'",
                                       "did you mean 'steps.greet'?")


def test_a_toy_kinds_value_parser_guards_hand_edits(shout: registry.StepKind) -> None:
    engine = make_engine(ScriptedProvider())
    first = asyncio.run(engine.run(loads(TOML, "toy.toml"), {}))
    with pytest.raises(ReviewError, match="a shout is upper case"):
        edit_output(engine.store, first.run_id, "loud", "quiet please")
    edit_output(engine.store, first.run_id, "loud", "HEY")
    again = asyncio.run(engine.rerun(first.run_id))
    assert again is not None and again.outputs == {"after": "[HEY]"}
    assert statuses(engine, again.run_id) == dict.fromkeys(["greet", "loud", "after"],
                                                           "succeeded")


def test_without_registration_the_kind_is_unknown_with_a_hint() -> None:
    with pytest.raises(RecipeErrors) as e:
        loads(TOML, "toy.toml")
    (err,) = e.value.errors
    assert err.message == "unknown step kind 'shout'" and err.line == 10
    assert "Kinds: llm, classify, template, branch, map, ensemble, review" in (err.hint or "")
    assert label_value(["a", "b"], " a ", "x") == "a"  # the shared value helpers stay usable
