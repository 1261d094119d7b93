"""The review gate: what a `review` step does when it runs.

A gate is a step of its own. When it runs it reads the queue first: a decided item
gives the gate its output, a pending one keeps it waiting, and only when there is
none does it evaluate `when` and ask. So resuming a run never re-runs the reviewed
step or anything before the gate; the reviewed step runs again only when a person
rejects its output and the gate says `on_reject = "retry"`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from podium.core.recipe import templates
from podium.core.store import ReviewRecord, Status, Store

if TYPE_CHECKING:
    from podium.core.steps.review import ReviewStep


@dataclass
class GateResult:
    """What a gate's run came to."""

    status: str  # succeeded | waiting | failed
    output: Any = None
    reason: str | None = None
    error: str | None = None
    hint: str | None = None


class Reviewed(Protocol):
    """How a gate makes the reviewed step's work again (the run loop provides it)."""

    async def redo(self, feedback: list[tuple[Any, str]], item: int | None) -> Any:
        """The reviewed step's output (or one item of it) made again with `feedback`:
        (rejected output, what the reviewer said), oldest first."""

    async def combine(self, items: list[Any]) -> Any:
        """The reviewed step's output recomputed from its decided items."""


async def run_gate(store: Store, run_id: str, sid: str, step: ReviewStep,
                   values: dict[str, Any], reviewed: Reviewed) -> GateResult:
    """Run one review gate against the queue: pass, wait, or fail."""
    asked = [r for r in store.reviews(status=None, run_id=run_id, step_id=sid)
             if r.kind == "review"]  # not the budget reviews a remake may wait on
    if not asked:
        if step.when is not None and not templates.evaluate(step.when, values,
                                                            what=f"{sid}.when"):
            return GateResult(Status.SUCCEEDED, values["steps"].get(step.of),
                              reason=f"no review needed: `when` ({step.when}) was false")
        return _ask(store, run_id, sid, step, values, values["steps"].get(step.of))
    if step.items:
        return await _items(store, run_id, sid, step, values, asked, reviewed)
    latest = asked[-1]
    if latest.status == Status.PENDING:
        return GateResult(Status.WAITING)
    if latest.status in ("approved", "edited"):
        output = latest.decided if latest.status == "edited" else latest.original
        return GateResult(Status.SUCCEEDED, output, reason=f"{latest.status} by "
                          f"{latest.decided_by} (review {latest.id})")
    said = f": {latest.feedback}" if latest.feedback else ""
    if step.on_reject == "fail":
        return GateResult(Status.FAILED, error=f"rejected by {latest.decided_by} (review "
                          f"{latest.id}){said}", hint="edit the output by hand with "
                          f"`podium edit {run_id} {step.of}` and `podium rerun {run_id}`")
    if latest.round >= step.max_rounds:
        return GateResult(Status.FAILED, error=f"rejected {latest.round} times, the most this "
                          f"gate allows (max_rounds = {step.max_rounds}){said}",
                          hint="raise max_rounds, or edit the output by hand with "
                          f"`podium edit {run_id} {step.of}`")
    feedback = [(r.original, r.feedback or "") for r in asked if r.status == "rejected"]
    output = await reviewed.redo(feedback, None)
    return _ask(store, run_id, sid, step, values, output, round=latest.round + 1)


def _ask(store: Store, run_id: str, sid: str, step: ReviewStep, values: dict[str, Any],
         output: Any, round: int = 1) -> GateResult:
    instructions = templates.render(step.instructions, values, what=f"{sid}.instructions") \
        if step.instructions else None
    if not step.items:
        store.add_review(run_id, sid, step.of, round=round, original=output,
                         instructions=instructions)
        return GateResult(Status.WAITING)
    items = items_of(output)
    if not items:  # nothing to look at: pass the empty result on
        return GateResult(Status.SUCCEEDED, output, reason="no items to review")
    store.add_reviews(run_id, sid, step.of, list(enumerate(items)), round=round,
                      instructions=instructions)  # all or none, should the process die
    return GateResult(Status.WAITING)


def items_of(output: Any) -> list[Any]:
    """The items of a map's list, or the answers of an ensemble."""
    if isinstance(output, dict) and isinstance(output.get("answers"), list):
        return list(output["answers"])
    return list(output) if isinstance(output, list) else [output]


async def _items(store: Store, run_id: str, sid: str, step: ReviewStep,
                 values: dict[str, Any], asked: list[ReviewRecord],
                 reviewed: Reviewed) -> GateResult:
    latest: dict[int, ReviewRecord] = {}
    history: dict[int, list[ReviewRecord]] = {}
    for r in asked:
        index = r.item or 0
        latest[index] = r
        history.setdefault(index, []).append(r)
    if any(r.status == Status.PENDING for r in latest.values()):
        return GateResult(Status.WAITING)
    again = [i for i, r in sorted(latest.items()) if r.status == "regenerate"]
    if again:
        made: list[tuple[int | None, Any]] = []
        for i in again:
            feedback = [(r.original, r.feedback or "") for r in history[i]
                        if r.status == "regenerate"]
            made.append((i, await reviewed.redo(feedback, i)))
        store.add_reviews(run_id, sid, step.of, made,
                          round=[latest[i].round + 1 for i in again],
                          instructions=latest[again[0]].instructions)
        return GateResult(Status.WAITING)
    kept = [r.decided if r.status == "edited" else r.original
            for _, r in sorted(latest.items()) if r.status in ("approved", "edited")]
    dropped = sum(1 for r in latest.values() if r.status == "rejected")
    if not kept:
        return GateResult(Status.FAILED, error=f"every item of '{step.of}' was rejected",
                          hint="edit the output by hand with `podium edit`")
    output = await reviewed.combine(kept)
    return GateResult(Status.SUCCEEDED, output, reason=f"{len(kept)} items kept, {dropped} "
                      "rejected by review")


