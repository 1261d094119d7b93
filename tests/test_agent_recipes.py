"""The shipped agent recipes run offline, end to end, on the embedded model: answers
may be weak, the mechanics must hold (lookup with sources, escalation to a person,
a team's turns, stop reason and settlement)."""

from __future__ import annotations

import asyncio

from podium.core import paths
from podium.core.config import Settings
from podium.core.recipe.load import load
from podium.core.review.decisions import decide
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.providers.registry import build_hub


def test_customer_service_cites_sources_and_escalates() -> None:
    recipe = load(paths.shipped_recipes_dir() / "customer-service.toml")
    store = Store.open()
    engine = Engine(store, build_hub(Settings()))
    result = asyncio.run(engine.run(recipe, {}))
    steps = {s.step_id: s for s in store.get_steps(result.run_id)}
    assert steps["intent"].output["label"] in ("refund", "shipping", "account", "billing",
                                               "other")
    hits = steps["lookup"].output
    assert len(hits) == 3 and all(h["source"].endswith(".md") for h in hits)
    if steps["mood"].output["label"] == "upset":  # the person sees the draft first
        assert result.status == "waiting"
        [asked] = store.reviews(run_id=result.run_id)
        assert asked.of_step == "draft"
        decide(store, asked.id, "edit", value="We refund double charges within 5 days [1].")
        result = asyncio.run(engine.resume(result.run_id))
    assert result.status == "succeeded"
    reply = result.outputs["reply"]
    assert "Sources:\n[1] " in reply and hits[0]["source"] in reply


def test_research_team_takes_turns_and_settles() -> None:
    recipe = load(paths.shipped_recipes_dir() / "research-team.toml")
    store = Store.open()
    result = asyncio.run(Engine(store, build_hub(Settings())).run(recipe, {}))
    assert result.status == "succeeded", result.error
    out = store.get_steps(result.run_id)[1].output
    assert result.outputs["stopped"] == out["stop_reason"] and out["answer"]
    entries = store.messages(result.run_id, "team")
    speakers = [e.speaker for e in entries if e.role == "turn"]
    assert speakers[:4] == ["planner", "researcher", "writer", "critic"]
    assert any(e.role == "stop" for e in entries)
    if len({str(a) for a in out["answers"].values()}) > 1:
        assert out["settlement"]["method"] == "vote" and out["settlement"]["reasoning"]
    searched = [e for e in entries if e.role == "tool" and e.tool_name == "search_docs"]
    assert all(e.error is None or "nothing in" in e.content for e in searched)
