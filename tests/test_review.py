"""People in the loop, at the engine: review gates, decisions, item reviews, budget
reviews, hand edits and linked reruns. A scripted provider plays the model, so each
test can count exactly which steps ran (the real model: test_review_cli.py)."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from podium.core.errors import PodiumError, RecipeErrors, ReviewError
from podium.core.models.hub import Budget
from podium.core.models.provider import ModelRequest
from podium.core.recipe.load import loads
from podium.core.review.decisions import decide
from podium.core.review.edits import edit_output
from podium.core.run.engine import Engine
from podium.core.store import Store
from tests.conftest import ScriptedProvider
from tests.test_engine import make_engine, run, statuses

DRAFT = """
[steps.facts]
kind = "template"
template = "order 1182"
[steps.draft]
kind = "llm"
prompt = "Reply about {{ steps.facts }}"
[steps.check]
kind = "review"
of = "draft"
instructions = "Is the reply about {{ steps.facts }}?"
[steps.send]
kind = "template"
template = "sent: {{ steps.check }}"
[steps.other]
kind = "template"
template = "independent"
"""


def numbered(request: ModelRequest, n: int) -> str:
    return f"draft {n}"


def attempts(engine: Engine, run_id: str) -> dict[str, int]:
    rows = engine.store.conn.execute("SELECT step_id, COUNT(*) FROM attempts WHERE run_id = ? "
                                     "GROUP BY step_id", (run_id,)).fetchall()
    return dict(rows)


def snapshot(store: Store) -> list[Any]:
    """Every row of the tables a decision or an edit may touch."""
    out = []
    for table in ("runs", "steps", "attempts", "reviews", "step_versions", "artifacts"):
        out.append(store.conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall())
    return out


def test_gate_pauses_its_branch_only_and_approve_passes_the_output_on() -> None:
    model = ScriptedProvider(answer=numbered)
    engine = make_engine(model)
    result = run(engine, DRAFT)
    assert result.status == "waiting" and result.outputs == {"other": "independent"}
    assert statuses(engine, result.run_id) == {"facts": "succeeded", "draft": "succeeded",
                                               "check": "waiting", "send": "pending",
                                               "other": "succeeded"}
    [item] = engine.store.reviews()
    assert (item.step_id, item.of_step, item.original, item.round) == ("check", "draft",
                                                                      "draft 1", 1)
    assert item.instructions == "Is the reply about order 1182?"
    assert engine.store.get_run(result.run_id).status == "waiting"

    done = asyncio.run(engine.decide(item.id, "approve"))
    assert done is not None and done.status == "succeeded"
    assert done.outputs == {"send": "sent: draft 1", "other": "independent"}
    # The reviewed step, and everything before the gate, ran exactly once.
    assert len(model.calls) == 1
    assert attempts(engine, result.run_id)["draft"] == 1
    decided = engine.store.review(item.id)
    assert decided.status == "approved" and decided.decided_by and decided.decided_at


def test_resume_of_a_waiting_run_repeats_nothing_and_asks_nothing_new() -> None:
    model = ScriptedProvider(answer=numbered)
    engine = make_engine(model)
    result = run(engine, DRAFT)
    before = attempts(engine, result.run_id)
    again = asyncio.run(engine.resume(result.run_id))
    assert again.status == "waiting"
    assert attempts(engine, result.run_id) == before
    assert len(engine.store.reviews()) == 1 and len(model.calls) == 1


def test_when_false_passes_without_asking_and_says_why() -> None:
    model = ScriptedProvider(answer="calm words")
    engine = make_engine(model)
    recipe = DRAFT.replace('of = "draft"', 'of = "draft"\nwhen = "\'angry\' in steps.draft"')
    result = run(engine, recipe)
    assert result.status == "succeeded" and result.outputs["send"] == "sent: calm words"
    assert engine.store.reviews(status=None) == []
    check = {s.step_id: s for s in engine.store.get_steps(result.run_id)}["check"]
    assert "`when`" in (check.reason or "") and "was false" in (check.reason or "")

    angry = make_engine(ScriptedProvider(answer="angry words"))
    assert run(angry, recipe).status == "waiting"


def test_reject_runs_the_reviewed_step_again_with_the_feedback() -> None:
    model = ScriptedProvider(answer=numbered)
    engine = make_engine(model)
    result = run(engine, DRAFT)
    [first] = engine.store.reviews()
    again = asyncio.run(engine.decide(first.id, "reject", feedback="mention the refund"))
    assert again is not None and again.status == "waiting"
    # The model saw its rejected answer and the reviewer's words.
    revision = [m.content for m in model.calls[-1].messages]
    assert revision[1] == "draft 1" and "mention the refund" in revision[2]
    [second] = engine.store.reviews()
    assert (second.round, second.original) == (2, "draft 2")
    done = asyncio.run(engine.decide(second.id, "approve"))
    assert done is not None and done.outputs["send"] == "sent: draft 2"
    assert attempts(engine, result.run_id)["draft"] == 2
    assert [r.status for r in engine.store.reviews(status=None)] == ["rejected", "approved"]


def test_reject_fails_the_gate_when_told_or_past_max_rounds() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    result = run(engine, DRAFT.replace('of = "draft"', 'of = "draft"\non_reject = "fail"'))
    [item] = engine.store.reviews()
    done = asyncio.run(engine.decide(item.id, "reject", feedback="wrong customer"))
    assert done is not None and done.status == "failed"
    steps = {s.step_id: s for s in engine.store.get_steps(result.run_id)}
    assert steps["check"].status == "failed" and "wrong customer" in (steps["check"].error or "")
    assert steps["send"].status == "skipped" and steps["other"].status == "succeeded"

    engine = make_engine(ScriptedProvider(answer=numbered))
    result = run(engine, DRAFT.replace('of = "draft"', 'of = "draft"\nmax_rounds = 2'))
    for _ in range(2):
        [item] = engine.store.reviews()
        done = asyncio.run(engine.decide(item.id, "reject", feedback="no"))
    assert done is not None and done.status == "failed"
    check = {s.step_id: s for s in engine.store.get_steps(result.run_id)}["check"]
    assert "rejected 2 times" in (check.error or "") and "max_rounds = 2" in check.error
    assert attempts(engine, result.run_id)["draft"] == 2


SCHEMA = """
[steps.extract]
kind = "llm"
prompt = "Extract"
[steps.extract.schema]
type = "object"
required = ["name"]
properties = { name = { type = "string" }, age = { type = "integer" } }
[steps.check]
kind = "review"
of = "extract"
[steps.use]
kind = "template"
template = "{{ steps.check.name }}"
"""


def test_edits_must_fit_the_schema_and_bad_ones_change_nothing() -> None:
    engine = make_engine(ScriptedProvider(answer='{"name": "Ada", "age": 36}'))
    run(engine, SCHEMA)
    [item] = engine.store.reviews()
    before = snapshot(engine.store)
    with pytest.raises(ReviewError, match="not valid JSON"):
        decide(engine.store, item.id, "edit", value='{"name": "Ada",')
    with pytest.raises(ReviewError, match=r"\$.age: expected integer"):
        decide(engine.store, item.id, "edit", value='{"name": "Ada", "age": "old"}')
    with pytest.raises(ReviewError, match="missing required field 'name'"):
        decide(engine.store, item.id, "edit", value='{"age": 3}')
    with pytest.raises(ReviewError, match="unknown action"):
        decide(engine.store, item.id, "maybe")
    assert snapshot(engine.store) == before

    done = asyncio.run(engine.decide(item.id, "edit", value='{"name": "Grace", "age": 85}'))
    assert done is not None and done.outputs == {"use": "Grace"}
    decided = engine.store.review(item.id)
    assert decided.original == {"name": "Ada", "age": 36}
    assert decided.decided == {"name": "Grace", "age": 85}


def test_deciding_twice_is_refused_and_changes_nothing() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    run(engine, DRAFT)
    [item] = engine.store.reviews()
    asyncio.run(engine.decide(item.id, "approve"))
    before = snapshot(engine.store)
    for action in ("approve", "reject", "edit"):
        with pytest.raises(ReviewError, match="already decided: approved"):
            decide(engine.store, item.id, action, value="x")
    with pytest.raises(PodiumError, match="no review 99"):
        decide(engine.store, 99, "approve")
    assert snapshot(engine.store) == before


def test_two_gates_each_branch_continues_when_its_review_is_decided() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    result = run(engine, """
[steps.a]
kind = "llm"
prompt = "a"
[steps.b]
kind = "llm"
prompt = "b"
[steps.ra]
kind = "review"
of = "a"
[steps.rb]
kind = "review"
of = "b"
[steps.after_a]
kind = "template"
template = "A={{ steps.ra }}"
[steps.after_b]
kind = "template"
template = "B={{ steps.rb }}"
""")
    assert result.status == "waiting"
    first, second = engine.store.reviews()
    partly = asyncio.run(engine.decide(first.id, "approve"))
    assert partly is not None and partly.status == "waiting"
    assert statuses(engine, result.run_id)["after_a"] == "succeeded"
    assert statuses(engine, result.run_id)["after_b"] == "pending"
    done = asyncio.run(engine.decide(second.id, "edit", value="mine"))
    assert done is not None and done.status == "succeeded"
    assert done.outputs == {"after_a": f"A={first.original}", "after_b": "B=mine"}


SLOW_OTHER = DRAFT.replace('[steps.other]\nkind = "template"\ntemplate = "independent"',
                           '[steps.other]\nkind = "llm"\nprompt = "slow"\nmodel = "slow"')


def slow_engine() -> tuple[Engine, ScriptedProvider]:
    from podium.core.config import ModelSpec
    from podium.core.models.hub import ModelHub

    fast = ScriptedProvider("scripted", answer=numbered)
    slow = ScriptedProvider("slow", answer="slow answer", delay=1.0)
    spec = ModelSpec(provider="llamacpp", path="x")
    hub = ModelHub({"scripted": fast, "slow": slow}, {"scripted": spec, "slow": spec},
                   "scripted")
    return Engine(Store.open(), hub), fast


def test_a_decision_in_the_running_process_is_taken_without_stopping() -> None:
    engine, _ = slow_engine()

    async def scenario() -> Any:
        running = asyncio.create_task(engine.run(loads(SLOW_OTHER), {}))
        while not engine.store.reviews():
            await asyncio.sleep(0.01)
        [item] = engine.store.reviews()
        assert await engine.decide(item.id, "approve") is None  # the running loop takes it
        return await running

    result = asyncio.run(scenario())
    assert result.status == "succeeded"
    assert result.outputs == {"send": "sent: draft 1", "other": "slow answer"}


def test_a_decision_from_another_process_reaches_the_running_loop() -> None:
    engine, _ = slow_engine()

    async def scenario() -> Any:
        running = asyncio.create_task(engine.run(loads(SLOW_OTHER), {}))
        while not engine.store.reviews():
            await asyncio.sleep(0.01)
        elsewhere = Store.open()  # another connection, as another process would have
        [item] = elsewhere.reviews()
        decide(elsewhere, item.id, "edit", value="by another process")
        elsewhere.close()
        return await running

    result = asyncio.run(scenario())
    assert result.status == "succeeded"
    assert result.outputs["send"] == "sent: by another process"


def test_items_of_a_map_are_reviewed_one_by_one() -> None:
    model = ScriptedProvider(answer=lambda req, n: req.messages[-1].content.upper())
    engine = make_engine(model)
    result = run(engine, """
