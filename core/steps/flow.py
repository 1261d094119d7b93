"""`branch` (choose which steps run) and `map` (one call per item, in parallel)."""

from __future__ import annotations

import asyncio
from typing import Any

from core import templates
from core.errors import PodiumError, ProviderError, StepError
from core.recipe import BranchStep, MapStep
from core.steps.base import StepContext, StepResult
from core.steps.calls import run_call


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
    return StepResult(output, chosen=frozenset(chosen))


def map_items(step: MapStep, ctx: StepContext) -> list[Any]:
    """The list `over` gives, checked."""
    items = templates.evaluate(step.over, ctx.values, what=f"{ctx.step_id}.over")
    if isinstance(items, dict):
        items = list(items.items())
    if not isinstance(items, list | tuple):
        raise StepError(f"{ctx.step_id}.over gave {type(items).__name__}, not a list",
                        "point `over` at a list, e.g. steps.entities.people")
    if len(items) > step.max_items:
        raise StepError(f"{ctx.step_id}.over gave {len(items)} items, over max_items = "
                        f"{step.max_items}", "raise max_items if that many is intended")
    return list(items)


async def map_item(step: MapStep, ctx: StepContext, index: int, item: Any) -> Any:
    """The sub-step for one item, retried on retryable provider errors."""
    values = dict(ctx.values, item=item, index=index)
    for attempt in range(step.retries + 1):
        try:
            return await run_call(step.step, ctx, values, stream=False)
        except ProviderError as e:
            if not e.retryable or attempt == step.retries:
                if step.allow_failures:
                    return None
                raise StepError(f"item {index}: {e.message}", e.hint) from None
            await asyncio.sleep(step.backoff * 2**attempt)
        except PodiumError as e:
            if step.allow_failures:
                return None
            raise StepError(f"item {index}: {e.message}", e.hint) from None
    return None


async def run_map(step: MapStep, ctx: StepContext) -> StepResult:
    """Run the sub-step for each item of `over`, at most `concurrency` at a time."""
    items = map_items(step, ctx)
    gate = asyncio.Semaphore(step.concurrency)

    async def one(index: int, item: Any) -> Any:
        async with gate:
            return await map_item(step, ctx, index, item)

    tasks = [asyncio.ensure_future(one(i, it)) for i, it in enumerate(items)]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:  # one item failed the step: stop paying for the others
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    return StepResult(list(results))
