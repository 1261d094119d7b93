"""Budget reviews: where a capped run waits for a person once it has spent its cap.
A person adds budget, keeps the rest of the run local, or stops it; the answers are
taken into the hub's `Budget` once each."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podium.core.events import Event, ReviewWaiting
from podium.core.models.hub import ModelHub
from podium.core.recipe.schema import Recipe
from podium.core.store import Finished, Status, Store


class Held(Exception):
    """The gate must wait for a person before it can go on (a budget review)."""


def start_budget(store: Store, hub: ModelHub, run_id: str, recipe: Recipe) -> None:
    """Track a capped run's spending from what the store says it spent, with every
    answer people gave to its budget reviews so far."""
    budget = hub.budget
    if recipe.budget.usd is None and recipe.budget.tokens is None and \
            not budget.capped(run_id):
        return
    run = store.get_run(run_id)  # what a resumed run spent before
    budget.start(run_id, usd=recipe.budget.usd, tokens=recipe.budget.tokens,
                 spent=run.cost, used=run.input_tokens + run.output_tokens)
    _take_answers(store, hub, run_id)


def _take_answers(store: Store, hub: ModelHub, run_id: str) -> list[Any]:
    asked = [r for r in store.reviews(status=None, run_id=run_id) if r.kind == "budget"]
    for r in asked:
        if r.status in ("approved", "rejected"):
            hub.budget.take(r.id, run_id, r.action, (r.original or {}).get("what"), r.amount)
    return asked


def budget_hold(store: Store, hub: ModelHub, emit: Callable[[Event], None], run_id: str,
                sid: str, attempt: int) -> Finished | None:
    """Before a model step of a capped run: wait at a budget review once the cap is
    reached, go on once a person raised it or chose local, fail if they stopped it.
    (Steps already running when the cap is reached finish, so a run can overshoot
    its cap by what they spend; routing keeps their further calls local.)"""
    budget = hub.budget
    asked = _take_answers(store, hub, run_id)
    if run_id in budget.stopped_runs:
        return Finished(sid, attempt, Status.FAILED, error="stopped: the run reached its "
                        "budget and a person chose to stop it",
                        hint="raise the budget in the recipe or config.toml, then "
                        "`podium rerun`")
    if any(r.status == Status.PENDING and r.step_id == sid for r in asked):
        return Finished(sid, attempt, Status.WAITING)
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
    store.add_review(run_id, sid, sid, kind="budget", original=over,
                     instructions=f"The run has used {spent} of its {cap} budget "
                     f"before step '{sid}'. {options}")
    emit(ReviewWaiting(run_id, sid, sid, "budget"))
    return Finished(sid, attempt, Status.WAITING, reason=f"budget: {spent} of {cap} used")