[steps.each]
kind = "map"
over = "['ada', 'bob', 'cy', 'dee']"
step = { kind = "llm", prompt = "{{ item }}" }
[steps.check]
kind = "review"
of = "each"
items = true
on_reject = "fail"
[steps.joined]
kind = "template"
template = "{{ steps.check | join(',') }}"
""")
    items = engine.store.reviews()
    assert [(r.item, r.original) for r in items] == [(0, "ADA"), (1, "BOB"), (2, "CY"),
                                                     (3, "DEE")]
    asyncio.run(engine.decide(items[0].id, "approve"))
    asyncio.run(engine.decide(items[1].id, "edit", value="Robert"))
    asyncio.run(engine.decide(items[2].id, "reject"))
    calls = len(model.calls)
    waiting = asyncio.run(engine.decide(items[3].id, "regenerate", feedback="lower case"))
    assert waiting is not None and waiting.status == "waiting"
    assert len(model.calls) == calls + 1  # only item 3 was made again
    assert "lower case" in model.calls[-1].messages[-1].content
    [again] = engine.store.reviews()
    assert (again.item, again.round) == (3, 2)
    done = asyncio.run(engine.decide(again.id, "edit", value="dee"))
    assert done is not None and done.outputs == {"joined": "ADA,Robert,dee"}
    assert result.run_id == done.run_id


def test_ensemble_vote_is_recomputed_from_the_decided_answers() -> None:
    answers = iter(["red", "blue", "blue"])
    engine = make_engine(ScriptedProvider(answer=lambda req, n: next(answers)))
    run(engine, """
