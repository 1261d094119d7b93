"""A batch from start to end: store the dataset as rows, decide which rows still need
work, hand them to an executor, and count how they stand.

Resuming never runs a finished row again: a row whose run succeeded, failed (unless
asked), was skipped, or waits on a person's review is left alone. Rows never started
run fresh; a run left in doubt by a kill, or whose review was decided without
carrying on, continues from its stored steps on this machine.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from podium.core.batch.data import Dataset
from podium.core.batch.executor import BatchSpec, Executor, Landed, RowJob
from podium.core.recipe.schema import Recipe
from podium.core.store import Store, new_run_id
from podium.core.store.batches import RowRecord

# Run statuses a resume continues from the stored steps.
UNFINISHED = ("in_doubt", "cancelled", "pending", "running")
# Shown in this order; each row is in exactly one.
STATES = ("succeeded", "failed", "waiting", "skipped", "in_doubt", "running", "pending")


def create_batch(store: Store, recipe: Recipe, dataset: Dataset, *, executor: str,
                 concurrency: int, mapping: dict[str, str]) -> str:
    """Store a new batch with every row of `dataset`; return its id."""
    batch_id = new_run_id()
    store.create_batch(batch_id, recipe, str(dataset.path.resolve()), mapping, executor,
                       concurrency, [(r.index, r.key, r.line, r.values, r.problem)
                                     for r in dataset.rows])
    return batch_id


def counts(rows: list[RowRecord]) -> dict[str, int]:
    """Rows per state (STATES), every state present."""
    seen = Counter(state_of(r) for r in rows)
    return {s: seen.get(s, 0) for s in STATES}


def state_of(row: RowRecord) -> str:
    """A row's state among STATES: a cancelled run counts as in doubt (resumable), a
    row linked to a run not made yet (killed in between) as pending."""
    if row.status in ("cancelled",):
        return "in_doubt"
    if row.status == "started":
        return "pending"
    return row.status if row.status in STATES else "failed"


@dataclass
class Work:
    """What a pass over a batch will do."""

    fresh: list[RowJob]  # never started: any executor
    again: list[RowJob]  # a stored run to continue: on this machine


def work_left(store: Store, batch_id: str, *, retry_failed: bool = False) -> Work:
    """The rows that still need work, in row order."""
    fresh: list[RowJob] = []
    again: list[RowJob] = []
    for row in store.batch_rows(batch_id):
        job = RowJob(row.index, row.key, row.inputs, row.run_id)
        if row.status in ("pending", "started"):
            fresh.append(RowJob(row.index, row.key, row.inputs))
        elif row.run_id is not None and row.status in UNFINISHED:
            again.append(job)
        elif row.status == "waiting" and row.run_id is not None and \
                not store.reviews(run_id=row.run_id, limit=1):
            again.append(job)  # decided with --no-resume: carry it on
        elif row.status == "failed" and retry_failed:
            # Its inputs did not fit (no run): try them again; else continue its run.
            (again if row.run_id is not None else fresh).append(job)
    return Work(fresh, again)


async def run_batch(store: Store, batch_id: str, recipe: Recipe, executor: Executor,
                    local: Executor, landed: Landed, *, concurrency: int,
                    retry_failed: bool = False) -> Work:
    """Do the work left in a batch: stored runs continue with `local`, rows never
    started go to `executor` (the same one when it is local). Returns what it took on."""
    store.claim_batch(batch_id, executor.name, concurrency)
    work = work_left(store, batch_id, retry_failed=retry_failed)
    spec = BatchSpec(batch_id, recipe, store, concurrency)
    try:
        if local is executor:
            jobs = sorted(work.again + work.fresh, key=lambda j: j.index)
            await executor.execute(spec, jobs, landed)
        else:
            if work.again:
                await local.execute(spec, work.again, landed)
            if work.fresh:
                await executor.execute(spec, work.fresh, landed)
    finally:
        store.finish_batch(batch_id)
    return work
