"""`template`: render text from inputs and earlier outputs; no model."""

from __future__ import annotations

from podium.core.recipe import templates
from podium.core.recipe.schema import StepBase
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.calls import TemplateCall
from podium.core.steps.registry import StepKind, register


class TemplateStep(StepBase, TemplateCall):
    """A text step."""


async def run_template_step(step: TemplateStep, ctx: StepContext) -> StepResult:
    """Render text; no model."""
    return StepResult(templates.render(step.template, ctx.values,
                                       what=f"{ctx.step_id}.template"))


KIND = register(StepKind("template", TemplateStep, run_template_step,
                         templates=("template",), call=TemplateCall))