[steps.pick]
kind = "ensemble"
prompt = "colour?"
n = 3
[steps.check]
kind = "review"
of = "pick"
items = true
on_reject = "fail"
""")
    first, second, third = engine.store.reviews()
    assert [first.original, second.original, third.original] == ["red", "blue", "blue"]
    asyncio.run(engine.decide(first.id, "approve"))
    asyncio.run(engine.decide(second.id, "reject"))
    done = asyncio.run(engine.decide(third.id, "edit", value="red"))
    assert done is not None and done.status == "succeeded"
    vote = done.outputs["check"]
    assert vote["answer"] == "red" and vote["votes"] == {"red": 2}


BUDGETED = """
max_parallel = 1
[budget]
tokens = 10
[steps.a]
kind = "llm"
prompt = "one two three four five six seven eight"
[steps.b]
kind = "llm"
prompt = "{{ steps.a }}"
[steps.c]
kind = "template"
template = "done"
"""


def test_a_run_past_its_budget_pauses_at_a_budget_review() -> None:
    engine = make_engine(ScriptedProvider(answer="ok"))
    result = run(engine, BUDGETED)
    assert result.status == "waiting"
    assert statuses(engine, result.run_id) == {"a": "succeeded", "b": "waiting",
                                               "c": "succeeded"}
    [item] = engine.store.reviews()
    assert item.kind == "budget" and item.step_id == "b"
    assert item.original == {"what": "tokens", "spent": 11, "cap": 10}
    with pytest.raises(ReviewError, match="approve or reject"):
        decide(engine.store, item.id, "edit", value="x")
    done = asyncio.run(engine.decide(item.id, "approve", amount=100))
    assert done is not None and done.status == "succeeded"
    assert engine.store.review(item.id).action == "continue"


def test_stopping_at_the_budget_fails_the_model_steps_left() -> None:
    engine = make_engine(ScriptedProvider(answer="ok"))
    result = run(engine, BUDGETED)
    [item] = engine.store.reviews()
    done = asyncio.run(engine.decide(item.id, "reject"))
    assert done is not None and done.status == "failed"
    b = {s.step_id: s for s in engine.store.get_steps(result.run_id)}["b"]
    assert b.status == "failed" and "chose to stop" in (b.error or "")


def test_keeping_the_rest_local_at_the_budget_review() -> None:
    from tests.test_engine import RemoteScripted, two_tier_engine

    local = ScriptedProvider("small", answer="local")
    remote = RemoteScripted("big", answer="remote")
    engine = two_tier_engine(local, remote, price_in=1e6, price_out=1e6)
    engine.hub.budget = Budget(per_run=2.0)
    result = run(engine, """
