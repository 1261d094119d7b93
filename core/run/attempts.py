"""Every attempt of one step: budget hold, the kind's runner under the step's timeout,
retries under the one retry policy, and the result as a `Finished` for the loop to
commit. Expected failures end the step, never the run."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podium.core.errors import PodiumError, StepError, StepTimeout
from podium.core.events import Event, StepNote, StepRetrying, StepStarted, StepText
from podium.core.models.caller import ModelCaller
from podium.core.models.hub import ModelHub
from podium.core.models.provider import Usage
from podium.core.recipe.schema import Recipe
from podium.core.retry import RetryPolicy
from podium.core.review.budget import budget_hold
from podium.core.run.items import StoredItems, items_key
from podium.core.steps import registry
from podium.core.steps.base import RunAccess, StepContext, StepResult
from podium.core.store import Finished, Status, Store

PARTIAL_EVERY_S = 0.5


@dataclass
class StepRun:
    """What running one step needs from its run: the store, the hub, where events go,
    the recipe, the template values, and the run's own services for gates."""

    store: Store
    hub: ModelHub
    emit: Callable[[Event], None]
    run_id: str
    recipe: Recipe
    values: dict[str, Any]
    access: RunAccess | None = None

    async def attempts(self, sid: str, attempt: int, key: str | None, *,
                       feedback: list[tuple[Any, str]] | None = None,
                       runner: Any = None, redo: bool = False) -> Finished:
        """Every attempt of `sid`, numbered from `attempt`; the result is committed by the
        caller. `key` is the cache key taken as it starts; `feedback` what reviewers
        said of earlier outputs; `runner` replaces the kind's (to make one item of a map
        or ensemble again); `redo`: a reviewed step made again, whose stored state stays
        as it is until the new output succeeds."""
        step = self.recipe.steps[sid]
        kind = registry.of(step)
        if not redo and kind.calls_model and self.hub.budget.capped(self.run_id):
            held = budget_hold(self.store, self.hub, self.emit, self.run_id, sid, attempt)
            if held is not None:
                return held
        run = runner or kind.run
        policy = RetryPolicy(step.retries, step.backoff)
        spent_usage, spent_cost = Usage(), 0.0  # of failed attempts: paid for all the same
        tries = 0
        while True:
            self.emit(StepStarted(self.run_id, sid, step.kind, attempt))
            caller = ModelCaller(self.hub, self.run_id, self.values,
                                 on_text=self._text_sink(sid), attempt=tries + 1,
                                 on_note=self._note_sink(sid))
            ctx = StepContext(self.run_id, sid, self.values, caller, feedback or [],
                              self.access)
            if kind.items is not None and runner is None and key is not None:
                ctx.items = StoredItems(self.store, self.run_id, sid, attempt,
                                        items_key(key, feedback or []))
            started = time.perf_counter()
            try:
                coro = run(step, ctx)
                result = await (asyncio.wait_for(coro, step.timeout) if step.timeout
                                else coro)
            except TimeoutError:
                error: PodiumError = StepTimeout(f"timed out after {step.timeout:g} s",
                                                 "raise the step's timeout")
            except PodiumError as e:
                error = e
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a bug, not an expected failure: keep the run going
                error = StepError(f"internal error: {type(e).__name__}: {e}",
                                  "this is a bug in Podium; please report it")
            else:
                done = finished(sid, attempt, caller, result, started, key)
                done.input_tokens += spent_usage.input_tokens
                done.output_tokens += spent_usage.output_tokens
                done.cost += spent_cost
                return done
            spent_usage, spent_cost = spent_usage + caller.usage, spent_cost + caller.cost
            latency = (time.perf_counter() - started) * 1000
            delay = policy.delay(tries, error)
            if delay is None:
                return Finished(sid, attempt, Status.FAILED,
                                model=caller.decisions[-1].model if caller.decisions else None,
                                error=error.message, hint=error.hint,
                                input_tokens=spent_usage.input_tokens,
                                output_tokens=spent_usage.output_tokens, cost=spent_cost,
                                latency_ms=latency)
            self.store.end_attempt(self.run_id, sid, attempt, Status.FAILED, error=error.message,
                                   input_tokens=caller.usage.input_tokens,
                                   output_tokens=caller.usage.output_tokens,
                                   latency_ms=latency)
            self.emit(StepRetrying(self.run_id, sid, attempt, error.message, delay))
            await asyncio.sleep(delay)
            tries += 1
            attempt += 1
            if redo:
                self.store.add_attempt(self.run_id, sid, attempt)
            else:
                self.store.start_step(self.run_id, sid, attempt)

    def _note_sink(self, sid: str) -> Callable[[str], None]:
        def sink(text: str) -> None:
            self.emit(StepNote(self.run_id, sid, text))

        return sink

    def _text_sink(self, sid: str) -> Callable[[str], None]:
        parts: list[str] = []
        saved = [time.monotonic()]

        def sink(text: str) -> None:
            parts.append(text)
            self.emit(StepText(self.run_id, sid, text))
            now = time.monotonic()
            if now - saved[0] >= PARTIAL_EVERY_S:  # keep what streamed, in case we die
                saved[0] = now
                self.store.save_partial(self.run_id, sid, "".join(parts))

        return sink


def finished(sid: str, attempt: int, caller: ModelCaller, result: StepResult,
             started: float, key: str | None) -> Finished:
    """The `Finished` of an attempt that returned (succeeded, or waits for a person)."""
    decision = caller.decisions[-1] if caller.decisions else None
    models = sorted(set(caller.answered))
    ok = result.status == Status.SUCCEEDED
    return Finished(
        sid, attempt, result.status, output=result.output if ok else None, has_output=ok,
        model=",".join(models) if models else None,
        tier=decision.tier if decision else None,
        route=decision.to_dict() if decision else None,
        input_tokens=caller.usage.input_tokens, output_tokens=caller.usage.output_tokens,
        cost=caller.cost, latency_ms=(time.perf_counter() - started) * 1000,
        cache_key=key if ok else None, reason=result.reason)
