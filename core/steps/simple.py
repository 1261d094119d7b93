"""`llm`, `classify` and `template` steps: one call each."""

from __future__ import annotations

from core import templates
from core.recipe import ClassifyStep, LlmStep, TemplateStep
from core.steps.base import StepContext, StepResult
from core.steps.calls import run_classify, run_llm


async def run_llm_step(step: LlmStep, ctx: StepContext) -> StepResult:
    """Ask the routed model; JSON when the step has a schema."""
    return StepResult(await run_llm(step, ctx, ctx.values))


async def run_classify_step(step: ClassifyStep, ctx: StepContext) -> StepResult:
    """Pick one label."""
    return StepResult(await run_classify(step, ctx, ctx.values))


async def run_template_step(step: TemplateStep, ctx: StepContext) -> StepResult:
    """Render text; no model."""
    return StepResult(templates.render(step.template, ctx.values, what=f"{ctx.step_id}.template"))
