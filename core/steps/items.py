"""Single items of a `map` or an `ensemble`, for review gates with `items = true`:
make one item again, and recompute the step's output from the items people kept."""

from __future__ import annotations

from typing import Any

from core.errors import StepError
from core.recipe import EnsembleStep, MapStep
from core.steps.base import StepContext, StepResult
from core.steps.flow import map_item, map_items
from core.steps.voting import combine as combine_answers
from core.steps.voting import redo_member


async def redo_item(step: Any, ctx: StepContext, index: int, current: Any) -> StepResult:
    """The step's output with item `index` made again (the others kept)."""
    if isinstance(step, MapStep):
        items = map_items(step, ctx)
        if not 0 <= index < len(items) or not isinstance(current, list):
            raise StepError(f"{ctx.step_id} has no item {index}")
        out = list(current)
        out[index] = await map_item(step, ctx, index, items[index])
        return StepResult(out)
    if isinstance(step, EnsembleStep) and isinstance(current, dict):
        answers = list(current.get("answers", []))
        if not 0 <= index < len(answers):
            raise StepError(f"{ctx.step_id} has no answer {index}")
        answers[index] = await redo_member(step, ctx, index)
        return StepResult(await combine_answers(step, ctx, answers))
    raise StepError(f"{ctx.step_id} is not a map or ensemble; it has no items")


async def combine(step: Any, ctx: StepContext, items: list[Any]) -> Any:
    """A map's list of the kept items, or an ensemble's combination of them."""
    if isinstance(step, EnsembleStep):
        return await combine_answers(step, ctx, items)
    return list(items)
