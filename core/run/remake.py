"""What a review gate may ask of the run it is in: make the reviewed step's output (or
one of its items) again with the reviewers' feedback, and recompute the output from
decided items. A remake is an attempt of the reviewed step; its stored output is
replaced only when the new one succeeds. Steps that used the old output (other than
through the gate) become stale."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podium.core.errors import StepError
from podium.core.review.budget import Held, budget_hold
from podium.core.review.gate import items_of
from podium.core.run.attempts import StepRun
from podium.core.run.reruns import KeyMaker
from podium.core.steps import registry
from podium.core.steps.base import StepContext, StepResult
from podium.core.store import Finished, Status


class Remake:
    """The `Reviewed` of one gate, bound to the gate's attempt (`ctx`): combining calls
    count as the gate's; remakes are attempts of the reviewed step."""

    def __init__(self, steps: StepRun, keys: KeyMaker, ctx: StepContext,
                 announce: Callable[[list[Finished]], None]) -> None:
        self.steps = steps
        self.keys = keys
        self.ctx = ctx
        self.announce = announce
        self.gate = ctx.step_id
        self.of = steps.recipe.steps[self.gate].of  # type: ignore[attr-defined]

    async def redo(self, feedback: list[tuple[Any, str]], item: int | None) -> Any:
        """The reviewed step's output (or item `item` of it) made again."""
        steps, store, of, run_id = self.steps, self.steps.store, self.of, self.steps.run_id
        if steps.hub.budget.capped(run_id):
            held = budget_hold(store, steps.hub, steps.emit, run_id, self.gate, 0)
            if held is not None and held.status == Status.WAITING:
                raise Held()
            if held is not None:
                raise StepError(held.error or "stopped at the budget", held.hint)
        attempt = store.attempt_count(run_id, of) + 1
        store.add_attempt(run_id, of, attempt)
        runner = None
        step = steps.recipe.steps[of]
        if item is not None:
            items = registry.of(step).items
            assert items is not None, "checked when the recipe loaded"
            current = steps.values["steps"].get(of)

            async def runner(step: Any, ctx: StepContext) -> StepResult:
                return StepResult(await items.redo(step, ctx, item, current))
        result = await steps.attempts(of, attempt, self.keys.key(of), feedback=feedback,
                                      runner=runner, redo=True)
        if result.status != Status.SUCCEEDED:
            store.end_attempt(run_id, of, result.attempt, Status.FAILED, error=result.error,
                              input_tokens=result.input_tokens,
                              output_tokens=result.output_tokens,
                              latency_ms=result.latency_ms)
            raise StepError(f"'{of}' could not be made again: {result.error}",
                            (result.hint or "") + f" (its last output is kept; `podium "
                            f"resume {run_id}` tries again)")
        store.commit(run_id, finished=[result])
        self.announce([result])
        steps.values["steps"][of] = result.output
        self.keys.output_changed(of)
        plan = steps.recipe.plan
        behind = plan.descendants(of) - {self.gate} - plan.descendants(self.gate)
        if behind:
            why = f"'{of}' was made again after a review"
            store.mark_stale(run_id, dict.fromkeys(behind, why))  # those finished
            self.keys.remade = why  # and those running now, when they finish
        return result.output if item is None else items_of(result.output)[item]

    async def combine(self, items: list[Any]) -> Any:
        """The reviewed step's output recomputed from the items people kept."""
        step = self.steps.recipe.steps[self.of]
        kind = registry.of(step)
        assert kind.items is not None, "checked when the recipe loaded"
        ctx = StepContext(self.ctx.run_id, self.of, self.ctx.values, self.ctx.caller)
        return await kind.items.combine(step, ctx, items)
