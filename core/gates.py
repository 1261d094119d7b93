"""The engine's side of the places where a run waits for a person: review steps (with
the reviewed step made again when a person asks) and budget reviews. What a gate
decides from the queue is in `core.review`; this module runs it inside a run."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from core.errors import PodiumError, StepError
from core.events import ReviewWaiting, StepStarted
from core.provider import Usage
from core.recipe import Recipe, ReviewStep
from core.reruns import KeyMaker
from core.steps import StepContext, StepResult
from core.store import Finished

if TYPE_CHECKING:
    from core.engine import Engine


class Held(Exception):
    """The gate must wait for a person before it can go on (a budget review)."""


# --- budget reviews ------------------------------------------------------------------------


def start_budget(engine: Engine, run_id: str, recipe: Recipe) -> None:
    """Track a capped run's spending from what the store says it spent, with every
    answer people gave to its budget reviews so far."""
    budget = engine.hub.budget
    if recipe.budget.usd is None and recipe.budget.tokens is None and \
            not budget.capped(run_id):
        return
    run = engine.store.get_run(run_id)  # what a resumed run spent before
    budget.start(run_id, usd=recipe.budget.usd, tokens=recipe.budget.tokens,
                 spent=run.cost, used=run.input_tokens + run.output_tokens)
    _take_answers(engine, run_id)


def _take_answers(engine: Engine, run_id: str) -> list[Any]:
    asked = [r for r in engine.store.reviews(status=None, run_id=run_id)
             if r.kind == "budget"]
    for r in asked:
        if r.status in ("approved", "rejected"):
            engine.hub.budget.take(r.id, run_id, r.action, (r.original or {}).get("what"),
                                   r.amount)
    return asked


def budget_hold(engine: Engine, run_id: str, sid: str, attempt: int) -> Finished | None:
    """Before a model step of a capped run: wait at a budget review once the cap is
    reached, go on once a person raised it or chose local, fail if they stopped it.
    (Steps already running when the cap is reached finish, so a run can overshoot
    its cap by what they spend; routing keeps their further calls local.)"""
    budget = engine.hub.budget
    asked = _take_answers(engine, run_id)
    if run_id in budget.stopped_runs:
        return Finished(sid, attempt, "failed", error="stopped: the run reached its "
                        "budget and a person chose to stop it",
                        hint="raise the budget in the recipe or config.toml, then "
                        "`podium rerun`")
    if any(r.status == "pending" and r.step_id == sid for r in asked):
        return Finished(sid, attempt, "waiting")
    over = budget.over(run_id)
    if over is None:
        return None
    if over["what"] == "cost":
        cap, spent = f"${over['cap']:.4f}", f"${over['spent']:.4f}"
        options = ("Approve with more budget (--budget USD), keep the rest on this machine "
                   "(--local), or reject to stop.")
    else:
        cap, spent = f"{over['cap']} tokens", f"{over['spent']} tokens"
        options = "Approve with more tokens (--budget N), or reject to stop."
    engine.store.add_review(run_id, sid, sid, kind="budget", original=over,
                            instructions=f"The run has used {spent} of its {cap} budget "
                            f"before step '{sid}'. {options}")
    engine.on_event(ReviewWaiting(run_id, sid, sid, "budget"))
    return Finished(sid, attempt, "waiting", reason=f"budget: {spent} of {cap} used")


# --- review steps --------------------------------------------------------------------------


async def review_step(engine: Engine, run_id: str, recipe: Recipe, sid: str, attempt: int,
                      values: dict[str, Any], keys: KeyMaker) -> Finished:
    """Run a review gate: pass, wait for a person, or fail (`core.review.run_gate`)."""
    from core.review import run_gate

    step = recipe.steps[sid]
    assert isinstance(step, ReviewStep)
    engine.on_event(StepStarted(run_id, sid, step.kind, attempt))
    started = time.perf_counter()
    reviewed = Reviewed(engine, run_id, recipe, sid, values, keys)
    try:
        gate = await run_gate(engine.store, run_id, sid, step, values, reviewed)
    except Held:
        return Finished(sid, attempt, "waiting", reason="waiting for a budget review")
    except PodiumError as e:
        return Finished(sid, attempt, "failed", error=e.message, hint=e.hint,
                        latency_ms=(time.perf_counter() - started) * 1000)
    if gate.status == "waiting":
        engine.on_event(ReviewWaiting(run_id, sid, step.of))
        gate.reason = "waiting for a person: podium review"
    return Finished(sid, attempt, gate.status, output=gate.output,
                    has_output=gate.status == "succeeded", error=gate.error,
                    hint=gate.hint, reason=gate.reason,
                    input_tokens=reviewed.usage.input_tokens,
                    output_tokens=reviewed.usage.output_tokens, cost=reviewed.cost,
                    latency_ms=(time.perf_counter() - started) * 1000)


class Reviewed:
    """What a review gate may ask of the engine: make the reviewed step's output (or
    one of its items) again with the reviewers' feedback, and recompute the output
    from decided items. A remake is an attempt of the reviewed step; its stored
    output is replaced only when the new one succeeds. Steps that used the old
    output (other than through the gate) become stale."""

    def __init__(self, engine: Engine, run_id: str, recipe: Recipe, gate: str,
                 values: dict[str, Any], keys: KeyMaker) -> None:
        step = recipe.steps[gate]
        assert isinstance(step, ReviewStep)
        self.engine = engine
        self.run_id = run_id
        self.recipe = recipe
        self.gate = gate
        self.of = step.of
        self.values = values
        self.keys = keys
        self.usage = Usage()
        self.cost = 0.0

    async def redo(self, feedback: list[tuple[Any, str]], item: int | None) -> Any:
        """The reviewed step's output (or item `item` of it) made again."""
        from core.steps.items import redo_item

        engine, store, of = self.engine, self.engine.store, self.of
        if engine.hub.budget.capped(self.run_id):
            held = budget_hold(engine, self.run_id, self.gate, 0)
            if held is not None and held.status == "waiting":
                raise Held()
            if held is not None:
                raise StepError(held.error or "stopped at the budget", held.hint)
        attempt = store.attempt_count(self.run_id, of) + 1
        store.add_attempt(self.run_id, of, attempt)
        runner = None
        if item is not None:
            async def runner(step: Any, ctx: StepContext) -> StepResult:
                return await redo_item(step, ctx, item, self.values["steps"].get(of))
        result = await engine._run_step(self.run_id, self.recipe, of, attempt, self.values,
                                        self.keys, feedback=feedback, runner=runner,
                                        redo=True)
        if result.status != "succeeded":
            store.end_attempt(self.run_id, of, result.attempt, "failed", error=result.error,
                              input_tokens=result.input_tokens,
                              output_tokens=result.output_tokens,
                              latency_ms=result.latency_ms)
            raise StepError(f"'{of}' could not be made again: {result.error}",
                            (result.hint or "") + f" (its last output is kept; `podium "
                            f"resume {self.run_id}` tries again)")
        store.commit(self.run_id, finished=[result])
        engine._announce(self.run_id, [result], {})
        self.values["steps"][of] = result.output
        plan = self.recipe.plan
        behind = plan.descendants(of) - {self.gate} - plan.descendants(self.gate)
        if behind:
            why = f"'{of}' was made again after a review"
            store.mark_stale(self.run_id, dict.fromkeys(behind, why))  # those finished
            self.keys.remade = why  # and those running now, when they finish
        if item is None:
            return result.output
        from core.review import items_of

        return items_of(result.output)[item]

    async def combine(self, items: list[Any]) -> Any:
        """The reviewed step's output recomputed from the items people kept."""
        from core.steps.items import combine

        ctx = StepContext(self.run_id, self.of, self.values, self.engine.hub)
        output = await combine(self.recipe.steps[self.of], ctx, items)
        self.usage, self.cost = self.usage + ctx.usage, self.cost + ctx.cost
        return output
