"""Human review: the gate a `review` step puts in a run, and the decisions people make.

A gate is a step of its own. When it runs it reads the queue first: a decided item
gives the gate its output, a pending one keeps it waiting, and only when there is
none does it evaluate `when` and ask. So resuming a run never re-runs the reviewed
step or anything before the gate; the reviewed step runs again only when a person
rejects its output and the gate says `on_reject = "retry"`.

Decisions are validated before anything is written (an edit of a step with a schema
must fit it) and recorded once, atomically: deciding an item twice changes nothing.
"""

from __future__ import annotations

import getpass
import json
from dataclasses import dataclass
from typing import Any, Protocol

from core import templates, validate
from core.errors import PodiumError
from core.recipe import ClassifyCall, EnsembleStep, MapStep, Recipe, ReviewStep
from core.store import ReviewRecord, Store

ACTIONS = ("approve", "edit", "reject", "regenerate")


class ReviewError(PodiumError):
    """A decision that cannot be taken: wrong action, bad value, already decided."""

    exit_code = 2


@dataclass
class GateResult:
    """What a gate's run came to."""

    status: str  # succeeded | waiting | failed
    output: Any = None
    reason: str | None = None
    error: str | None = None
    hint: str | None = None


class Reviewed(Protocol):
    """How a gate makes the reviewed step's work again (the engine provides it)."""

    async def redo(self, feedback: list[tuple[Any, str]], item: int | None) -> Any:
        """The reviewed step's output (or one item of it) made again with `feedback`:
        (rejected output, what the reviewer said), oldest first."""

    async def combine(self, items: list[Any]) -> Any:
        """The reviewed step's output recomputed from its decided items."""


def who() -> str:
    """The person deciding, as the operating system knows them."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


# --- the gate --------------------------------------------------------------------------


async def run_gate(store: Store, run_id: str, sid: str, step: ReviewStep,
                   values: dict[str, Any], reviewed: Reviewed) -> GateResult:
    """Run one review gate against the queue: pass, wait, or fail."""
    asked = [r for r in store.reviews(status=None, run_id=run_id, step_id=sid)
             if r.kind == "review"]  # not the budget reviews a remake may wait on
    if not asked:
        if step.when is not None and not templates.evaluate(step.when, values,
                                                            what=f"{sid}.when"):
            return GateResult("succeeded", values["steps"].get(step.of),
                              reason=f"no review needed: `when` ({step.when}) was false")
        return _ask(store, run_id, sid, step, values, values["steps"].get(step.of))
    if step.items:
        return await _items(store, run_id, sid, step, values, asked, reviewed)
    latest = asked[-1]
    if latest.status == "pending":
        return GateResult("waiting")
    if latest.status in ("approved", "edited"):
        output = latest.decided if latest.status == "edited" else latest.original
        return GateResult("succeeded", output, reason=f"{latest.status} by "
                          f"{latest.decided_by} (review {latest.id})")
    said = f": {latest.feedback}" if latest.feedback else ""
    if step.on_reject == "fail":
        return GateResult("failed", error=f"rejected by {latest.decided_by} (review "
                          f"{latest.id}){said}", hint="edit the output by hand with "
                          f"`podium edit {run_id} {step.of}` and `podium rerun {run_id}`")
    if latest.round >= step.max_rounds:
        return GateResult("failed", error=f"rejected {latest.round} times, the most this "
                          f"gate allows (max_rounds = {step.max_rounds}){said}",
                          hint="raise max_rounds, or edit the output by hand with "
                          f"`podium edit {run_id} {step.of}`")
    feedback = [(r.original, r.feedback or "") for r in asked if r.status == "rejected"]
    output = await reviewed.redo(feedback, None)
    return _ask(store, run_id, sid, step, values, output, round=latest.round + 1)


def _ask(store: Store, run_id: str, sid: str, step: ReviewStep, values: dict[str, Any],
         output: Any, round: int = 1) -> GateResult:
    instructions = templates.render(step.instructions, values, what=f"{sid}.instructions") \
        if step.instructions else None
    if not step.items:
        store.add_review(run_id, sid, step.of, round=round, original=output,
                         instructions=instructions)
        return GateResult("waiting")
    items = items_of(output)
    if not items:  # nothing to look at: pass the empty result on
        return GateResult("succeeded", output, reason="no items to review")
    store.add_reviews(run_id, sid, step.of, list(enumerate(items)), round=round,
                      instructions=instructions)  # all or none, should the process die
    return GateResult("waiting")


def items_of(output: Any) -> list[Any]:
    """The items of a map's list, or the answers of an ensemble."""
    if isinstance(output, dict) and isinstance(output.get("answers"), list):
        return list(output["answers"])
    return list(output) if isinstance(output, list) else [output]


