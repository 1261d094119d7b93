"""`review`: a person's gate. It holds the output of step `of` until someone approves,
edits or rejects it (`podium review`); what the gate decides from the queue is in
`core.review.gate`."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from podium.core.errors import StepError, did_you_mean
from podium.core.events import ReviewWaiting
from podium.core.recipe.schema import Recipe, StepBase
from podium.core.review.budget import Held
from podium.core.review.gate import run_gate
from podium.core.steps import registry
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.registry import Problems, StepKind, register
from podium.core.store import Status


class ReviewStep(StepBase):
    """A person's gate: hold the output of step `of` until someone approves, edits or
    rejects it (`podium review`). The gate's output is the decided value; put the
    steps that must see only reviewed work after the gate (refer to `steps.<gate>`)."""

    kind: Literal["review"]
    of: str = Field(description="The step whose output is reviewed.")
    when: str | None = Field(None, description="Expression over earlier outputs; review "
                             "only when it is true, else pass the output on unchanged, "
                             "e.g. steps.mood.label == 'angry'.")
    instructions: str = Field("", description="Shown to the reviewer (template).")
    on_reject: Literal["retry", "fail"] = Field("retry", description="retry: run the "
                                                "reviewed step again with the feedback, "
                                                "then review again; fail: the gate fails.")
    max_rounds: int = Field(3, ge=1, le=20, description="Reviews before a rejection fails "
                            "the gate.")
    items: bool = Field(False, description="Review each item of a `map` or each answer of "
                        "an `ensemble` on its own; the list or the vote is recomputed "
                        "from the decided items.")


async def run_review(step: ReviewStep, ctx: StepContext) -> StepResult:
    """Pass, wait for a person, or fail (`core.review.gate.run_gate`)."""
    run = ctx.run
    assert run is not None, "a review gate runs inside a run"
    try:
        gate = await run_gate(run.store, ctx.run_id, ctx.step_id, step, ctx.values,
                              run.reviewed(ctx))
    except Held:
        return StepResult(None, status=Status.WAITING, reason="waiting for a budget review")
    if gate.status == Status.FAILED:
        raise StepError(gate.error or "the review failed", gate.hint)
    if gate.status == Status.WAITING:
        run.emit(ReviewWaiting(ctx.run_id, ctx.step_id, step.of))
        return StepResult(None, status=Status.WAITING,
                          reason="waiting for a person: podium review")
    return StepResult(gate.output, reason=gate.reason)


def check(recipe: Recipe, sid: str, step: ReviewStep) -> tuple[set[str], Problems]:
    """A gate depends on the step it reviews, which must be able to do what is asked."""
    loc = ("steps", sid, "of")
    target = recipe.steps.get(step.of)
    if target is None:
        known = set(recipe.steps)
        return set(), [(loc, f"unknown step '{step.of}'", did_you_mean(
            step.of, known, "known steps: " + ", ".join(sorted(known))))]
    if step.of == sid:
        return set(), [(loc, "a review cannot review itself",
                        "name the step whose output a person checks")]
    problems: Problems = []
    kind = registry.of(target)
    if step.on_reject == "retry" and not kind.calls_model:
        problems.append((("steps", sid, "on_reject"),
                         f"'{step.of}' is a {target.kind} step: running it again with "
                         "feedback (on_reject = \"retry\", the default) gives the same "
                         "output", 'set on_reject = "fail", or review a model step'))
    if step.items and kind.items is None:
        problems.append((("steps", sid, "items"),
                         f"'{step.of}' is a {target.kind} step, which has no items",
                         "items = true reviews the items of a map or ensemble"))
    return {step.of}, problems


def output_fields(step: ReviewStep, recipe: Recipe) -> frozenset[str] | None:
    """A gate passes on the reviewed step's output (or one made from its items)."""
    target = recipe.steps.get(step.of)
    if target is None or target.kind == "review":  # a gate of a gate: not chased
        return None
    return registry.output_fields(target, recipe)


KIND = register(StepKind("review", ReviewStep, run_review, templates=("instructions",),
                         expressions=("when",), check=check, cacheable=False,
                         fields=output_fields))
