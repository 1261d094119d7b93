"""Item-durable `map` and `ensemble`, at the engine: each finished item is kept as it
finishes, a resume makes only the others, and items made from other inputs (an edit
upstream, a rerun, a reviewer's feedback) are never taken for current ones. A scripted
provider plays the model so each test can count exactly which items were asked.
(Killed processes: test_items_kill.py.)"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

import pytest

from podium.core.errors import AuthError
from podium.core.models.provider import ModelRequest
from podium.core.recipe.load import loads
from podium.core.review.edits import edit_output
from podium.core.run.engine import Engine
from tests.conftest import ScriptedProvider
from tests.test_engine import make_engine, run, statuses

MAP = """
[inputs.words]
type = "list"
default = ["a", "b", "c", "d", "e", "f"]
[steps.each]
kind = "map"
over = "inputs.words"
concurrency = 1
step = { kind = "llm", prompt = "say {{ item }}" }
[steps.joined]
kind = "template"
template = "{{ steps.each | join(',') }}"
"""


def prompt(request: ModelRequest) -> str:
    return request.messages[-1].content


def asked(provider: ScriptedProvider) -> Counter[str]:
    return Counter(prompt(r) for r in provider.calls)


def rows(engine: Engine, run_id: str, step: str = "each") -> list[tuple[int, str, int]]:
    """(index, status, step attempt) of every item row kept, in the order kept."""
    return [(i.index, i.status, i.attempt) for i in engine.store.items(run_id, step)]


def test_a_failed_map_resumes_with_only_the_items_not_finished() -> None:
    """Items 0-2 succeed, item 3 fails the step; the resume asks for items 3-5 only,
    takes 0-2 from the store, and counts their tokens in the step's totals."""
    broken = [True]

    def answer(req: ModelRequest, n: int) -> Any:
        if prompt(req) == "say d" and broken[0]:
            return AuthError("key revoked")
        return prompt(req).upper()

    provider = ScriptedProvider(answer=answer)
    engine = make_engine(provider, price=1.0)
    first = run(engine, MAP)
    assert first.status == "failed"
    assert rows(engine, first.run_id) == [(0, "succeeded", 1), (1, "succeeded", 1),
                                          (2, "succeeded", 1), (3, "failed", 1)]
    broken[0] = False
    provider.calls.clear()
    done = asyncio.run(engine.resume(first.run_id))
    assert done.status == "succeeded"
    assert done.outputs == {"joined": "SAY A,SAY B,SAY C,SAY D,SAY E,SAY F"}
    assert asked(provider) == Counter({"say d": 1, "say e": 1, "say f": 1})
    kept = [r for r in rows(engine, first.run_id) if r[1] == "succeeded"]
    assert sorted(r[0] for r in kept) == list(range(6))  # each item once
    assert [r[2] for r in kept] == [1, 1, 1, 2, 2, 2]
    step = {s.step_id: s for s in engine.store.get_steps(first.run_id)}["each"]
    per_item = 2 + 3  # "say x" is two words in, three tokens out
    assert step.input_tokens + step.output_tokens == 6 * per_item
    assert step.model == "scripted"


def test_allow_failures_items_are_tried_again_on_resume() -> None:
    """A failed item gave null; it finished as a failure, and a resume (which tries
    failed work again) asks for it alone."""
    flaky = [True]
    provider = ScriptedProvider(answer=lambda req, n: AuthError("no") if
                                prompt(req) == "say b" and flaky[0] else "ok")
    engine = make_engine(provider)
    toml = MAP.replace("concurrency = 1", "concurrency = 1\nallow_failures = true")
    toml += '[steps.stop]\nkind = "llm"\nprompt = "{{ steps.joined }}"\n'
    first = run(engine, toml)
    assert first.status == "succeeded"
    assert engine.store.get_steps(first.run_id)[0].output == ["ok", None, "ok", "ok", "ok",
                                                              "ok"]
    # A rerun from the map makes a new run; the items of a new run are its own.
    flaky[0] = False
    provider.calls.clear()
    again = asyncio.run(engine.rerun(first.run_id, from_step="each", use_cache=False))
    assert again is not None and again.status == "succeeded"
    assert len(asked(provider)) == 7 and engine.store.items(first.run_id, "each")[1].status \
        == "failed"


