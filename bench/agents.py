"""The agent loop's own overhead per tool turn, beside LangGraph's prebuilt ReAct agent
in the same process.

Both agents get a scripted model that answers at once with a tool call (turn k calls
`tick(i=k)`), an instant tool, and a last turn that finishes (Podium: `final_answer`;
LangGraph: a plain answer). Podium runs an `agent` step through the engine on a real
SQLite store, every message and tool result committed as it happens (each turn
durable); LangGraph's `create_react_agent` runs with a fake chat model, with
`SqliteSaver` (a checkpoint per super-step: durable too) and without a checkpointer.
Per turn = wall / turns. Aim: Podium at most half of LangGraph (durable) per turn.

Run: `.venv/bin/python bench/agents.py [--turns N] [--repeats N] [--json]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sqlite3
import tempfile
import uuid
import warnings
from collections.abc import AsyncIterator, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from common import Sample, ameasure, load_note, mark, measure, table
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage
from langchain_core.tools import tool
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.prebuilt import create_react_agent

from podium.core.config import ModelSpec
from podium.core.models.hub import ModelHub
from podium.core.models.provider import Chunk, ModelRequest, ToolCall, Usage
from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.core.tools import catalog
from podium.core.tools.base import ToolDef

TICK = {"type": "object", "properties": {"i": {"type": "integer"}}, "required": ["i"]}


class ToolCallingProvider:
    """A model that calls `tick` once per turn, then `final_answer` after `turns` calls;
    it answers at once (what is timed is everything around the model)."""

    tier: Literal["local", "remote"] = "remote"
    supports_schema = True
    supports_tools = True
    needs_key = False
    key_env_var: str | None = None

    def __init__(self, turns: int) -> None:
        self.name = "scripted"
        self.turns = turns

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        done = sum(1 for m in request.messages if m.role == "tool")
        if done < self.turns:
            call = ToolCall(f"c{done}", "tick", {"i": done})
        else:
            call = ToolCall(f"c{done}", "final_answer", {"answer": "done"})
        yield Chunk(tool_calls=(call,), usage=Usage(10, 5), finish_reason="tool_calls")


async def _tick(args: dict[str, Any]) -> str:
    return f"tick {args['i']}"


def podium_agent(turns: int, db: Path) -> tuple[Engine, Any]:
    catalog.register("tick", lambda ctx: ToolDef("tick", "Count one.", TICK, _tick))
    provider = ToolCallingProvider(turns)
    hub = ModelHub({provider.name: provider},
                   {provider.name: ModelSpec(provider="openai", base_url="http://x",
                                             model="m")}, provider.name)
    recipe = loads(f"""
[steps.count]
kind = "agent"
model = "scripted"
instructions = "Count."
tools = ["tick"]
max_turns = {turns + 2}
""")
    return Engine(Store.open(db), hub), recipe


class FakeToolModel(GenericFakeChatModel):
    """langchain-core's fake chat model, with tools bound (it ignores them)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        return self


def script(turns: int) -> Iterator[AIMessage]:
    for i in range(turns):
        yield AIMessage(content="", tool_calls=[{"id": f"c{i}", "name": "tick",
                                                 "args": {"i": i}}])
    yield AIMessage(content="done")


@tool
def tick(i: int) -> str:
    """Count one."""
    return f"tick {i}"


def langgraph_run(turns: int, saver: Any) -> None:
    with warnings.catch_warnings():  # moved to langchain.agents in LangGraph 1.0; still there
        warnings.simplefilter("ignore")
        agent = create_react_agent(FakeToolModel(messages=script(turns)), [tick],
                                   checkpointer=saver)
    config = {"configurable": {"thread_id": uuid.uuid4().hex}, "recursion_limit": 4 * turns + 10}
    out = agent.invoke({"messages": [("user", "Count.")]}, config)
    assert len(out["messages"]) == 2 * turns + 2, len(out["messages"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--turns", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    turns = args.turns
    tmp = Path(tempfile.mkdtemp(prefix="podium-bench-agents-"))
    os.environ["PODIUM_HOME"] = str(tmp / "home")
    engine, recipe = podium_agent(turns, tmp / "podium.db")

    async def podium_once() -> None:
        result = await engine.run(recipe, {})
        assert result.status == "succeeded", result.error

    async def podium_all() -> Sample:
        return await ameasure(podium_once, args.repeats)

    podium = asyncio.run(podium_all())
    last = engine.store.list_runs(limit=1)[0]
    stored = engine.store.messages(last.id, "count")
    assert sum(1 for e in stored if e.role == "tool") == turns + 1

    conn = sqlite3.connect(tmp / "lg.db", check_same_thread=False)
    saver = SqliteSaver(conn)
    lg_durable = measure(lambda: langgraph_run(turns, saver), args.repeats)
    normal = sqlite3.connect(tmp / "lg-normal.db", check_same_thread=False)
    normal.execute("PRAGMA journal_mode=WAL")
    normal.execute("PRAGMA synchronous=NORMAL")  # Podium's default, for a like-for-like row
    lg_normal = measure(lambda: langgraph_run(turns, SqliteSaver(normal)), args.repeats)
    lg_memory = measure(lambda: langgraph_run(turns, None), args.repeats)

    def per_turn(s: Sample) -> tuple[float, float]:
        return s.best / turns * 1e6, s.median / turns * 1e6

    rows = []
    figures: dict[str, Any] = {}
    for name, sample in (("podium agent (SQLite, each turn durable)", podium),
                         ("langgraph create_react_agent + SqliteSaver", lg_durable),
                         ("  the same, SqliteSaver on WAL + synchronous=NORMAL", lg_normal),
                         ("langgraph create_react_agent, no checkpointer", lg_memory)):
        best, median = per_turn(sample)
        figures[name] = {"best_us_per_turn": round(best, 1), "median_us_per_turn":
                         round(median, 1)}
        rows.append([name, f"{best:,.0f} µs", f"{median:,.0f} µs"])
    ratio = podium.best / lg_durable.best
    if args.json:
        print(json.dumps({"turns": turns, "figures": figures, "ratio_vs_durable": ratio}))
        return
    print(f"agent loop, {turns} tool turns per run, best of {args.repeats}")
    print(table(["agent", "per turn (best)", "per turn (median)"], rows))
    print(f"\npodium / langgraph (durable): {ratio:.2f}  aim <= 0.50: {mark(ratio <= 0.5)}")
    print(f"podium / langgraph (durable, NORMAL like Podium): {podium.best / lg_normal.best:.2f}"
          f"  aim <= 0.50: {mark(podium.best / lg_normal.best <= 0.5)}")
    print(f"podium / langgraph (no checkpointer): {podium.best / lg_memory.best:.2f}")
    print(load_note())


if __name__ == "__main__":
    main()