max_parallel = 1
[steps.a]
kind = "llm"
route = "remote"
prompt = "x"
[steps.b]
kind = "llm"
route = "remote"
prompt = "{{ steps.a }}"
""")
    assert result.status == "waiting"
    [item] = engine.store.reviews()
    assert item.original["what"] == "cost" and item.original["cap"] == 2.0
    done = asyncio.run(engine.decide(item.id, "approve", local=True))
    assert done is not None and done.status == "succeeded"
    b = {s.step_id: s for s in engine.store.get_steps(result.run_id)}["b"]
    assert b.tier == "local" and any("keep the rest of this run local" in r
                                     for r in b.route["reasons"])


CHAIN = "\n".join(
    f'[steps.s{i}]\nkind = "llm"\nprompt = "step {i}: {{{{ steps.s{i - 1} }}}}"' if i > 1
    else '[steps.s1]\nkind = "llm"\nprompt = "step 1"'
    for i in range(1, 7))


def executed(engine: Engine, run_id: str) -> list[str]:
    rows = engine.store.conn.execute("SELECT DISTINCT step_id FROM attempts WHERE run_id = ? "
                                     "ORDER BY step_id", (run_id,)).fetchall()
    return [r[0] for r in rows]


def test_edit_step_2_of_6_then_rerun_executes_exactly_the_4_downstream() -> None:
    model = ScriptedProvider(answer=lambda req, n: f"out{n}")
    engine = make_engine(model)
    first = run(engine, CHAIN)
    assert first.status == "succeeded" and len(model.calls) == 6

    edited = edit_output(engine.store, first.run_id, "s2", "hand-made")
    assert edited.version == 2 and edited.stale == ["s3", "s4", "s5", "s6"]
    steps = {s.step_id: s for s in engine.store.get_steps(first.run_id)}
    assert steps["s2"].output == "hand-made" and steps["s1"].stale is None
    assert all(steps[s].stale for s in ("s3", "s4", "s5", "s6"))
    versions = engine.store.step_versions(first.run_id, "s2")
    assert [(v["version"], v["source"], v["output"]) for v in versions] == [
        (1, "run", "out2"), (2, "edit", "hand-made")]

    second = asyncio.run(engine.rerun(first.run_id))
    assert second is not None and second.status == "succeeded"
    assert executed(engine, second.run_id) == ["s3", "s4", "s5", "s6"]
    assert "step 3: hand-made" in model.calls[6].messages[-1].content
    rerun = engine.store.get_run(second.run_id)
    assert rerun.parent_run_id == first.run_id
    kept = {s.step_id: s for s in engine.store.get_steps(second.run_id)}
    assert kept["s1"].reason == f"kept from run {first.run_id}"
    assert kept["s2"].output == "hand-made"
    # The old run is never overwritten.
    assert engine.store.get_run(first.run_id).outputs == first.outputs

    # Nothing edited since: re-running again executes none of the steps.
    calls = len(model.calls)
    assert asyncio.run(engine.rerun(second.run_id)) is None
    third = asyncio.run(engine.rerun(first.run_id))  # s3..s6 still stale there: cache
    assert third is not None and third.status == "succeeded"
    assert executed(engine, third.run_id) == [] and len(model.calls) == calls
    cached = {s.step_id: s for s in engine.store.get_steps(third.run_id)}
    assert all((cached[s].reason or "").startswith("from the cache")
               for s in ("s3", "s4", "s5", "s6"))
    assert third.outputs == second.outputs


def test_rerun_from_a_step_recomputes_it_and_after_from_the_cache() -> None:
    model = ScriptedProvider(answer=lambda req, n: f"out{n}")
    engine = make_engine(model)
    first = run(engine, CHAIN)
    again = asyncio.run(engine.rerun(first.run_id, from_step="s4"))
    assert again is not None and executed(engine, again.run_id) == []
    assert len(model.calls) == 6
    with pytest.raises(PodiumError, match="no step 's9'"):
        asyncio.run(engine.rerun(first.run_id, from_step="s9"))


def test_bad_edits_say_what_is_wrong_and_change_nothing() -> None:
    engine = make_engine(ScriptedProvider(answer='{"name": "Ada"}'))
    waiting = run(engine, SCHEMA)
    before = snapshot(engine.store)
    with pytest.raises(ReviewError, match="waits for review 1") as e:
        edit_output(engine.store, waiting.run_id, "extract", '{"name": "Bo"}')
    assert "podium review edit 1" in (e.value.hint or "")
    assert snapshot(engine.store) == before
    result = run(engine, SCHEMA.replace('[steps.check]\nkind = "review"\nof = "extract"\n',
                                        "").replace("steps.check.name", "steps.extract.name.nope"))
    assert statuses(engine, result.run_id) == {"extract": "succeeded", "use": "failed"}
    before = snapshot(engine.store)
    with pytest.raises(PodiumError, match="no run 'nope'"):
        edit_output(engine.store, "nope", "extract", "x")
    with pytest.raises(ReviewError, match="has no step 'extrac'") as e:
        edit_output(engine.store, result.run_id, "extrac", "x")
    assert e.value.hint == "did you mean 'extract'?"
    with pytest.raises(ReviewError, match="not valid JSON"):
        edit_output(engine.store, result.run_id, "extract", "{name: Ada}")
    with pytest.raises(ReviewError, match="no output to edit"):
        edit_output(engine.store, result.run_id, "use", "x")
    assert snapshot(engine.store) == before


@pytest.mark.parametrize("gate, message", [
    ('of = "draftt"', "unknown step 'draftt'"),
    ('of = "draft"\nwhen = "steps.moood.label == \'angry\'"', "unknown step 'steps.moood'"),
    ('of = "facts"', "'facts' is a template step"),
    ('of = "draft"\nitems = true', "which has no items"),
])
def test_bad_gates_are_caught_before_running(gate: str, message: str) -> None:
    with pytest.raises(RecipeErrors) as e:
        loads(DRAFT.replace('of = "draft"', gate), "gate.toml")
    assert any(message in str(err) and err.line for err in e.value.errors), str(e.value)


def test_a_waiting_run_is_in_the_database_as_waiting() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    result = run(engine, DRAFT)
    conn = sqlite3.connect(engine.store.path)
    status = conn.execute("SELECT status, error, hint FROM runs WHERE id = ?",
                          (result.run_id,)).fetchone()
    conn.close()
    assert status[:2] == ("waiting", None) and status[2].startswith("waiting for review")


# --- regressions from a review of the first version ------------------------------------------


REDO_WHILE_RUNNING = """
[steps.draft]
kind = "llm"
prompt = "write"
[steps.check]
kind = "review"
of = "draft"
[steps.send]
kind = "template"
template = "sent: {{ steps.check }}"
[steps.log]
kind = "llm"
model = "slow"
prompt = "{{ steps.draft }}"
"""


def test_a_step_running_on_a_draft_that_is_remade_ends_stale_and_uncached() -> None:
    from podium.core.run.reruns import KeyMaker

    engine, _ = slow_engine()
    engine.hub.providers["slow"].answer = lambda r, n: f"log of [{r.messages[-1].content}]"

    async def scenario() -> Any:
        task = asyncio.create_task(engine.run(loads(REDO_WHILE_RUNNING), {}))
        while not engine.store.reviews():
            await asyncio.sleep(0.01)
        [item] = engine.store.reviews()
        await engine.decide(item.id, "reject", feedback="again")
        while not engine.store.reviews() or engine.store.reviews()[0].round < 2:
            await asyncio.sleep(0.01)
        [again] = engine.store.reviews()
        await engine.decide(again.id, "approve")
        return await task

    result = asyncio.run(scenario())
    steps = {s.step_id: s for s in engine.store.get_steps(result.run_id)}
    assert steps["draft"].output == "draft 2" and steps["log"].output == "log of [draft 1]"
    assert steps["log"].stale == "'draft' was made again after a review"
    recipe = loads(REDO_WHILE_RUNNING)
    now = KeyMaker(recipe, {"inputs": {}, "steps": {"draft": "draft 2"}}, engine.hub)
    with pytest.raises(KeyError):  # never cached under the new draft's key
        engine.store.cached(now.key("log"))
    fresh = asyncio.run(engine.rerun(result.run_id))
    assert fresh is not None and fresh.outputs["log"] == "log of [draft 2]"


def test_a_failed_remake_keeps_the_reviewed_output_and_resume_tries_again() -> None:
    calls = {"n": 0}

    def flaky(request: ModelRequest, n: int) -> Any:
        calls["n"] += 1
        return "draft 1" if calls["n"] == 1 else PodiumError("the model is down")

    model = ScriptedProvider(answer=flaky)
    engine = make_engine(model)
    result = run(engine, DRAFT.replace('prompt = "Reply about {{ steps.facts }}"',
                                       'prompt = "Reply about {{ steps.facts }}"\nretries = 0'))
    [item] = engine.store.reviews()
    failed = asyncio.run(engine.decide(item.id, "reject", feedback="again"))
    assert failed is not None and failed.status == "failed"
    steps = {s.step_id: s for s in engine.store.get_steps(result.run_id)}
    assert (steps["draft"].status, steps["draft"].output) == ("succeeded", "draft 1")
    assert "could not be made again" in (steps["check"].error or "")
    model.answer = lambda r, n: "draft 3"
    done = asyncio.run(engine.resume(result.run_id))
    assert done.status == "waiting" and engine.store.reviews()[0].original == "draft 3"


def test_a_remake_past_the_budget_waits_for_a_budget_review() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    result = run(engine, "[budget]\ntokens = 4\n" + DRAFT)
    [item] = engine.store.reviews()
    waiting = asyncio.run(engine.decide(item.id, "reject", feedback="again"))
    assert waiting is not None and waiting.status == "waiting"
    [budget] = engine.store.reviews()
    assert budget.kind == "budget" and budget.step_id == "check"
    assert statuses(engine, result.run_id)["draft"] == "succeeded"
    again = asyncio.run(engine.decide(budget.id, "approve", amount=1000))
    assert again is not None and again.status == "waiting"
    assert engine.store.reviews()[0].original == "draft 2"


def test_each_budget_approval_counts_in_a_long_lived_engine() -> None:
    engine = make_engine(ScriptedProvider(answer="ok"))
    recipe = "max_parallel = 1\n[budget]\ntokens = 5\n" + "\n".join(
        f'[steps.s{i}]\nkind = "llm"\nprompt = "one two three four five six"' +
        (f'\nneeds = ["s{i - 1}"]' if i else "") for i in range(4))
    result = run(engine, recipe)
    for _ in range(3):
        if result.status != "waiting":
            break
        [item] = engine.store.reviews()
        result = asyncio.run(engine.decide(item.id, "approve", amount=10))
    assert result.status == "succeeded"
    assert len(engine.store.reviews(status=None)) == 3


def test_local_is_no_answer_to_a_token_budget() -> None:
    engine = make_engine(ScriptedProvider(answer="ok"))
    run(engine, BUDGETED)
    [item] = engine.store.reviews()
    assert "--local" not in (item.instructions or "")
    with pytest.raises(ReviewError, match="token"):
        decide(engine.store, item.id, "approve", local=True)
    assert engine.store.review(item.id).status == "pending"


def test_label_edits_are_checked_and_carry_full_confidence() -> None:
    engine = make_engine(ScriptedProvider(answer='"calm"'))
    result = run(engine, """