def test_an_edit_upstream_makes_every_item_again() -> None:
    """The map's items were made from `split`'s output; after a person edits it, the
    resumed run makes the items from the new list: no stale item is reused, even
    those at the same index."""
    broken = [True]

    def answer(req: ModelRequest, n: int) -> Any:
        if prompt(req) == "say z" and broken[0]:
            return AuthError("no")
        return prompt(req)

    provider = ScriptedProvider(answer=answer)
    engine = make_engine(provider)
    toml = """
[steps.split]
kind = "template"
template = "x y z"
[steps.each]
kind = "map"
over = "steps.split.split(' ')"
concurrency = 1
step = { kind = "llm", prompt = "say {{ item }}" }
"""
    first = run(engine, toml)
    assert first.status == "failed" and len(rows(engine, first.run_id)) == 3
    edit_output(engine.store, first.run_id, "split", "x y w", by="ed")
    broken[0] = False
    provider.calls.clear()
    done = asyncio.run(engine.resume(first.run_id))
    assert done.status == "succeeded"
    assert done.outputs == {"each": ["say x", "say y", "say w"]}
    # All three made again: the same "x" and "y" came from another list.
    assert asked(provider) == Counter({"say x": 1, "say y": 1, "say w": 1})
    keys = {i.key for i in engine.store.items(first.run_id)}
    assert len(keys) == 2


def test_rerun_after_an_edit_makes_the_items_from_the_new_input() -> None:
    provider = ScriptedProvider(answer=lambda req, n: prompt(req))
    engine = make_engine(provider)
    toml = """
[steps.split]
kind = "template"
template = "x y"
[steps.each]
kind = "map"
over = "steps.split.split(' ')"
step = { kind = "llm", prompt = "say {{ item }}" }
"""
    first = run(engine, toml)
    edit = edit_output(engine.store, first.run_id, "split", "p q r", by="ed")
    assert edit.stale == ["each"]
    provider.calls.clear()
    second = asyncio.run(engine.rerun(first.run_id))
    assert second is not None and second.outputs == {"each": ["say p", "say q", "say r"]}
    assert asked(provider) == Counter({"say p": 1, "say q": 1, "say r": 1})
    assert [r[0] for r in rows(engine, second.run_id)] == [0, 1, 2]


def test_an_ensemble_resumes_asking_only_the_members_that_did_not_answer() -> None:
    """Two of five members answer, three fail: not a vote, the step fails. The resume
    asks the three again and votes with the two kept answers."""
    down = [True]
    provider = ScriptedProvider(answer=lambda req, n: AuthError("down") if n > 2 and
                                down[0] else ("no" if n == 7 else "yes"))
    engine = make_engine(provider)
    toml = '[steps.vote]\nkind = "ensemble"\nprompt = "?"\nn = 5\nconcurrency = 1\n'
    first = run(engine, toml)
    assert first.status == "failed"
    assert [r[:2] for r in rows(engine, first.run_id, "vote")] == [
        (0, "succeeded"), (1, "succeeded"), (2, "failed"), (3, "failed"), (4, "failed")]
    down[0] = False
    seeds_before = {c.seed for c in provider.calls[:2]}
    done = asyncio.run(engine.resume(first.run_id))
    assert done.status == "succeeded"
    assert len(provider.calls) == 5 + 3  # members 2, 3, 4 only
    assert {c.seed for c in provider.calls[5:]}.isdisjoint(seeds_before)
    vote = done.outputs["vote"]
    assert vote["answers"] == ["yes", "yes", "yes", "no", "yes"] and vote["answer"] == "yes"


def test_cancelled_map_keeps_the_items_that_finished(scripted: ScriptedProvider) -> None:
    """Ctrl-C mid-map: the items finished so far are committed as the step stops, and
    the resume makes only the rest."""
    scripted.answer = lambda req, n: prompt(req)
    scripted.delay = 0.05
    engine = make_engine(scripted)
    recipe = loads(MAP.replace("concurrency = 1", "concurrency = 2"))

    async def main() -> str:
        task = asyncio.create_task(engine.run(recipe, {}))
        while len(scripted.calls) < 4:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return engine.store.list_runs(limit=1)[0].id

    run_id = asyncio.run(main())
    before = {r[0] for r in rows(engine, run_id) if r[1] == "succeeded"}
    assert 2 <= len(before) < 6 and statuses(engine, run_id)["each"] == "cancelled"
    scripted.calls.clear()
    done = asyncio.run(engine.resume(run_id))
    assert done.status == "succeeded"
    assert set(asked(scripted)) == {f"say {w}" for i, w in enumerate("abcdef")
                                    if i not in before}
    assert sorted(r[0] for r in rows(engine, run_id) if r[1] == "succeeded") == \
        list(range(6))


