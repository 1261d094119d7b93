"""Human review: the gate a `review` step puts in a run, and the decisions people make.

Decisions are validated before anything is written (an edit of a step with a schema
must fit it) and recorded once, atomically: deciding an item twice changes nothing.
"""

from __future__ import annotations

import getpass
import math
from collections.abc import Callable
from typing import Any

from podium.core.errors import ReviewError
from podium.core.recipe.load import pinned
from podium.core.recipe.schema import Recipe
from podium.core.run.inputs import step_inputs
from podium.core.steps import registry
from podium.core.steps.review import ReviewStep
from podium.core.steps.values import parse_value
from podium.core.store import ReviewRecord, Status, Store

ACTIONS = ("approve", "edit", "reject", "regenerate")
# What the router learns from a decision on a step the local model answered alone:
# approved as it was, its answer was right; edited or rejected, it was not.
VERDICTS = {"approve": True, "edit": False, "reject": False}
# Called with the model that answered, its ask, whether it was right, and the run.
Learn = Callable[[str, str, bool, str], None]


def who() -> str:
    """The person deciding, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def reviewed_step(store: Store, record: ReviewRecord) -> tuple[Recipe, Any, ReviewStep | None]:
    """(recipe, the step under review, the gate) of a review item, from the pinned
    recipe of its run."""
    recipe = pinned(store, store.get_run(record.run_id))
    gate = recipe.steps.get(record.step_id)
    return recipe, recipe.steps.get(record.of_step), gate if isinstance(gate, ReviewStep) \
        else None


def decide(store: Store, review_id: int | str, action: str, *, value: str | None = None,
           feedback: str | None = None, amount: float | None = None,
           local: bool = False, by: str | None = None,
           learn: Learn | None = None) -> ReviewRecord:
    """Record a person's decision on a review item, after checking it fully; `learn`
    hears what the decision says of a local model's answer (`local_verdict`)."""
    record = store.review(review_id)
    if record.status != Status.PENDING:
        when = f" by {record.decided_by}" if record.decided_by else ""
        pending = store.reviews(run_id=record.run_id, step_id=record.step_id)
        hint = (f"a decision is final; the gate now asks in review {pending[0].id}"
                if pending else "a decision is final" if record.kind == "budget" else
                f"a decision is final; to change the output now, use `podium edit "
                f"{record.run_id} {record.step_id}` and `podium rerun`")
        raise ReviewError(f"review {record.id} was already decided: {record.status}{when}",
                          hint)
    if action not in ACTIONS:
        raise ReviewError(f"unknown action '{action}'", "actions: " + ", ".join(ACTIONS))
    by = by or who()
    if record.kind == "budget":
        return _decide_budget(store, record, action, amount, local, by)
    if amount is not None or local:
        raise ReviewError(f"review {record.id} is not a budget review",
                          "--budget and --local answer budget reviews only")
    _, of_step, gate = reviewed_step(store, record)
    if action == "approve":  # the decided output is the original, stored as such
        store.decide_review(record.id, "approved", by=by, decided=record.original,
                            has_decided=True, feedback=feedback)
    elif action == "edit":
        if value is None or not value.strip():
            raise ReviewError("an edit needs the new value (it was empty)",
                              "give --value TEXT or --file F; to drop an output, reject it")
        item_of = of_step if record.item is None else item_call(of_step)
        decided = parse_value(item_of, value, record.original,
                              where=f"review {record.id}")
        store.decide_review(record.id, "edited", by=by, decided=decided, has_decided=True,
                            feedback=feedback)
    elif action == "reject":
        if gate is not None and gate.on_reject == "retry" and record.item is None and \
                not (feedback or "").strip():
            raise ReviewError("say what is wrong: the step runs again with your feedback",
                              f"podium review reject {record.id} --feedback TEXT")
        store.decide_review(record.id, "rejected", by=by, feedback=feedback)
    else:
        if record.item is None:
            raise ReviewError("regenerate is for single items of a map or ensemble",
                              f"reject review {record.id} with --feedback to have the "
                              "step run again")
        if gate is not None and record.round >= gate.max_rounds:
            raise ReviewError(f"item {record.item} was made {record.round} times, the most "
                              f"this gate allows (max_rounds = {gate.max_rounds})",
                              "approve, edit or reject it")
        store.decide_review(record.id, "regenerate", by=by, feedback=feedback)
    verdict = local_verdict(store, record, action) if learn is not None else None
    if learn is not None and verdict is not None:
        learn(*verdict, record.run_id)
    return store.review(record.id)


def local_verdict(store: Store, record: ReviewRecord,
                  action: str) -> tuple[str, str, bool] | None:
    """(model, ask, right) a decision says of the step under review, when one local
    model answered it alone in one `llm` call whose ask can be rendered again; None
    for anything else (an item of a map, a remote or mixed answer, a regenerate)."""
    if action not in VERDICTS or record.item is not None or record.of_step is None:
        return None
    step = next((s for s in store.get_steps(record.run_id) if s.step_id == record.of_step),
                None)
    if step is None or step.kind != "llm" or step.tier != "local" or not step.model or \
            "," in step.model:
        return None
    run = store.get_run(record.run_id)
    ask = dict(step_inputs(store, run, step.step_id)).get("prompt", "")
    if not ask.strip() or ask.startswith("(cannot be shown"):
        return None
    return step.model, ask, VERDICTS[action]


def _decide_budget(store: Store, record: ReviewRecord, action: str, amount: float | None,
                   local: bool, by: str) -> ReviewRecord:
    spent = record.original or {}
    tokens = spent.get("what") == "tokens"
    unit = "TOKENS" if tokens else "USD"
    options = (f"approve {record.id} --budget {unit} (more budget)"
               + ("" if tokens else f", approve {record.id} --local (the rest on this "
                  "machine)") + f", or reject {record.id} (stop the run)")
    if action == "approve":
        if local and tokens:
            raise ReviewError("local models use tokens too: keeping the rest local does "
                              "not answer a token cap", options)
        if local:
            store.decide_review(record.id, "approved", by=by, action="local")
        else:
            short = float(spent.get("spent", 0)) - float(spent.get("cap", 0))
            if amount is not None and (not math.isfinite(amount) or amount <= 0 or
                                       (tokens and amount != int(amount))):
                what = "whole number of tokens" if tokens else "amount of USD"
                raise ReviewError(f"--budget must be a positive {what}", options)
            if amount is not None and amount <= short:
                need = int(short) + 1 if tokens else round(short + 0.0001, 4)
                raise ReviewError(f"that leaves the cap under what the run has used "
                                  f"({spent.get('spent')} of {spent.get('cap')})",
                                  f"add more than {short:g}, e.g. --budget {need}")
            store.decide_review(record.id, "approved", by=by, action="continue",
                                amount=amount)
    elif action == "reject":
        store.decide_review(record.id, "rejected", by=by, action="stop")
    else:
        raise ReviewError(f"a budget review takes approve or reject, not {action}", options)
    store.supersede(record.run_id, "budget", record.id)  # one answer for the whole run
    return store.review(record.id)




def item_call(step: Any) -> Any:
    """The call that makes one item of `step` (a map's sub-step, an ensemble itself)."""
    items = registry.of(step).items
    return items.call(step) if items is not None else step
