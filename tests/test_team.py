"""The `team` kind: members on one shared transcript in turn, picked by a selector, or
by handoff; the team's stop reason and the settlement of different final answers are
stored (and shown). Remote members speak the real OpenAI wire on 127.0.0.1; the
embedded model runs a team end to end."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from click.testing import CliRunner

from podium.core.config import ModelSpec, Settings
from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.providers.registry import build_hub
from podium.tui.cli import cli
from tests.agent_wire import TurnServer


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_KEY", "sk-test")


def remote(url: str) -> Settings:
    return Settings(models={"remote": ModelSpec(
        provider="openai", base_url=url + "/v1", model="m", key_env="PODIUM_TEST_KEY")})


def team(mode: str = "round_robin", extra: str = "") -> str:
    members = "".join(f"""
[steps.crew.agents.{n}]
description = "{d}"
role = "You are {n}."
""" for n, d in (("alice", "plans"), ("bob", "checks"), ("carol", "writes")))
    return f"""
[steps.crew]
kind = "team"
model = "remote"
instructions = "Which city is the capital of Norway?"
mode = "{mode}"
max_rounds = 3
{extra}
{members}"""


def run(settings: Settings, source: str) -> tuple[Store, Any]:
    store = Store.open()
    return store, asyncio.run(Engine(store, build_hub(settings)).run(loads(source), {}))


def final(answer: str) -> list[tuple[str, dict[str, Any]]]:
    return [("final_answer", {"answer": answer})]


def test_round_robin_conflict_is_settled_by_vote() -> None:
    script: list[Any] = [[("say", {"message": "Let us check: Oslo or Bergen?"})],
                         final("Bergen"), final("Oslo"), final("oslo.")]
    with TurnServer(script[:1] + [script[0]] * 0 + script[1:]) as server:
        store, result = run(remote(server.url), team())
    out = result.outputs["crew"]
    # alice spoke in round 1 (say); bob and carol answered: round 1 ends, the team stops.
    assert out["stop_reason"] == "final_answer by bob, carol in round 1"
    assert out["answers"] == {"bob": "Bergen", "carol": "Oslo"}
    assert out["settlement"]["method"] == "vote" and out["settlement"]["chosen"] == "bob"
    assert "tie goes to the first given" in out["settlement"]["reasoning"]
    # What alice said reached bob as part of the shared transcript.
    assert "[alice] Let us check: Oslo or Bergen?" in json.dumps(server.bodies[1]["messages"])
    entries = store.messages(result.run_id, "crew")
    assert [e.speaker for e in entries if e.role == "turn"] == ["alice", "bob", "carol"]
    assert entries[-1].role == "note" and entries[-1].content.startswith("settled by vote")
    shown = CliRunner().invoke(cli, ["show", result.run_id])
    assert "■ final_answer by bob, carol in round 1" in shown.output
    assert "settled by vote: bob's answer" in shown.output
    as_json = json.loads(CliRunner().invoke(cli, ["show", result.run_id, "--json"]).output)
    roles = [m["role"] for m in as_json["steps"][0]["transcript"]]
    assert roles.count("turn") == 3 and "stop" in roles


def test_judge_settles_with_its_reasoning() -> None:
    script: list[Any] = [final("Oslo"), final("Bergen"), final("Trondheim"),
                         '{"best": "alice", "reason": "Oslo is the capital"}']
    with TurnServer(script) as server:
        store, result = run(remote(server.url), team(extra='settle = "judge"'))
    out = result.outputs["crew"]
    assert out["settlement"] == {"method": "judge", "answer": "Oslo", "chosen": "alice",
                                 "reasoning": "Oslo is the capital"}
    assert server.bodies[-1]["response_format"]["json_schema"]["schema"]["properties"][
        "best"]["enum"] == ["alice", "bob", "carol"]


def test_handoff_passes_control_with_a_reason_and_max_rounds_stops() -> None:
    script: list[Any] = [[("handoff", {"to": "carol", "reason": "she writes"})],
                         [("say", {"message": "Draft: Oslo"})],
                         [("say", {"message": "Still drafting"})]]
    with TurnServer(script) as server:
        store, result = run(remote(server.url), team("handoff"))
    out = result.outputs["crew"]
    assert out["stop_reason"] == "reached max_rounds = 3" and out["answer"] == "Still drafting"
    turns = [(e.speaker, e.content) for e in store.messages(result.run_id, "crew")
             if e.role == "turn"]
    assert turns == [("alice", "opens the task"), ("carol", "handed off by alice: she writes"),
                     ("carol", "keeps control (no handoff)")]
    offered = [t["function"] for t in server.bodies[0]["tools"]]
    handoff = next(f for f in offered if f["name"] == "handoff")
    assert handoff["parameters"]["properties"]["to"]["enum"] == ["bob", "carol"]


def test_a_team_on_the_embedded_model(recipe_file: Any) -> None:
    source = team("selector", "judge = true\nmax_tokens = 64\ntemperature = 0").replace(
        'model = "remote"\n', "")
    store, result = run(Settings(), source)
    step = store.get_steps(result.run_id)[0]
    assert step.status == "succeeded" and step.reason
    entries = store.messages(result.run_id, "crew")
    assert entries[-1].role in ("stop", "note")
    turns = [e for e in entries if e.role == "turn"]
    assert turns and all(t.content.startswith(("opens", "selected")) for t in turns)
    assert result.outputs["crew"]["stop_reason"] == step.reason


def test_member_roles_are_checked_and_make_dependencies() -> None:
    from podium.core.errors import RecipeErrors

    source = '[steps.brief]\nkind = "template"\ntemplate = "be brief"\n' + team().replace(
        'role = "You are alice."', 'role = "{{ steps.brief }}"')
    assert loads(source).plan.order.index("brief") < loads(source).plan.order.index("crew")
    with pytest.raises(RecipeErrors) as caught:
        loads(source.replace("{{ steps.brief }}", "{{ steps.breif }}"), "t.toml")
    assert "unknown step 'steps.breif'" in str(caught.value)
    assert caught.value.errors[0].hint == "did you mean 'steps.brief'?"
    with pytest.raises(RecipeErrors) as caught:
        loads(team("selector", 'start = "dave"'), "t.toml")
    assert "no member 'dave'" in str(caught.value)