def test_items_stream_through_a_window_of_concurrency() -> None:
    """A 5,000-item map runs with `concurrency` workers: never more tasks of it at once,
    whatever the length; template items commit in groups, not one each."""
    engine = make_engine(ScriptedProvider())
    recipe = loads("""
[inputs.n]
type = "integer"
default = 5000
[steps.each]
kind = "map"
over = "range(inputs.n) | list"
max_items = 10000
concurrency = 8
step = { kind = "template", template = "{{ item * 2 }}" }
""")

    async def main() -> tuple[Any, int]:
        high = 0

        async def sample() -> None:
            nonlocal high
            while True:
                high = max(high, len(asyncio.all_tasks()))
                await asyncio.sleep(0)

        sampler = asyncio.ensure_future(sample())
        try:
            return await engine.run(recipe, {}), high
        finally:
            sampler.cancel()

    result, high = asyncio.run(main())
    assert result.status == "succeeded"
    out = result.outputs["each"]
    assert len(out) == 5000 and out[4999] == "9998"
    assert 8 <= high <= 8 + 4  # the workers, the run's own tasks and the sampler
    commits = engine.store.conn.execute("SELECT COUNT(DISTINCT created_at) FROM items"
                                        ).fetchone()[0]
    assert 1 <= commits < 500


def test_reviews_of_a_kept_map_remake_with_feedback_and_items_one_by_one() -> None:
    """A rejected map is made again with the reviewer's feedback: a new set of items,
    none taken from the rejected one. Item reviews then regenerate one item alone."""
    provider = ScriptedProvider(answer=lambda req, n: f"{prompt(req)} #{n}")
    engine = make_engine(provider)
    first = run(engine, MAP.replace("[steps.joined]", """[steps.whole]
kind = "review"
of = "each"
[steps.joined]""").replace("steps.each |", "steps.whole |"))
    assert first.status == "waiting" and len(provider.calls) == 6
    [review] = engine.store.reviews()
    waiting = asyncio.run(engine.decide(review.id, "reject", feedback="shorter"))
    assert waiting is not None and waiting.status == "waiting"
    assert len(provider.calls) == 12  # every item again: the feedback is new input
    assert all("shorter" in str(c.messages) for c in provider.calls[6:])
    items = engine.store.items(first.run_id, "each")
    assert len(items) == 12 and len({i.key for i in items}) == 2
    [again] = engine.store.reviews()
    done = asyncio.run(engine.decide(again.id, "approve"))
    assert done is not None and done.status == "succeeded"
    assert re.findall(r"#(\d+)", done.outputs["joined"]) == ["7", "8", "9", "10", "11", "12"]


def test_item_reviews_and_a_hand_edit_of_a_kept_map() -> None:
    provider = ScriptedProvider(answer=lambda req, n: prompt(req))
    engine = make_engine(provider)
    first = run(engine, MAP.replace("[steps.joined]", """[steps.check]
kind = "review"
of = "each"
items = true
on_reject = "fail"
[steps.joined]""").replace("steps.each |", "steps.check |"))
    pending = engine.store.reviews()
    assert [r.original for r in pending] == [f"say {w}" for w in "abcdef"]
    for r in pending[:-1]:
        asyncio.run(engine.decide(r.id, "approve", proceed=False))
    waiting = asyncio.run(engine.decide(pending[-1].id, "regenerate", feedback="louder"))
    assert waiting is not None and waiting.status == "waiting"
    assert len(provider.calls) == 7  # item 5 alone, not the kept others
    [last] = engine.store.reviews()
    done = asyncio.run(engine.decide(last.id, "edit", value="SAY F"))
    assert done is not None and done.outputs["joined"] == "say a,say b,say c,say d,say e,SAY F"
    edit_output(engine.store, first.run_id, "each", '["x", "y"]', by="ed")
    second = asyncio.run(engine.rerun(first.run_id))
    assert second is not None and second.status == "waiting"
    # The rerun keeps the edited list (nothing made again) and asks about its items.
    assert [r.original for r in engine.store.reviews(run_id=second.run_id)] == ["x", "y"]
    assert len(provider.calls) == 7 and rows(engine, second.run_id) == []
    assert sorted(r[0] for r in rows(engine, first.run_id)) == list(range(6))
