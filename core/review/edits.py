"""Hand edits of finished steps: a new version beside the original, and every step
downstream marked stale for `podium rerun`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from podium.core.errors import ReviewError, did_you_mean
from podium.core.recipe.load import pinned
from podium.core.recipe.schema import Recipe
from podium.core.review.decisions import who
from podium.core.steps.review import ReviewStep
from podium.core.steps.values import parse_value
from podium.core.store import Status, Store


@dataclass
class Edit:
    """What `edit_output` did."""

    run_id: str
    step_id: str
    version: int | None  # None: the value was the same, nothing stored
    stale: list[str]


def editable(store: Store, run_id: str, step_id: str) -> tuple[str, Any, Any, Recipe]:
    """(run id, the step's record, the step whose output shape an edit must keep, the
    run's pinned recipe) of a step a person may edit now, or a `ReviewError` saying why
    not."""
    run = store.get_run(run_id)
    if run.status == Status.RUNNING and not run.orphaned:
        raise ReviewError(f"run {run.id} is running (process {run.pid})",
                          "edit its steps once it has finished or paused")
    pending = store.reviews(run_id=run.id)
    if pending:  # the item under review would not see the edit
        raise ReviewError(f"run {run.id} waits for review {pending[0].id}",
                          f"decide it first; to change the output under review: podium "
                          f"review edit {pending[0].id}")
    records = {s.step_id: s for s in store.get_steps(run.id)}
    record = records.get(step_id)
    if record is None:
        raise ReviewError(f"run {run.id} has no step '{step_id}'",
                          did_you_mean(step_id, records, "steps: " + ", ".join(records)))
    if record.status != Status.SUCCEEDED:
        raise ReviewError(f"step '{step_id}' has no output to edit (it {record.status})",
                          f"settle it by hand with: podium resume {run.id} --output "
                          f"{step_id}=TEXT")
    recipe = pinned(store, run)
    step = recipe.steps[step_id]
    if isinstance(step, ReviewStep):  # a gate passes the reviewed step's output on
        step = recipe.steps[step.of]
    return run.id, record, step, recipe


def edit_output(store: Store, run_id: str, step_id: str, text: str, *,
                by: str | None = None) -> Edit:
    """Store `text` (shaped like the step's output, JSON checked against its schema) as
    a new version of a finished step's output, and mark every step downstream stale.
    The original stays stored; `podium rerun` recomputes the stale steps."""

    rid, record, step, recipe = editable(store, run_id, step_id)
    if not text.strip():
        raise ReviewError("the new output is empty", "give the text or JSON the step "
                          "should have output")
    value = parse_value(step, text, record.output, where=step_id)
    if value == record.output:
        return Edit(rid, step_id, None, [])
    plan = recipe.plan
    downstream = [s for s in plan.order if s in plan.descendants(step_id)]
    version = store.edit_step(rid, step_id, value, by=by or who(), stale={
        s: f"'{step_id}' was edited by hand" for s in downstream})
    return Edit(rid, step_id, version, downstream)
