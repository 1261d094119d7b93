"""One run's loop: its state, and the small steps that drive it.

Every step's result is committed to the store before anything that depends on it
starts; a result nothing waits on is committed within `GROUP_COMMIT_S` (group commit),
so a killed process loses at most the steps in flight or just finished. A failed step
skips its dependents (reason stored) while independent branches finish.
Cancellation (Ctrl-C) marks the in-flight steps cancelled and the run resumable.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podium.core.errors import PodiumError
from podium.core.events import Event, RunFinished, RunStarted, StepFinished
from podium.core.models.hub import ModelHub
from podium.core.recipe import templates
from podium.core.recipe.schema import Recipe
from podium.core.review.budget import start_budget
from podium.core.review.gate import Reviewed
from podium.core.run.attempts import StepRun
from podium.core.run.remake import Remake
from podium.core.run.reruns import KeyMaker, from_cache
from podium.core.run.schedule import Schedule
from podium.core.steps import registry
from podium.core.steps.base import StepContext
from podium.core.store import Finished, Status, Store
from podium.core.tools.catalog import ToolSource

# A finished step that no other step is waiting for is committed within this long.
GROUP_COMMIT_S = 0.005
# How often a run with open reviews looks for decisions made by another process.
POLL_S = 0.2

Wake = asyncio.Task[Finished] | None  # a finished step, or None: a decision came in


@dataclass
class RunResult:
    """How a run ended."""

    run_id: str
    status: str
    outputs: dict[str, Any] | None
    error: str | None = None


class RunLoop:
    """Executes one run: starts ready steps (at most `limit` at once), collects their
    results, commits them, polls for review decisions, and finishes the run. `outputs`
    and `done` hold what earlier processes finished (a resume or a rerun); `attempts`
    how often each step was tried; `cached`: take unchanged steps from the cache."""

    def __init__(self, store: Store, hub: ModelHub, emit: Callable[[Event], None],
                 run_id: str, recipe: Recipe, inputs: dict[str, Any],
                 outputs: dict[str, Any], done: dict[str, str], *, limit: int,
                 attempts: dict[str, int] | None = None, cached: bool = False,
                 tool_sources: ToolSource | None = None) -> None:
        self.store = store
        self.tool_sources = tool_sources
        self.hub = hub
        self.emit = emit
        self.run_id = run_id
        self.recipe = recipe
        self.plan = recipe.plan
        self.limit = limit
        self.cached = cached
        self.values: dict[str, Any] = {"inputs": inputs, "steps": outputs}
        self.schedule = Schedule(recipe, self.plan,
                                 {s: done.get(s, Status.PENDING) for s in self.plan.order})
        self.tried = dict(attempts or {})
        self.waiting = {s for s, st in done.items() if st == Status.WAITING}
        self.running: dict[asyncio.Task[Finished], str] = {}
        self.finished: list[Finished] = []  # arrived, not yet committed
        self.keys = KeyMaker(recipe, self.values, hub)
        self.steps = StepRun(store, hub, emit, run_id, recipe, self.values, self)
        self._wake: asyncio.Queue[Wake] = asyncio.Queue()
        self._flush = False
        self._polled = time.monotonic()
        self._done = done

    # --- what steps may ask of the run (`RunAccess`) --------------------------------------

    def reviewed(self, ctx: StepContext) -> Reviewed:
        """How the gate running in `ctx` remakes the output it reviews."""
        return Remake(self.steps, self.keys, ctx, self.announce)

    def wake(self) -> None:
        """A decision was recorded in this process: look at once."""
        self._wake.put_nowait(None)

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> RunResult:
        """Drive the run until it ends or waits for a person."""
        self.store.claim_run(self.run_id)
        self.emit(RunStarted(self.run_id, self.recipe.name, tuple(self.plan.order),
                             dict(self._done)))
        for sid, out in self.values["steps"].items():  # choices made before a resume hold
            chosen = registry.of(self.recipe.steps[sid]).chosen
            if chosen is not None and out is not None:
                self.schedule.chosen[sid] = chosen(out)
        start_budget(self.store, self.hub, self.run_id, self.recipe)
        try:
            while True:
                self.start_ready()
                if not self.running:
                    if self.schedule.has_ready():
                        continue
                    if self.waiting:
                        parked = self.park()
                        if parked is None:
                            continue
                        return parked
                    break
                arrived = await self.collect()
                self.poll_decisions(arrived)
                for task in arrived:
                    if task is not None:
                        self.settle(task)
        except BaseException as e:
            await self.stop(e)
            raise
        return self.finish()

    def start_ready(self) -> None:
        """Decide every ready step (run it, skip it, or take it from the cache), commit
        what finished meanwhile in the same transaction, and start the runs."""
        skipped: dict[str, str] = {}
        starting: list[tuple[str, int]] = []
        schedule = self.schedule
        while schedule.has_ready() and len(self.running) + len(starting) < self.limit:
            sid, verdict = schedule.pop()
            hit = from_cache(self.store, self.recipe, sid, self.keys) \
                if self.cached and verdict == "run" else None
            if hit is not None:  # same work as before: no need to do it again
                self.finished.append(hit)
                self.record_output(hit)
                schedule.settle(sid, Status.SUCCEEDED)
            elif verdict == "run":
                self.tried[sid] = self.tried.get(sid, 0) + 1
                starting.append((sid, self.tried[sid]))
                schedule.status[sid] = Status.RUNNING
            else:
                skipped[sid] = verdict
                self.values["steps"][sid] = None
                schedule.settle(sid, Status.SKIPPED, verdict)
        # One transaction for what finished, what it skipped and what starts now.
        # Results that nothing waits on may wait a moment for company (group commit),
        # so a burst of finishes costs one commit, not one each.
        if starting or skipped or not self.running or self._flush:
            self.store.commit(self.run_id, finished=self.finished, skipped=skipped,
                              started=starting)
            self.announce(self.finished, skipped)
            self.finished, self._flush = [], False
        for sid, attempt in starting:
            kind = registry.of(self.recipe.steps[sid])
            key = self.keys.key(sid) if kind.cacheable else None  # what it is made from
            task = asyncio.create_task(self.steps.attempts(sid, attempt, key))
            task.add_done_callback(self._wake.put_nowait)
            self.running[task] = sid

    async def collect(self) -> list[Wake]:
        """Wait for what finishes next (or a decision), then take all that is there.
        A queue of finished tasks, not asyncio.wait: that re-arms a callback on every
        running task at each wake-up, quadratic in a wide fan-out."""
        timeout = GROUP_COMMIT_S if self.finished else POLL_S if self.waiting else None
        arrived: list[Wake] = []
        try:
            arrived.append(await (asyncio.wait_for(self._wake.get(), timeout) if timeout
                                  else self._wake.get()))
        except TimeoutError:
            self._flush = bool(self.finished)
        while not self._wake.empty():
            arrived.append(self._wake.get_nowait())
        return arrived

    def poll_decisions(self, arrived: list[Wake]) -> None:
        """Reopen gates a person decided (in this process: woken; in another: polled)."""
        if not self.waiting:
            return
        if None in arrived or time.monotonic() - self._polled >= POLL_S:
            self._polled = time.monotonic()
            for sid in self.waiting - self.store.asking(self.run_id, self.waiting):
                self.waiting.discard(sid)
                self.schedule.reopen(sid)

    def settle(self, task: asyncio.Task[Finished]) -> None:
        """Take in one step's result."""
        sid = self.running.pop(task)
        result = task.result()
        self.tried[sid] = result.attempt
        self.finished.append(result)
        if result.status == Status.WAITING:
            self.waiting.add(sid)
            self.schedule.status[sid] = Status.WAITING
            return
        if result.status == Status.SUCCEEDED:
            if self.keys.remade and result.cache_key is not None and \
                    result.cache_key != self.keys.key(sid):
                result.stale = self.keys.remade  # an input changed while it ran
            self.record_output(result)
        self.schedule.settle(sid, result.status)

    def record_output(self, result: Finished) -> None:
        """A succeeded step's output, for the templates and keys of the steps after it."""
        sid = result.step_id
        self.values["steps"][sid] = result.output
        self.keys.digests[sid] = result.artifact()[0]
        chosen = registry.of(self.recipe.steps[sid]).chosen
        if chosen is not None:
            self.schedule.chosen[sid] = chosen(result.output)

    def park(self) -> RunResult | None:
        """Leave the run waiting for reviews; None (and the decided steps queued again)
        if some were decided in the meantime. Checked and written in one transaction,
        so a person deciding in another process either is seen here or sees the run
        waiting and resumes it."""
        failed = self.schedule.failed()
        final = self.outputs()
        error = ("failed: " + ", ".join(failed)) if failed else None
        gates = ", ".join(s for s in self.plan.order if s in self.waiting)
        decided = self.store.finish_run(
            self.run_id, Status.WAITING, final, error, f"waiting for review: {gates}; decide with "
            f"`podium review`, and the run continues (or later: podium resume {self.run_id})",
            waiting_on=self.waiting)
        if decided:
            for sid in decided:
                self.waiting.discard(sid)
                self.schedule.reopen(sid)
            return None
        self.emit(RunFinished(self.run_id, Status.WAITING, final, error))
        return RunResult(self.run_id, Status.WAITING, final, error)

    def finish(self) -> RunResult:
        """Commit the last results and end the run, succeeded or failed."""
        if self.finished:
            self.store.commit(self.run_id, finished=self.finished)
            self.announce(self.finished)
            self.finished = []
        failed = self.schedule.failed()
        final = self.outputs()
        if failed:
            error = "failed: " + ", ".join(failed)
            self.store.finish_run(self.run_id, Status.FAILED, final, error,
                                  f"see `podium show {self.run_id}`; retry with `podium "
                                  f"resume {self.run_id}`")
            self.emit(RunFinished(self.run_id, Status.FAILED, final, error))
            return RunResult(self.run_id, Status.FAILED, final, error)
        self.store.finish_run(self.run_id, Status.SUCCEEDED, final)
        self.emit(RunFinished(self.run_id, Status.SUCCEEDED, final))
        return RunResult(self.run_id, Status.SUCCEEDED, final)

    async def stop(self, e: BaseException) -> None:
        """Cancelled (Ctrl-C), or a failure of the loop itself: stop the steps in flight,
        keep every result that did arrive, and leave the run resumable."""
        for task in self.running:
            task.cancel()
        await asyncio.gather(*self.running, return_exceptions=True)
        interrupted = []
        for task, sid in self.running.items():
            if task.cancelled() or task.exception() is not None:
                interrupted.append(sid)
            else:
                self.finished.append(task.result())
        self.store.commit(self.run_id, finished=self.finished)
        self.store.interrupt_steps(self.run_id, interrupted, Status.CANCELLED)
        if isinstance(e, asyncio.CancelledError | KeyboardInterrupt):
            status, error = Status.CANCELLED, "cancelled by the user"
        elif isinstance(e, PodiumError):  # the disk filled, say: not a bug
            status, error = Status.FAILED, e.message
        else:
            status, error = Status.FAILED, f"internal error: {type(e).__name__}: {e}"
        for sid in interrupted:
            self.emit(StepFinished(self.run_id, sid, Status.CANCELLED))
        self.store.finish_run(self.run_id, status, None, error,
                              f"continue with: podium resume {self.run_id}")
        self.emit(RunFinished(self.run_id, status, None, error))

    def announce(self, finished: list[Finished], skipped: dict[str, str] | None = None
                 ) -> None:
        """Events for what was just committed."""
        for f in finished:
            self.emit(StepFinished(self.run_id, f.step_id, f.status, f.output, f.model,
                                   f.input_tokens, f.output_tokens, f.latency_ms, f.error,
                                   f.reason))
        for sid, why in (skipped or {}).items():
            self.emit(StepFinished(self.run_id, sid, Status.SKIPPED, reason=why))

    def outputs(self) -> dict[str, Any]:
        """The run's outputs: the recipe's `outputs` expressions, or else the final
        steps' outputs."""
        status = self.schedule.status
        if self.recipe.outputs:
            out: dict[str, Any] = {}
            for name, expr in self.recipe.outputs.items():
                try:
                    out[name] = templates.evaluate(expr, self.values, what=f"outputs.{name}")
                except PodiumError:
                    out[name] = None
            return out
        sinks = [s for s in self.plan.order if not self.plan.dependents.get(s)]
        return {s: self.values["steps"].get(s) for s in sinks if status.get(s) == Status.SUCCEEDED}