[steps.mood]
kind = "classify"
input = "hi"
labels = ["angry", "calm"]
[steps.each]
kind = "map"
over = "['a', 'b']"
step = { kind = "classify", input = "{{ item }}", labels = ["angry", "calm"] }
[steps.check]
kind = "review"
of = "each"
items = true
on_reject = "fail"
""")
    first, _ = engine.store.reviews()
    with pytest.raises(ReviewError, match="'furious' is not one of the labels"):
        decide(engine.store, first.id, "edit", value="furious")
    with pytest.raises(ReviewError, match=r"\$.label: must be one of"):
        decide(engine.store, first.id, "edit", value='{"label": "furious"}')
    decided = decide(engine.store, first.id, "edit", value="calm")
    assert decided.decided == {"label": "calm", "confidence": 1.0,
                               "scores": {"angry": 0.0, "calm": 1.0}}
    assert statuses(engine, result.run_id)["mood"] == "succeeded"


def test_a_waiting_run_is_not_rerun() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    result = run(engine, DRAFT)
    with pytest.raises(PodiumError, match="waiting for review"):
        asyncio.run(engine.rerun(result.run_id))
    assert len(engine.store.reviews()) == 1


def test_rerun_without_the_cache_runs_the_steps_again() -> None:
    model = ScriptedProvider(answer=lambda req, n: f"out{n}")
    engine = make_engine(model)
    first = run(engine, CHAIN)
    again = asyncio.run(engine.rerun(first.run_id, from_step="s5", use_cache=False))
    assert again is not None and executed(engine, again.run_id) == ["s5", "s6"]


def test_validation_covers_the_usual_schema_keywords() -> None:
    from podium.core.recipe.validate import problems

    schema = {"type": "object", "additionalProperties": False, "properties": {
        "n": {"type": "integer", "minimum": 1, "maximum": 10},
        "tag": {"type": "string", "maxLength": 3, "pattern": "^[a-z]+$"},
        "level": {"enum": [1, 2]}, "tags": {"type": "array", "minItems": 1}}}
    assert problems({"n": 99, "tag": "TOO LONG", "level": True, "tags": [], "x": 7},
                    schema) == ["$.n: must be <= 10", "$.tag: at most 3 characters",
                                "$.tag: does not match the pattern '^[a-z]+$'",
                                "$.level: True is not one of [1, 2]",
                                "$.tags: at least 1 items", "$: unexpected field 'x'"]
    assert problems({"n": 3, "tag": "ab", "level": 2, "tags": ["a"]}, schema) == []


# --- regressions from a new-user walkthrough ---------------------------------------------


def test_settling_a_step_by_hand_checks_its_schema() -> None:
    engine = make_engine(ScriptedProvider(answer='{"name": "Ada"}'))
    recipe = SCHEMA.replace('[steps.check]\nkind = "review"\nof = "extract"\n', "") \
        .replace("steps.check.name", "steps.extract.name")
    loaded = loads(recipe)
    run_id = engine.create(loaded, {})
    with pytest.raises(ReviewError, match="not valid JSON"):
        asyncio.run(engine.resume(run_id, settle={"extract": '{"name": '}))
    done = asyncio.run(engine.resume(run_id, settle={"extract": '{"name": "Bo"}'}))
    assert done.outputs == {"use": "Bo"}


def test_a_rejection_that_sends_the_draft_back_needs_feedback() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    run(engine, DRAFT)
    [item] = engine.store.reviews()
    with pytest.raises(ReviewError, match="say what is wrong"):
        decide(engine.store, item.id, "reject")
    with pytest.raises(ReviewError, match="empty"):
        decide(engine.store, item.id, "edit", value="  ")
    assert engine.store.review(item.id).status == "pending"


def test_budget_answers_are_checked_against_what_was_spent() -> None:
    engine = make_engine(ScriptedProvider(answer="ok"))
    run(engine, BUDGETED)
    [item] = engine.store.reviews()  # 11 of 10 tokens used
    with pytest.raises(ReviewError, match="whole number of tokens"):
        decide(engine.store, item.id, "approve", amount=0.5)
    with pytest.raises(ReviewError, match="under what the run has used") as e:
        decide(engine.store, item.id, "approve", amount=1)
    assert "--budget 2" in (e.value.hint or "")
    assert engine.store.review(item.id).status == "pending"
    assert decide(engine.store, item.id, "reject").action == "stop"  # no feedback needed


def test_a_waiting_run_is_not_an_error() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    result = run(engine, DRAFT)
    stored = engine.store.get_run(result.run_id)
    assert stored.error is None and "waiting for review: check" in (stored.hint or "")
