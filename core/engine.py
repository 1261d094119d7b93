"""The scheduler: run a recipe's DAG with ready steps in parallel, durably.

Every step's result is committed to the store before anything that depends on it
starts; a result nothing waits on is committed within `GROUP_COMMIT_S` (group commit),
so a killed process loses at most the steps in flight or just finished. A failed step
skips its dependents (reason stored) while independent branches finish.
Cancellation (Ctrl-C) marks the in-flight steps cancelled and the run resumable.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import gates, templates
from core.errors import (
    InputError,
    PodiumError,
    ProviderError,
    RateLimited,
    RunBusy,
    StepError,
    StoreError,
)
from core.events import (
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepRetrying,
    StepStarted,
    StepText,
)
from core.hub import ModelHub
from core.inputs import resolve_inputs
from core.plan import Plan
from core.provider import Usage
from core.recipe import MODEL_KINDS, Recipe, loads
from core.reruns import KeyMaker, from_cache, out_of_date
from core.schedule import Schedule
from core.steps import RUNNERS, StepContext, StepResult
from core.store import Finished, Store

BY_HAND = "by hand: "
PARTIAL_EVERY_S = 0.5
# A finished step that no other step is waiting for is committed within this long.
GROUP_COMMIT_S = 0.005
# How often a run with open reviews looks for decisions made by another process.
POLL_S = 0.2


@dataclass
class RunResult:
    """How a run ended."""

    run_id: str
    status: str
    outputs: dict[str, Any] | None
    error: str | None = None


class Engine:
    """Runs recipes against a store with the models of a hub."""

    def __init__(self, store: Store, hub: ModelHub, *, max_parallel: int = 8,
                 on_event: Callable[[Event], None] | None = None) -> None:
        self.store = store
        self.hub = hub
        self.max_parallel = max_parallel
        self.on_event = on_event or (lambda e: None)
        # Runs this engine is executing, by id: their loop's wake-up queue.
        self._active: dict[str, asyncio.Queue[asyncio.Task[Finished] | None]] = {}

    async def run(self, recipe: Recipe, inputs: dict[str, Any], *,
                  base_dir: str | None = None) -> RunResult:
        """Validate inputs, create the run, execute it."""
        values = resolve_inputs(recipe, inputs, base_dir=base_dir)
        plan = recipe.plan
        run_id = self.store.create_run(recipe, values, plan.order)
        return await self._execute(run_id, recipe, plan, values, {}, {})

    def create(self, recipe: Recipe, inputs: dict[str, Any], *,
               base_dir: str | None = None) -> str:
        """Create a run without executing it (the TUI starts it in a worker)."""
        values = resolve_inputs(recipe, inputs, base_dir=base_dir)
        return self.store.create_run(recipe, values, recipe.plan.order)

    async def resume(self, run_id: str, *, skip: list[str] | None = None,
                     settle: dict[str, Any] | None = None, force: bool = False) -> RunResult:
        """Continue a run from the store: finished steps stay; the rest run.

        `skip` marks unfinished steps skipped by hand; `settle` gives them an output
        by hand (for steps left in doubt by a crash)."""
        run = self.store.get_run(run_id)
        if run.status == "succeeded" and not (skip or settle):
            return RunResult(run.id, run.status, run.outputs)
        # Claimed before anything changes: of two processes resuming at once (two people
        # deciding two reviews of one run), the second gets RunBusy and leaves it be.
        self.store.claim_run(run.id, force=force)
        self.store.settle_attempts(run.id)
        name, path, source = self.store.recipe_source(run.recipe_hash)
        recipe = loads(source, path, checked=True)
        plan = recipe.plan
        records = {s.step_id: s for s in self.store.get_steps(run.id)}
        for sid in list(skip or []) + list(settle or {}):
            if sid not in records:
                raise StoreError(f"run {run.id} has no step '{sid}'",
                                 "steps: " + ", ".join(records))
            if records[sid].status == "succeeded":
                raise StoreError(f"step '{sid}' already succeeded; nothing to settle")
        outputs: dict[str, Any] = {}
        done: dict[str, str] = {}
        asked = {r.step_id for r in self.store.reviews(run_id=run.id)}  # still undecided
        for sid, rec in records.items():
            if rec.status == "succeeded":
                outputs[sid] = rec.output
                done[sid] = "succeeded"
            elif rec.status == "skipped" and (rec.reason or "").startswith(BY_HAND):
                done[sid] = "skipped"
            elif rec.status == "waiting" and sid in asked:
                done[sid] = "waiting"  # nothing to do until a person decides
        from core.review import parse_value

        for sid, value in (settle or {}).items():
            if isinstance(value, str):  # typed by a person: shaped like the step's output
                value = parse_value(recipe.steps[sid], value, where=sid)
            self.store.finish_step(run.id, sid, 0, status="succeeded", output=value,
                                   has_output=True, model="by hand")
            outputs[sid] = value
            done[sid] = "succeeded"
        if skip:
            self.store.commit(run.id, skipped={s: BY_HAND + "skipped on resume" for s in skip})
            done.update({s: "skipped" for s in skip})
        again = [sid for sid in records if sid not in done]
        self.store.reset_steps(run.id, again)
        attempts = {sid: rec.attempts for sid, rec in records.items()}
        return await self._execute(run.id, recipe, plan, run.inputs, outputs, done, attempts)

    async def rerun(self, run_id: str, *, from_step: str | None = None,
                    use_cache: bool = True) -> RunResult | None:
        """Recompute what is out of date in a run, as a new run linked to it (the old
        run is never changed): steps made stale by an edit, steps that did not
        succeed, `from_step` if given, and everything downstream of those. The rest
        is kept; recomputed steps whose cache key is unchanged come from the cache.
        None when nothing is out of date. `use_cache=False` runs them all."""
        old = self.store.get_run(run_id)
        if old.status == "running" and not old.orphaned:
            raise RunBusy(old.id, old.pid, None)
        if old.status == "waiting":
            raise StoreError(f"run {old.id} is waiting for review",
                             "decide its items first (podium review), or resume it")
        recipe, records, redo = out_of_date(self.store, old.id, from_step)
        if not redo:
            return None
        plan = recipe.plan
        new_id = self.store.create_run(recipe, old.inputs, plan.order, parent_run_id=old.id)
        keep = [s for s in plan.order if s not in redo and records[s].status == "succeeded"]
        skipped = {s: records[s].reason or "skipped" for s in plan.order
                   if s not in redo and records[s].status == "skipped"}
        self.store.keep_steps(new_id, old.id, keep)
        if skipped:
            self.store.commit(new_id, skipped=skipped)
        outputs: dict[str, Any] = {s: records[s].output for s in keep}
        outputs.update(dict.fromkeys(skipped))
        done = dict.fromkeys(keep, "succeeded") | dict.fromkeys(skipped, "skipped")
        return await self._execute(new_id, recipe, plan, old.inputs, outputs, done,
                                   cached=use_cache)

    async def decide(self, review_id: int | str, action: str, *, proceed: bool = True,
                     **details: Any) -> RunResult | None:
        """Record a person's decision (see `core.review.decide`), then carry on: a run
        this engine is executing picks it up at once; a run that was left waiting (or
        whose process died) is resumed here, unless `proceed` is false. None when
        nothing ran here (another live process runs it, and picks the decision up)."""
        from core.review import decide

        record = decide(self.store, review_id, action, **details)
        wake = self._active.get(record.run_id)
        if wake is not None:
            wake.put_nowait(None)
            return None
        run = self.store.get_run(record.run_id)
        if proceed and (run.status == "waiting" or run.orphaned):
            try:
                return await self.resume(record.run_id)
            except RunBusy:
                return None
        return None

    # --- the loop -------------------------------------------------------------------------

    async def _execute(self, run_id: str, recipe: Recipe, plan: Plan, inputs: dict[str, Any],
                       outputs: dict[str, Any], done: dict[str, str],
                       attempts: dict[str, int] | None = None, *,
                       cached: bool = False) -> RunResult:
        self.store.claim_run(run_id)
        self.on_event(RunStarted(run_id, recipe.name, tuple(plan.order), dict(done)))
        schedule = Schedule(recipe, plan, {s: done.get(s, "pending") for s in plan.order})
        for sid, out in outputs.items():  # branches decided before a resume still hold
            if recipe.steps[sid].kind == "branch" and isinstance(out, dict):
                schedule.chosen[sid] = frozenset(out.get("chosen", ()))
        gates.start_budget(self, run_id, recipe)
        tried = dict(attempts or {})
        limit = min(self.max_parallel, recipe.max_parallel)
        running: dict[asyncio.Task[Finished], str] = {}
        waiting = {s for s, st in done.items() if st == "waiting"}
        values = {"inputs": inputs, "steps": outputs}
        keys = KeyMaker(recipe, plan, values, self.hub)
        finished: list[Finished] = []
        flush = False
        completed: asyncio.Queue[asyncio.Task[Finished] | None] = asyncio.Queue()
        self._active[run_id] = completed
        polled = time.monotonic()
        try:
            while True:
                skipped: dict[str, str] = {}
                starting: list[tuple[str, int]] = []
                while schedule.has_ready() and len(running) + len(starting) < limit:
                    sid, verdict = schedule.pop()
                    hit = from_cache(self.store, recipe, sid, keys) \
                        if cached and verdict == "run" else None
                    if hit is not None:  # same work as before: no need to do it again
                        finished.append(hit)
                        outputs[sid] = hit.output
                        if recipe.steps[sid].kind == "branch":
                            schedule.chosen[sid] = frozenset(hit.output.get("chosen", ()))
                        schedule.settle(sid, "succeeded")
                    elif verdict == "run":
                        tried[sid] = tried.get(sid, 0) + 1
                        starting.append((sid, tried[sid]))
                        schedule.status[sid] = "running"
                    else:
                        skipped[sid] = verdict
                        outputs[sid] = None
                        schedule.settle(sid, "skipped", verdict)
                # One transaction for what finished, what it skipped and what starts now.
                # Results that nothing waits on may wait a moment for company (group
                # commit), so a burst of finishes costs one commit, not one each.
                if starting or skipped or not running or flush:
                    self.store.commit(run_id, finished=finished, skipped=skipped,
                                      started=starting)
                    self._announce(run_id, finished, skipped)
                    finished, flush = [], False
                for sid, attempt in starting:
                    task = asyncio.create_task(self._run_step(run_id, recipe, sid, attempt,
                                                              values, keys))
                    task.add_done_callback(completed.put_nowait)
                    running[task] = sid
                if not running:
                    if schedule.has_ready():
                        continue
                    if waiting:
                        # Pause, unless a decision came in meanwhile: checked and written
                        # in one transaction, so a person deciding in another process
                        # either is seen here or sees the run waiting and resumes it.
                        parked = self._park(run_id, recipe, plan, values, schedule, waiting)
                        if parked is None:
                            continue
                        return parked
                    break
                # A queue of finished tasks, not asyncio.wait: that re-arms a callback on
                # every running task at each wake-up, quadratic in a wide fan-out.
                timeout = GROUP_COMMIT_S if finished else POLL_S if waiting else None
                done_tasks: list[asyncio.Task[Finished] | None]
                try:
                    done_tasks = [await (asyncio.wait_for(completed.get(), timeout)
                                         if timeout else completed.get())]
                except TimeoutError:
                    flush = bool(finished)
                    done_tasks = []
                while not completed.empty():
                    done_tasks.append(completed.get_nowait())
                if waiting and (None in done_tasks or time.monotonic() - polled >= POLL_S):
                    polled = time.monotonic()  # a decision may have come: look
                    for sid in waiting - self.store.asking(run_id, waiting):
                        waiting.discard(sid)
                        schedule.reopen(sid)
                for done_task in done_tasks:
                    if done_task is None:  # a wake-up from `decide`
                        continue
                    sid = running.pop(done_task)
                    result = done_task.result()
                    tried[sid] = result.attempt
                    finished.append(result)
                    if result.status == "waiting":
                        waiting.add(sid)
                        schedule.status[sid] = "waiting"
                        continue
                    if result.status == "succeeded":
                        if keys.remade and result.cache_key != keys.key(sid):
                            result.stale = keys.remade  # an input changed while it ran
                        outputs[sid] = result.output
                        chosen = keys.chosen.pop(sid, None)
                        if chosen is not None:
                            schedule.chosen[sid] = chosen
                    schedule.settle(sid, result.status)
        except BaseException as e:
            # Cancelled (Ctrl-C), or a failure of the loop itself: stop the steps in
            # flight, keep every result that did arrive, and leave the run resumable.
            interrupted = await self._stop(run_id, running, finished)
            if isinstance(e, asyncio.CancelledError | KeyboardInterrupt):
                status, error = "cancelled", "cancelled by the user"
            else:
                status, error = "failed", f"internal error: {type(e).__name__}: {e}"
            for sid in interrupted:
                self.on_event(StepFinished(run_id, sid, "cancelled"))
            self.store.finish_run(run_id, status, None, error,
                                  f"continue with: podium resume {run_id}")
            self.on_event(RunFinished(run_id, status, None, error))
            raise
        finally:
            self._active.pop(run_id, None)
        failed = schedule.failed()
        final = self._outputs(recipe, plan, values, schedule.status)
        if failed:
            error = "failed: " + ", ".join(failed)
            self.store.finish_run(run_id, "failed", final, error,
                                  f"see `podium show {run_id}`; retry with `podium resume "
                                  f"{run_id}`")
            self.on_event(RunFinished(run_id, "failed", final, error))
            return RunResult(run_id, "failed", final, error)
        self.store.finish_run(run_id, "succeeded", final)
        self.on_event(RunFinished(run_id, "succeeded", final))
        return RunResult(run_id, "succeeded", final)

    def _park(self, run_id: str, recipe: Recipe, plan: Plan, values: dict[str, Any],
              schedule: Schedule, waiting: set[str]) -> RunResult | None:
        """Leave the run waiting for reviews; None (and the decided steps queued again)
        if some were decided in the meantime."""
        failed = schedule.failed()
        final = self._outputs(recipe, plan, values, schedule.status)
        error = ("failed: " + ", ".join(failed)) if failed else None
        gates = ", ".join(s for s in plan.order if s in waiting)
        decided = self.store.finish_run(run_id, "waiting", final, error,
                                        f"waiting for review: {gates}; decide with `podium "
                                        "review`, and the run continues (or later: podium "
                                        f"resume {run_id})", waiting_on=waiting)
        if decided:
            for sid in decided:
                waiting.discard(sid)
                schedule.reopen(sid)
            return None
        self.on_event(RunFinished(run_id, "waiting", final, error))
        return RunResult(run_id, "waiting", final, error)

    async def _stop(self, run_id: str, running: dict[asyncio.Task[Finished], str],
                    finished: list[Finished]) -> list[str]:
        """Cancel the steps in flight; commit results that arrived (even in the last
        moment); mark the rest cancelled. Returns the steps interrupted."""
        for task in running:
            task.cancel()
        await asyncio.gather(*running, return_exceptions=True)
        interrupted = []
        for task, sid in running.items():
            if task.cancelled() or task.exception() is not None:
                interrupted.append(sid)
            else:
                finished.append(task.result())
        self.store.commit(run_id, finished=finished)
        self.store.interrupt_steps(run_id, interrupted, "cancelled")
        return interrupted

    def _announce(self, run_id: str, finished: list[Finished], skipped: dict[str, str]) -> None:
        """Events for what was just committed."""
        for f in finished:
            self.on_event(StepFinished(run_id, f.step_id, f.status, f.output, f.model,
                                       f.input_tokens, f.output_tokens, f.latency_ms,
                                       f.error, f.reason))
        for sid, why in skipped.items():
            self.on_event(StepFinished(run_id, sid, "skipped", reason=why))

    async def _run_step(self, run_id: str, recipe: Recipe, sid: str, attempt: int,
                        values: dict[str, Any], keys: KeyMaker,
                        feedback: list[tuple[Any, str]] | None = None,
                        runner: Any = None, redo: bool = False) -> Finished:
        """Every attempt of one step; the result is committed by the caller. `feedback`
        is what reviewers said of earlier outputs; `runner` replaces the step kind's
        (to make one item of a map or ensemble again); `redo`: a reviewed step made
        again, whose stored state stays as it is until the new output succeeds."""
        step = recipe.steps[sid]
        if step.kind == "review":
            return await gates.review_step(self, run_id, recipe, sid, attempt, values, keys)
        if not redo and step.kind in MODEL_KINDS and self.hub.budget.capped(run_id):
            held = gates.budget_hold(self, run_id, sid, attempt)
            if held is not None:
                return held
        key = keys.key(sid)  # before it runs: what it is computed from
        runner = runner or RUNNERS[step.kind]
        last_error: PodiumError | None = None
        spent_usage, spent_cost = Usage(), 0.0  # of failed attempts: paid for all the same
        for tries in range(step.retries + 1):
            if tries:
                attempt += 1
                if redo:
                    self.store.add_attempt(run_id, sid, attempt)
                else:
                    self.store.start_step(run_id, sid, attempt)
            self.on_event(StepStarted(run_id, sid, step.kind, attempt))
            ctx = StepContext(run_id, sid, values, self.hub,
                              on_text=self._text_sink(run_id, sid), attempt=tries + 1,
                              feedback=feedback or [])
            started = time.perf_counter()
            try:
                coro = runner(step, ctx)
                result = await (asyncio.wait_for(coro, step.timeout) if step.timeout else coro)
            except TimeoutError:
                last_error = StepError(f"timed out after {step.timeout:g} s",
                                       "raise the step's timeout")
                last_error.retryable = True  # type: ignore[attr-defined]
            except PodiumError as e:
                last_error = e
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug, not an expected failure: keep the run going
                last_error = StepError(f"internal error: {type(e).__name__}: {e}",
                                       "this is a bug in Podium; please report it")
            else:
                if result.chosen is not None:
                    keys.chosen[sid] = result.chosen
                done = self._succeeded(sid, attempt, ctx, result, started, key)
                done.input_tokens += spent_usage.input_tokens
                done.output_tokens += spent_usage.output_tokens
                done.cost += spent_cost
                return done
            spent_usage, spent_cost = spent_usage + ctx.usage, spent_cost + ctx.cost
            latency = (time.perf_counter() - started) * 1000
            retryable = getattr(last_error, "retryable", False)
            if not retryable or tries == step.retries:
                break
            delay = step.backoff * (2**tries) * (0.5 + random.random())
            if isinstance(last_error, RateLimited) and last_error.retry_after:
                delay = max(delay, last_error.retry_after)
            self.store.end_attempt(run_id, sid, attempt, "failed", error=last_error.message,
                                   input_tokens=ctx.usage.input_tokens,
                                   output_tokens=ctx.usage.output_tokens, latency_ms=latency)
            self.on_event(StepRetrying(run_id, sid, attempt, last_error.message, delay))
            await asyncio.sleep(delay)
        assert last_error is not None
        return Finished(sid, attempt, "failed",
                        model=ctx.decisions[-1].model if ctx.decisions else None,
                        error=last_error.message, hint=last_error.hint,
                        input_tokens=spent_usage.input_tokens,
                        output_tokens=spent_usage.output_tokens, cost=spent_cost,
                        latency_ms=(time.perf_counter() - started) * 1000)

    @staticmethod
    def _succeeded(sid: str, attempt: int, ctx: StepContext, result: StepResult,
                   started: float, key: str) -> Finished:
        decision = ctx.decisions[-1] if ctx.decisions else None
        models = sorted(set(ctx.answered))
        return Finished(
            sid, attempt, "succeeded", output=result.output, has_output=True,
            model=",".join(models) if models else None,
            tier=decision.tier if decision else None,
            route=decision.to_dict() if decision else None,
            input_tokens=ctx.usage.input_tokens, output_tokens=ctx.usage.output_tokens,
            cost=ctx.cost, latency_ms=(time.perf_counter() - started) * 1000, cache_key=key)

    def _text_sink(self, run_id: str, sid: str) -> Callable[[str], None]:
        parts: list[str] = []
        saved = [time.monotonic()]

        def sink(text: str) -> None:
            parts.append(text)
            self.on_event(StepText(run_id, sid, text))
            now = time.monotonic()
            if now - saved[0] >= PARTIAL_EVERY_S:  # keep what streamed, in case we die
                saved[0] = now
                self.store.save_partial(run_id, sid, "".join(parts))

        return sink

    @staticmethod
    def _outputs(recipe: Recipe, plan: Plan, values: dict[str, Any],
                 status: dict[str, str]) -> dict[str, Any]:
        if recipe.outputs:
            out: dict[str, Any] = {}
            for name, expr in recipe.outputs.items():
                try:
                    out[name] = templates.evaluate(expr, values, what=f"outputs.{name}")
                except PodiumError:
                    out[name] = None
            return out
        sinks = [s for s in plan.order if not plan.dependents.get(s)]
        return {s: values["steps"].get(s) for s in sinks if status.get(s) == "succeeded"}


__all__ = ["Engine", "InputError", "ProviderError", "RunResult"]
