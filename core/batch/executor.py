"""Where a batch's rows run: the executor seam, and the one that runs them here.

An executor takes rows and reports each one's outcome as it lands; the driver's
store is written in this process only (SQLite keeps a single writer). The local
executor runs a window of `concurrency` rows at once through one `Engine` on this
event loop; another executor (Ray, in `podium.providers.ray_batch`) runs them
elsewhere and lands each finished run here with `Store.land_run`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Coroutine, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from podium.core.errors import PodiumError
from podium.core.recipe.inputs import resolve_inputs
from podium.core.recipe.schema import Recipe
from podium.core.run.engine import Engine, RunResult
from podium.core.store import Store, new_run_id


@dataclass(frozen=True)
class RowJob:
    """A row to run: its inputs, and the run it already has (resume that) or None."""

    index: int
    key: str
    inputs: dict[str, Any]
    run_id: str | None = None


@dataclass(frozen=True)
class RowOutcome:
    """How a row ended in this pass: its run's status (or `failed` when its inputs did
    not fit), with the run and the error."""

    index: int
    key: str
    status: str
    run_id: str | None
    error: str | None = None
    seconds: float = 0.0


@dataclass(frozen=True)
class BatchSpec:
    """What every executor needs to know of the batch it works on."""

    batch_id: str
    recipe: Recipe
    store: Store  # the driver's: written in this process only
    concurrency: int


Landed = Callable[[RowOutcome], None]


class Executor(Protocol):
    """Runs rows and reports each outcome (once per row) as it lands in the store."""

    name: str

    async def execute(self, spec: BatchSpec, jobs: list[RowJob], landed: Landed) -> None:
        """Run `jobs`; call `landed` for each once its result is stored."""
        ...


async def window(jobs: Iterable[RowJob], size: int,
                 work: Callable[[RowJob], Coroutine[Any, Any, None]]) -> None:
    """Run `work` for each job, at most `size` at once: tasks are made as room frees
    up, so a hundred thousand rows never sit in memory as tasks."""
    running: set[asyncio.Task[None]] = set()
    try:
        for job in jobs:
            if len(running) >= size:
                _, running = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
            running.add(asyncio.create_task(work(job)))
        if running:
            await asyncio.gather(*running)
    except BaseException:
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        raise


async def make_run(engine: Engine, recipe: Recipe, values: dict[str, Any],
                   run_id: str) -> RunResult:
    """Create a row's run under `run_id` with its resolved inputs and execute it: the
    same in this process and on a worker."""
    engine.store.create_run(recipe, values, recipe.plan.order, run_id=run_id)
    return await engine.start(run_id, recipe, values)


class LocalExecutor:
    """Rows in this process, `concurrency` runs at once on one event loop and one
    engine. Each row's run id is stored with the row before the run is made, so a
    kill at any point leaves either a row never started or a run to resume."""

    name = "local"

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    async def execute(self, spec: BatchSpec, jobs: list[RowJob], landed: Landed) -> None:
        """Run every job in a window of `spec.concurrency`."""

        async def one(job: RowJob) -> None:
            landed(await self.row(spec, job))

        await window(jobs, spec.concurrency, one)

    async def row(self, spec: BatchSpec, job: RowJob) -> RowOutcome:
        """One row: a fresh run, or the resume of the run it has. A failure is the
        row's, recorded with its error; the batch goes on."""
        store, started = spec.store, time.monotonic()
        if job.run_id is None:
            try:
                values = resolve_inputs(spec.recipe, job.inputs)
            except PodiumError as e:
                store.fail_row(spec.batch_id, job.index, e.message)
                return RowOutcome(job.index, job.key, "failed", None, e.message)
            run_id = new_run_id()
            store.link_row(spec.batch_id, job.index, run_id)
        else:
            run_id = job.run_id
        try:
            if job.run_id is None:
                result = await make_run(self.engine, spec.recipe, values, run_id)
            else:
                result = await self.engine.resume(run_id)
        except PodiumError as e:  # the run is stored with what went wrong
            return RowOutcome(job.index, job.key, "failed", run_id, e.message,
                              time.monotonic() - started)
        except Exception as e:  # noqa: BLE001  (a bug in one row must not sink the batch)
            return RowOutcome(job.index, job.key, "failed", run_id,
                              f"internal error: {type(e).__name__}: {e}",
                              time.monotonic() - started)
        return RowOutcome(job.index, job.key, result.status, run_id, result.error,
                          time.monotonic() - started)
