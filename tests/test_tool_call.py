"""The one guarded way a tool is called: arguments checked, failures readable, results capped."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from podium.core.errors import ToolError
from podium.core.tools.base import ToolDef, call_tool

ADD = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
       "required": ["a", "b"]}


def _add(args: dict[str, Any]) -> str:
    return str(args["a"] + args["b"])


def test_a_call_that_fits_its_schema_runs() -> None:
    out = asyncio.run(call_tool(ToolDef("add", "Add.", ADD, _add), {"a": 2, "b": 3}))
    assert out.ok and out.result == "5" and out.duration_s >= 0


def test_wrong_arguments_are_reported_not_run() -> None:
    ran = []
    tool = ToolDef("add", "Add.", ADD, lambda a: ran.append(a) or "x")
    out = asyncio.run(call_tool(tool, {"a": "two"}))
    assert not out.ok and not ran
    assert out.result.startswith("error: add: the arguments do not fit its schema")


def test_a_tool_error_and_a_crash_reach_the_agent_as_text() -> None:
    def refuse(_: dict[str, Any]) -> str:
        raise ToolError("outside the allowed folders", "use a path under docs/")

    def crash(_: dict[str, Any]) -> str:
        raise ZeroDivisionError("division by zero")

    out = asyncio.run(call_tool(ToolDef("r", "", {"type": "object"}, refuse), {}))
    assert out.error == "outside the allowed folders (use a path under docs/)"
    out = asyncio.run(call_tool(ToolDef("c", "", {"type": "object"}, crash), {}))
    assert out.error == "c failed: ZeroDivisionError: division by zero"


def test_a_slow_tool_times_out_and_a_long_result_is_marked() -> None:
    slow = ToolDef("slow", "", {"type": "object"}, lambda _: time.sleep(1) or "late",
                   timeout_s=0.05)
    out = asyncio.run(call_tool(slow, {}))
    assert out.error == "slow: no result within 0.05 s"
    big = ToolDef("big", "", {"type": "object"}, lambda _: "x" * 20_000)
    out = asyncio.run(call_tool(big, {}, limit=100))
    assert out.truncated and out.result.endswith("[… truncated: 19,900 more characters not shown]")


def test_async_tools_are_awaited() -> None:
    async def echo(args: dict[str, Any]) -> str:
        await asyncio.sleep(0)
        return str(args)

    out = asyncio.run(call_tool(ToolDef("echo", "", {"type": "object"}, echo), {"k": 1}))
    assert out.result == "{'k': 1}"