async def _items(store: Store, run_id: str, sid: str, step: ReviewStep,
                 values: dict[str, Any], asked: list[ReviewRecord],
                 reviewed: Reviewed) -> GateResult:
    latest: dict[int, ReviewRecord] = {}
    history: dict[int, list[ReviewRecord]] = {}
    for r in asked:
        index = r.item or 0
        latest[index] = r
        history.setdefault(index, []).append(r)
    if any(r.status == "pending" for r in latest.values()):
        return GateResult("waiting")
    again = [i for i, r in sorted(latest.items()) if r.status == "regenerate"]
    if again:
        made: list[tuple[int | None, Any]] = []
        for i in again:
            feedback = [(r.original, r.feedback or "") for r in history[i]
                        if r.status == "regenerate"]
            made.append((i, await reviewed.redo(feedback, i)))
        store.add_reviews(run_id, sid, step.of, made,
                          round=[latest[i].round + 1 for i in again],
                          instructions=latest[again[0]].instructions)
        return GateResult("waiting")
    kept = [r.decided if r.status == "edited" else r.original
            for _, r in sorted(latest.items()) if r.status in ("approved", "edited")]
    dropped = sum(1 for r in latest.values() if r.status == "rejected")
    if not kept:
        return GateResult("failed", error=f"every item of '{step.of}' was rejected",
                          hint="edit the output by hand with `podium edit`")
    output = await reviewed.combine(kept)
    return GateResult("succeeded", output, reason=f"{len(kept)} items kept, {dropped} "
                      "rejected by review")


# --- decisions -------------------------------------------------------------------------


def reviewed_step(store: Store, record: ReviewRecord) -> tuple[Recipe, Any, ReviewStep | None]:
    """(recipe, the step under review, the gate) of a review item, from the pinned
    recipe of its run."""
    from core.recipe import loads

    run = store.get_run(record.run_id)
    _, path, source = store.recipe_source(run.recipe_hash)
    recipe = loads(source, path, checked=True)
    gate = recipe.steps.get(record.step_id)
    return recipe, recipe.steps.get(record.of_step), gate if isinstance(gate, ReviewStep) \
        else None


def decide(store: Store, review_id: int | str, action: str, *, value: str | None = None,
           feedback: str | None = None, amount: float | None = None,
           local: bool = False, by: str | None = None) -> ReviewRecord:
    """Record a person's decision on a review item, after checking it fully."""
    record = store.review(review_id)
    if record.status != "pending":
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
        item_of = of_step if record.item is None else _item_step(of_step)
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
    return store.review(record.id)


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
            if amount is not None and (amount <= 0 or (tokens and amount != int(amount))):
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


def _item_step(step: Any) -> Any:
    """The call that makes one item: a map's sub-step, or the ensemble itself."""
    return step.step if isinstance(step, MapStep) else step


