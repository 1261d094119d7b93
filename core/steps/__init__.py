"""One runner per step kind: `RUNNERS[kind](step, ctx) -> StepResult`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from core.steps.base import StepContext, StepResult
from core.steps.flow import run_branch, run_map
from core.steps.simple import run_classify_step, run_llm_step, run_template_step
from core.steps.voting import run_ensemble

Runner = Callable[[Any, StepContext], Awaitable[StepResult]]

RUNNERS: dict[str, Runner] = {
    "llm": run_llm_step,
    "classify": run_classify_step,
    "template": run_template_step,
    "branch": run_branch,
    "map": run_map,
    "ensemble": run_ensemble,
}

__all__ = ["RUNNERS", "StepContext", "StepResult"]
