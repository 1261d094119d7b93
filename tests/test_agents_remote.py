"""Agents on remote models, over real HTTP on 127.0.0.1: native tool calls in the
OpenAI and Anthropic formats go out with the tools and come back with their results;
a wrong tool name or argument type is told to the agent, which tries again."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest

from podium.core.config import ModelSpec, Settings
from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.core.tools import catalog
from podium.core.tools.base import ToolDef
from podium.providers.registry import build_hub
from tests.agent_wire import TurnServer

CITY = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
ASKED: list[str] = []


@pytest.fixture(autouse=True)
def weather(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("PODIUM_TEST_KEY", "sk-test")
    ASKED.clear()

    def look(args: dict[str, Any]) -> str:
        ASKED.append(args["city"])
        return "4 C, snow"

    catalog.register("weather", lambda ctx: ToolDef("weather", "The weather in a city.",
                                                    CITY, look))
    yield
    catalog.unregister("weather")


def remote(url: str, wire: str) -> Settings:
    return Settings(models={"remote": ModelSpec(
        provider=wire, base_url=url + ("/v1" if wire == "openai" else ""), model="m",
        key_env="PODIUM_TEST_KEY", price_in=1.0, price_out=2.0)})


AGENT = """
[steps.ask]
kind = "agent"
model = "remote"
role = "You answer weather questions."
instructions = "Weather in Oslo?"
tools = ["weather"]
max_turns = 5
"""


def run(settings: Settings, source: str) -> tuple[Store, Any]:
    store = Store.open()
    return store, asyncio.run(Engine(store, build_hub(settings)).run(loads(source), {}))


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_native_tool_calls_round_trip(wire: str) -> None:
    script = [[("weather", {"city": "Oslo"})], [("final_answer", {"answer": "4 C, snow"})]]
    with TurnServer(script, wire) as server:
        store, result = run(remote(server.url, wire), AGENT)
    assert result.status == "succeeded" and result.outputs == {"ask": "4 C, snow"}
    assert ASKED == ["Oslo"]
    first, second = server.bodies
    offered = [t["function"]["name"] if wire == "openai" else t["name"]
               for t in first["tools"]]
    assert offered == ["weather", "final_answer"]
    if wire == "openai":
        call, answer = second["messages"][-2:]
        assert call["tool_calls"][0]["function"] == {"name": "weather",
                                                     "arguments": '{"city": "Oslo"}'}
        assert answer == {"role": "tool", "tool_call_id": "call_1_0", "content": "4 C, snow"}
    else:
        call, answer = second["messages"][-2:]
        assert call["content"][0]["input"] == {"city": "Oslo"}
        assert answer["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1_0",
                                      "content": "4 C, snow"}]
    step = store.get_steps(result.run_id)[0]
    assert step.cost > 0 and step.input_tokens > 0 and step.reason == "final_answer after 2 turns"
    entries = store.messages(result.run_id, "ask")
    assert [e.role for e in entries] == ["system", "user", "assistant", "tool", "assistant",
                                         "tool", "stop"]


def test_unknown_tool_and_wrong_types_are_told_to_the_agent() -> None:
    script: list[Any] = [[("wether", {"city": "Oslo"})], [("weather", {"city": 5})],
                         "I think it is cold.", [("weather", {"city": "Oslo"})],
                         [("final_answer", {"answer": 3})],
                         [("final_answer", {"answer": "cold"})]]
    with TurnServer(script) as server:
        store, result = run(remote(server.url, "openai"), AGENT.replace("5", "8"))
    assert result.outputs == {"ask": "cold"} and ASKED == ["Oslo"]
    said = [m["content"] for b in server.bodies[1:] for m in b["messages"][-1:]]
    assert "unknown tool 'wether'; tools: weather, final_answer" in said[0]
    assert "$.city: expected string, got number" in said[1]
    assert "Call one of the tools" in said[2]
    assert "final_answer: the arguments do not fit" in said[4]


def test_tools_from_the_front_ends_source_are_offered(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tools core cannot build (HTTP, MCP) come from the engine's `tool_sources`; an MCP
    server stands for all its tools, and an approval given to it holds for each."""
    from contextlib import asynccontextmanager

    opened: list[list[str]] = []

    @asynccontextmanager
    async def source(config: Any, base: Any, names: list[str]) -> Any:
        opened.append(names)
        assert config.mcp["clock"].command == ["clock-server"]
        yield {"mcp.clock": [ToolDef("clock_now", "The time.", {"type": "object"},
                                     lambda a: "12:00"),
                             ToolDef("clock_zone", "The zone.", {"type": "object"},
                                     lambda a: "UTC")]}

    source_toml = AGENT.replace('tools = ["weather"]', 'tools = ["weather", "mcp.clock"]\n'
                                'approval = { "mcp.clock" = "deny" }')
    source_toml = '[tools.mcp.clock]\ncommand = ["clock-server"]\n' + source_toml
    script = [[("clock_now", {})], [("final_answer", {"answer": "noon"})]]
    with TurnServer(script) as server:
        store = Store.open()
        engine = Engine(store, build_hub(remote(server.url, "openai")), tool_sources=source)
        result = asyncio.run(engine.run(loads(source_toml), {}))
    assert opened == [["mcp.clock"]] and result.outputs == {"ask": "noon"}
    offered = [t["function"]["name"] for t in server.bodies[0]["tools"]]
    assert offered == ["weather", "clock_now", "clock_zone", "final_answer"]
    refused = [e for e in store.messages(result.run_id, "ask") if e.role == "tool"][0]
    assert refused.error == "denied by the recipe"


def test_a_rejected_answer_sends_the_agent_back_to_work() -> None:
    """A review gate on an agent: the reviewer's feedback joins the same transcript and
    the agent goes on from there (its earlier calls are not made again)."""
    from podium.core.review.decisions import decide

    gated = AGENT + '\n[steps.check]\nkind = "review"\nof = "ask"\n'
    script: list[Any] = [[("weather", {"city": "Oslo"})], [("final_answer", {"answer": "cold"})],
                         [("final_answer", {"answer": "4 C and snowing"})]]
    with TurnServer(script) as server:
        store = Store.open()
        engine = Engine(store, build_hub(remote(server.url, "openai")))
        first = asyncio.run(engine.run(loads(gated), {}))
        [asked] = store.reviews(run_id=first.run_id)
        assert asked.original == "cold"
        decide(store, asked.id, "reject", feedback="give the temperature")
        asyncio.run(engine.resume(first.run_id))
        [again] = store.reviews(run_id=first.run_id)
        decide(store, again.id, "approve")
        done = asyncio.run(engine.resume(first.run_id))
    assert done.outputs == {"check": "4 C and snowing"} and ASKED == ["Oslo"]
    said = server.bodies[-1]["messages"][-1]["content"]
    assert said.startswith("A reviewer rejected your final answer: give the temperature")
