"""`map`: run one call for each item of a list, in parallel. Each item is retried on
its own; with `allow_failures`, a failed item gives null instead of failing the step."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any, Literal, Union

from pydantic import Field

from podium.core.errors import PodiumError, ProviderError, StepError
from podium.core.recipe import templates
from podium.core.recipe.schema import StepBase
from podium.core.retry import RetryPolicy
from podium.core.steps import registry
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.calls import ClassifyCall, LlmCall, TemplateCall, run_call
from podium.core.steps.durable import each_item
from podium.core.steps.registry import Items, StepKind, register
from podium.core.steps.values import fail_on, json_value, parse_value

SubStep = Annotated[Union[LlmCall, ClassifyCall, TemplateCall],  # noqa: UP007
                    Field(discriminator="kind")]


class MapStep(StepBase):
    """Run `step` once per item of the list `over`, in parallel; output is the list of
    results. Inside, templates see `item` and `index`."""

    kind: Literal["map"]
    over: str = Field(description="Expression giving a list, e.g. steps.entities.people")
    step: SubStep
    concurrency: int = Field(4, ge=1, le=64)
    allow_failures: bool = Field(False, description="A failed item gives null instead of "
                                 "failing the step.")
    max_items: int = Field(100, ge=1, le=1_000_000)


def map_items(step: MapStep, ctx: StepContext) -> list[Any] | tuple[Any, ...]:
    """The list `over` gives, checked (not copied: a map may have 100,000 items)."""
    items = templates.evaluate(step.over, ctx.values, what=f"{ctx.step_id}.over")
    if isinstance(items, dict):
        items = list(items.items())
    if not isinstance(items, list | tuple):
        raise StepError(f"{ctx.step_id}.over gave {type(items).__name__}, not a list",
                        "point `over` at a list, e.g. steps.entities.people")
    if len(items) > step.max_items:
        raise StepError(f"{ctx.step_id}.over gave {len(items)} items, over max_items = "
                        f"{step.max_items}", "raise max_items if that many is intended")
    return items


async def make_item(step: MapStep, ctx: StepContext, index: int, item: Any) -> Any:
    """The sub-step for one item, retried on retryable provider errors; a `StepError`
    naming the item when it fails."""
    values = dict(ctx.values, item=item, index=index)
    policy = RetryPolicy(step.retries, step.backoff)
    tries = 0
    while True:
        try:
            return await run_call(step.step, ctx, values, stream=False)
        except ProviderError as e:
            delay = policy.delay(tries, e)
            if delay is None:
                raise StepError(f"item {index}: {e.message}", e.hint) from None
            tries += 1
            await asyncio.sleep(delay)
        except PodiumError as e:
            raise StepError(f"item {index}: {e.message}", e.hint) from None


async def map_item(step: MapStep, ctx: StepContext, index: int, item: Any) -> Any:
    """One item's output; with `allow_failures`, None for an item that failed."""
    try:
        return await make_item(step, ctx, index, item)
    except StepError:
        if step.allow_failures:
            return None
        raise


async def run_map(step: MapStep, ctx: StepContext) -> StepResult:
    """Run the sub-step for each item of `over`, at most `concurrency` at a time, each
    item kept as it finishes (`core.steps.durable`)."""

    async def make(index: int, item: Any, own: StepContext) -> Any:
        return await make_item(step, own, index, item)

    results = await each_item(ctx, map_items(step, ctx), make, concurrency=step.concurrency,
                              calls_model=registry.of(step.step).calls_model,
                              errors="null" if step.allow_failures else "raise")
    return StepResult(results)


async def redo_item(step: MapStep, ctx: StepContext, index: int, current: Any) -> Any:
    """The list with item `index` made again (the others kept)."""
    items = map_items(step, ctx)
    if not 0 <= index < len(items) or not isinstance(current, list):
        raise StepError(f"{ctx.step_id} has no item {index}")
    out = list(current)
    out[index] = await map_item(step, ctx, index, items[index])
    return out


async def keep(step: MapStep, ctx: StepContext, items: list[Any]) -> Any:
    """The list of the items people kept."""
    return list(items)


def parse_list(step: MapStep, text: str, original: Any, where: str) -> Any:
    """A JSON list whose items each fit the sub-step's output."""
    value = json_value(text, where)
    problems = []
    if not isinstance(value, list):
        problems.append("$: a map's output is a list")
    else:
        for i, item in enumerate(value):
            try:
                parse_value(step.step, item if isinstance(item, str) else
                            json.dumps(item), item, where=f"{where}[{i}]")
            except PodiumError as e:
                problems.append(e.message)
    fail_on(problems, where)
    return value


KIND = register(StepKind(
    "map", MapStep, run_map, expressions=("over",), nested="step", calls_model=True,
    parse_value=parse_list,
    items=Items(call=lambda step: step.step, redo=redo_item, combine=keep),
))
