"""The scheduler: run a recipe's DAG with ready steps in parallel, durably.

Every step change is committed to the store before anything that depends on it
starts, so a killed process loses at most the steps in flight. A failed step
skips its dependents (reason stored) while independent branches finish.
Cancellation (Ctrl-C) marks the in-flight steps cancelled and the run resumable.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from core import templates
from core.errors import InputError, PodiumError, ProviderError, RateLimited, StepError, StoreError
from core.events import (
    Event,
    RunFinished,
    RunStarted,
    StepFinished,
    StepRetrying,
    StepStarted,
    StepText,
)
from core.inputs import resolve_inputs
from core.plan import Plan, build
from core.recipe import Recipe, loads
from core.steps import RUNNERS, StepContext, StepResult
from core.steps.base import ModelHub
from core.store import Store, dumps

BY_HAND = "by hand: "
PARTIAL_EVERY_S = 0.5


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

    async def run(self, recipe: Recipe, inputs: dict[str, Any], *,
                  base_dir: str | None = None) -> RunResult:
        """Validate inputs, create the run, execute it."""
        values = resolve_inputs(recipe, inputs, base_dir=base_dir)
        plan = build(recipe)
        run_id = self.store.create_run(recipe, values, plan.order)
        return await self._execute(run_id, recipe, plan, values, {}, {})

    def create(self, recipe: Recipe, inputs: dict[str, Any], *,
               base_dir: str | None = None) -> str:
        """Create a run without executing it (the TUI starts it in a worker)."""
        values = resolve_inputs(recipe, inputs, base_dir=base_dir)
        return self.store.create_run(recipe, values, build(recipe).order)

    async def resume(self, run_id: str, *, skip: list[str] | None = None,
                     settle: dict[str, Any] | None = None, force: bool = False) -> RunResult:
        """Continue a run from the store: finished steps stay; the rest run.

        `skip` marks unfinished steps skipped by hand; `settle` gives them an output
        by hand (for steps left in doubt by a crash)."""
        run = self.store.get_run(run_id)
        if run.status == "running" and not run.orphaned and not force:
            raise StoreError(f"run {run.id} is still running (process {run.pid})",
                             "wait for it, or stop that process first")
        if run.status == "succeeded" and not (skip or settle):
            return RunResult(run.id, run.status, run.outputs)
        name, path, source = self.store.recipe_source(run.recipe_hash)
        recipe = loads(source, path)
        plan = build(recipe)
        records = {s.step_id: s for s in self.store.get_steps(run.id)}
        for sid in list(skip or []) + list(settle or {}):
            if sid not in records:
                raise StoreError(f"run {run.id} has no step '{sid}'",
                                 "steps: " + ", ".join(records))
            if records[sid].status == "succeeded":
                raise StoreError(f"step '{sid}' already succeeded; nothing to settle")
        outputs: dict[str, Any] = {}
        done: dict[str, str] = {}
        for sid, rec in records.items():
            if rec.status == "succeeded":
                outputs[sid] = rec.output
                done[sid] = "succeeded"
            elif rec.status == "skipped" and (rec.reason or "").startswith(BY_HAND):
                done[sid] = "skipped"
        for sid, value in (settle or {}).items():
            self.store.finish_step(run.id, sid, 0, status="succeeded", output=value,
                                   has_output=True, model="by hand")
            outputs[sid] = value
            done[sid] = "succeeded"
        if skip:
            self.store.skip_steps(run.id, {s: BY_HAND + "skipped on resume" for s in skip})
            done.update({s: "skipped" for s in skip})
        again = [sid for sid in records if sid not in done]
        self.store.reset_steps(run.id, again)
        return await self._execute(run.id, recipe, plan, run.inputs, outputs, done)

    # --- the loop -------------------------------------------------------------------------

    async def _execute(self, run_id: str, recipe: Recipe, plan: Plan, inputs: dict[str, Any],
                       outputs: dict[str, Any], done: dict[str, str]) -> RunResult:
        self.store.claim_run(run_id)
        self.on_event(RunStarted(run_id, recipe.name, tuple(plan.order), dict(done)))
        status: dict[str, str] = {s: done.get(s, "pending") for s in plan.order}
        reasons: dict[str, str] = {}
        chosen: dict[str, frozenset[str]] = {}
        for sid, out in outputs.items():  # branches decided before a resume still hold
            if recipe.steps[sid].kind == "branch" and isinstance(out, dict):
                chosen[sid] = frozenset(out.get("chosen", ()))
        limit = min(self.max_parallel, recipe.max_parallel)
        running: dict[asyncio.Task[tuple[str, StepResult | None]], str] = {}
        values = {"inputs": inputs, "steps": outputs}
        try:
            while True:
                skips: dict[str, str] = {}
                for sid in plan.order:
                    if status[sid] != "pending" or len(running) >= limit:
                        continue
                    verdict = self._verdict(sid, plan, status, reasons, chosen, recipe)
                    if verdict is None:
                        continue
                    if verdict != "run":
                        skips[sid] = verdict
                        status[sid] = "skipped"
                        reasons[sid] = verdict
                        outputs[sid] = None
                        continue
                    status[sid] = "running"
                    task = asyncio.create_task(self._run_step(run_id, recipe, plan, sid, values))
                    running[task] = sid
                if skips:
                    self.store.skip_steps(run_id, skips)
                    for sid, why in skips.items():
                        self.on_event(StepFinished(run_id, sid, "skipped", reason=why))
                    continue  # a skip may settle more steps; look again before waiting
                if not running:
                    break
                finished, _ = await asyncio.wait(running, return_when=asyncio.FIRST_COMPLETED)
                for task in finished:
                    sid = running.pop(task)
                    _, result = task.result()
                    if result is None:
                        status[sid] = "failed"
                    else:
                        status[sid] = "succeeded"
                        outputs[sid] = result.output
                        if result.chosen is not None:
                            chosen[sid] = result.chosen
        except asyncio.CancelledError:
            for task in running:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
            self.store.interrupt_steps(run_id, list(running.values()), "cancelled")
            self.store.finish_run(run_id, "cancelled", None, "cancelled by the user",
                                  f"continue with: podium resume {run_id}")
            self.on_event(RunFinished(run_id, "cancelled", None, "cancelled"))
            raise
        failed = [s for s, st in status.items() if st == "failed"]
        final = self._outputs(recipe, plan, values, status)
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

    @staticmethod
    def _verdict(sid: str, plan: Plan, status: dict[str, str], reasons: dict[str, str],
                 chosen: dict[str, frozenset[str]], recipe: Recipe) -> str | None:
        """None: wait; "run": go; anything else: the reason to skip."""
        deps = plan.deps[sid]
        if any(status[d] in ("pending", "running") for d in deps):
            return None
        governor = plan.governed_by.get(sid)
        if governor is not None and status[governor] == "succeeded" and \
                sid not in chosen.get(governor, frozenset()):
            return f"not chosen by branch '{governor}'"
        bad = [d for d in sorted(deps) if status[d] != "succeeded"]
        if not bad:
            return "run"
        if recipe.steps[sid].join == "any" and len(bad) < len(deps):
            return "run"
        d = bad[0]
        return f"'{d}' {status[d]}" + (f" ({reasons[d]})" if d in reasons else "") \
            if status[d] == "skipped" else f"'{d}' failed"

    async def _run_step(self, run_id: str, recipe: Recipe, plan: Plan, sid: str,
                        values: dict[str, Any]) -> tuple[str, StepResult | None]:
        step = recipe.steps[sid]
        runner = RUNNERS[step.kind]
        deps = sorted(plan.deps[sid])
        attempt = self.store.attempt_count(run_id, sid)
        last_error: PodiumError | None = None
        for tries in range(step.retries + 1):
            attempt += 1
            self.store.start_step(run_id, sid, attempt)
            self.on_event(StepStarted(run_id, sid, step.kind, attempt))
            ctx = StepContext(run_id, sid, values, self.hub,
                              on_text=self._text_sink(run_id, sid), attempt=tries + 1)
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
                key = _cache_key(step.model_dump_json(), values, deps, ctx)
                return sid, self._commit(run_id, sid, attempt, ctx, result, started, key)
            latency = (time.perf_counter() - started) * 1000
            retryable = getattr(last_error, "retryable", False)
            if retryable and tries < step.retries:
                delay = step.backoff * (2**tries) * (0.5 + random.random())
                if isinstance(last_error, RateLimited) and last_error.retry_after:
                    delay = max(delay, last_error.retry_after)
                self.store.end_attempt(run_id, sid, attempt, "failed", error=last_error.message,
                                       input_tokens=ctx.usage.input_tokens,
                                       output_tokens=ctx.usage.output_tokens,
                                       latency_ms=latency)
                self.on_event(StepRetrying(run_id, sid, attempt, last_error.message, delay))
                await asyncio.sleep(delay)
                continue
            break
        assert last_error is not None
        model = ctx.decisions[-1].model if ctx.decisions else None
        self.store.finish_step(run_id, sid, attempt, status="failed", model=model,
                               error=last_error.message, hint=last_error.hint,
                               input_tokens=ctx.usage.input_tokens,
                               output_tokens=ctx.usage.output_tokens, cost=ctx.cost,
                               latency_ms=(time.perf_counter() - started) * 1000)
        self.on_event(StepFinished(run_id, sid, "failed", model=model, error=last_error.message))
        return sid, None

    def _commit(self, run_id: str, sid: str, attempt: int, ctx: StepContext,
                result: StepResult, started: float, key: str) -> StepResult:
        latency = (time.perf_counter() - started) * 1000
        decision = ctx.decisions[-1] if ctx.decisions else None
        models = sorted({d.model for d in ctx.decisions})
        model = ",".join(models) if models else None
        self.store.finish_step(
            run_id, sid, attempt, status="succeeded", output=result.output, has_output=True,
            model=model, tier=decision.tier if decision else None,
            route=decision.to_dict() if decision else None,
            input_tokens=ctx.usage.input_tokens, output_tokens=ctx.usage.output_tokens,
            cost=ctx.cost, latency_ms=latency, cache_key=key)
        self.on_event(StepFinished(run_id, sid, "succeeded", result.output, model,
                                   ctx.usage.input_tokens, ctx.usage.output_tokens, latency))
        return result

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


def _cache_key(definition: str, values: dict[str, Any], deps: list[str],
               ctx: StepContext) -> str:
    """Hash of what determines a step's output: its definition, the run's inputs, its
    dependencies' outputs and the models that answered."""
    h = hashlib.sha256(definition.encode())
    h.update(dumps(values["inputs"]).encode())
    h.update(dumps({d: values["steps"].get(d) for d in deps}).encode())
    h.update(",".join(sorted({d.model for d in ctx.decisions})).encode())
    return h.hexdigest()


__all__ = ["Engine", "InputError", "ProviderError", "RunResult"]
