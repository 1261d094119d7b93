"""`classify`: choose one of the given labels, with a confidence."""

from __future__ import annotations

from typing import Any

from podium.core.recipe import validate
from podium.core.recipe.schema import StepBase
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.calls import ClassifyCall, run_classify
from podium.core.steps.registry import StepKind, register
from podium.core.steps.values import fail_on, json_value, label_value


class ClassifyStep(StepBase, ClassifyCall):
    """A classification step."""


async def run_classify_step(step: ClassifyStep, ctx: StepContext) -> StepResult:
    """Pick one label."""
    return StepResult(await run_classify(step, ctx, ctx.values))


def parse_label(step: ClassifyCall, text: str, original: Any, where: str) -> Any:
    """A bare label (as sure as it gets: a person chose it), or the whole JSON output."""
    labels = list(step.labels)
    if not text.lstrip().startswith("{"):
        label = label_value(labels, text, where)
        return {"label": label, "confidence": 1.0,
                "scores": {x: 1.0 if x == label else 0.0 for x in labels}}
    value = json_value(text, where)
    problems = validate.problems(value, None)
    if not isinstance(value, dict) or value.get("label") not in labels:
        problems.append("$.label: must be one of " + ", ".join(labels))
    fail_on(problems, where)
    return value


KIND = register(StepKind(
    "classify", ClassifyStep, run_classify_step,
    templates=("input", "instructions", "system"), call=ClassifyCall,
    calls_model=True, comparable=True, parse_value=parse_label,
    fields=lambda step, recipe: frozenset({"label", "confidence", "scores"}),
))
