"""`llm`: ask the routed model; with `schema`, the answer is JSON that satisfies it."""

from __future__ import annotations

from podium.core.recipe.schema import StepBase
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.calls import LlmCall, run_llm
from podium.core.steps.registry import StepKind, register, schema_fields


class LlmStep(StepBase, LlmCall):
    """A model call step."""


async def run_llm_step(step: LlmStep, ctx: StepContext) -> StepResult:
    """Ask the routed model; JSON when the step has a schema."""
    return StepResult(await run_llm(step, ctx, ctx.values))


KIND = register(StepKind(
    "llm", LlmStep, run_llm_step, templates=("prompt", "system"), call=LlmCall,
    calls_model=True, comparable=True,
    fields=lambda step, recipe: schema_fields(step.output_schema),
))