def parse_value(step: Any, text: str, original: Any = None, *, where: str) -> Any:
    """A value typed by a person, shaped like `step`'s output: JSON checked against its
    schema (a `map`'s list item by item), a label of a classify step, or text."""
    text = text.rstrip("\n")
    labels = list(getattr(step, "labels", None) or [])
    if isinstance(step, ClassifyCall | EnsembleStep) and labels \
            and not text.lstrip().startswith("{"):
        label = text.strip()
        if label not in labels:
            raise ReviewError(f"{where}: '{label}' is not one of the labels",
                              "labels: " + ", ".join(labels))
        if isinstance(step, ClassifyCall):  # a person's label: as sure as it gets
            return {"label": label, "confidence": 1.0,
                    "scores": {x: 1.0 if x == label else 0.0 for x in labels}}
        return label
    schema = getattr(step, "output_schema", None)
    structured = schema is not None or isinstance(step, ClassifyCall | MapStep) or \
        isinstance(original, dict | list)
    if not structured:
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError as e:
        if isinstance(step, EnsembleStep) and isinstance(original, dict) and schema is None:
            return {**original, "answer": text}  # a new answer for the vote's winner
        raise ReviewError(f"{where}: not valid JSON: {e.msg} (line {e.lineno}, column "
                          f"{e.colno})", "this step's output is JSON; keep its shape") from None
    problems = validate.problems(value, schema)
    if isinstance(step, ClassifyCall):
        if not isinstance(value, dict) or value.get("label") not in labels:
            problems.append("$.label: must be one of " + ", ".join(labels))
    if isinstance(step, MapStep):
        if not isinstance(value, list):
            problems.append("$: a map's output is a list")
        else:
            for i, item in enumerate(value):
                try:
                    parse_value(step.step, json.dumps(item) if not isinstance(item, str)
                                else item, item, where=f"{where}[{i}]")
                except ReviewError as e:
                    problems.append(e.message)
    if problems:
        raise ReviewError(f"{where}: the value does not fit the step's schema: "
                          + "; ".join(problems[:5]), "fix those fields and try again")
    return value


# --- hand edits of finished steps -------------------------------------------------------


@dataclass
class Edit:
    """What `edit_output` did."""

    run_id: str
    step_id: str
    version: int | None  # None: the value was the same, nothing stored
    stale: list[str]


def editable(store: Store, run_id: str, step_id: str) -> tuple[str, Any, Any, Recipe]:
    """(run id, the step's record, the step whose output shape an edit must keep, the
    run's pinned recipe) of a step a person may edit now, or a `ReviewError` saying why
    not."""
    from core.recipe import loads

    run = store.get_run(run_id)
    if run.status == "running" and not run.orphaned:
        raise ReviewError(f"run {run.id} is running (process {run.pid})",
                          "edit its steps once it has finished or paused")
    pending = store.reviews(run_id=run.id)
    if pending:  # the item under review would not see the edit
        raise ReviewError(f"run {run.id} waits for review {pending[0].id}",
                          f"decide it first; to change the output under review: podium "
                          f"review edit {pending[0].id}")
    records = {s.step_id: s for s in store.get_steps(run.id)}
    record = records.get(step_id)
    if record is None:
        import difflib

        close = difflib.get_close_matches(step_id, list(records), n=1)
        raise ReviewError(f"run {run.id} has no step '{step_id}'",
                          f"did you mean '{close[0]}'?" if close else
                          "steps: " + ", ".join(records))
    if record.status != "succeeded":
        raise ReviewError(f"step '{step_id}' has no output to edit (it {record.status})",
                          f"settle it by hand with: podium resume {run.id} --output "
                          f"{step_id}=TEXT")
    _, path, source = store.recipe_source(run.recipe_hash)
    recipe = loads(source, path, checked=True)
    step = recipe.steps[step_id]
    if isinstance(step, ReviewStep):  # a gate passes the reviewed step's output on
        step = recipe.steps[step.of]
    return run.id, record, step, recipe


def edit_output(store: Store, run_id: str, step_id: str, text: str, *,
                by: str | None = None) -> Edit:
    """Store `text` (shaped like the step's output, JSON checked against its schema) as
    a new version of a finished step's output, and mark every step downstream stale.
    The original stays stored; `podium rerun` recomputes the stale steps."""

    rid, record, step, recipe = editable(store, run_id, step_id)
    if not text.strip():
        raise ReviewError("the new output is empty", "give the text or JSON the step "
                          "should have output")
    value = parse_value(step, text, record.output, where=step_id)
    if value == record.output:
        return Edit(rid, step_id, None, [])
    plan = recipe.plan
    downstream = [s for s in plan.order if s in plan.descendants(step_id)]
    version = store.edit_step(rid, step_id, value, by=by or who(), stale={
        s: f"'{step_id}' was edited by hand" for s in downstream})
    return Edit(rid, step_id, version, downstream)
