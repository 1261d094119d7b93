"""MCP tools from a real server: one written here with the SDK's server side
(`MCPServer`), started over stdio as a subprocess. Its tools list and run; a server
that will not start, never answers, is slow, or dies mid-call is a clear error in
bounded time, never a hang."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from podium.core.errors import ConfigError
from podium.core.tools.base import call_tool

pytest.importorskip("mcp")

from podium.providers.mcp import mcp_tools  # noqa: E402

SERVER = '''
import os, sys, time
from mcp.server.mcpserver import MCPServer

app = MCPServer("test")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


@app.tool()
def env_says(name: str) -> str:
    """An environment variable of the server."""
    return os.environ.get(name, "<unset>")


@app.tool()
def fail(x: str) -> str:
    """Always raise."""
    raise ValueError("nope " + x)


@app.tool()
def slow(seconds: float) -> str:
    """Sleep a while."""
    time.sleep(seconds)
    return "done"


@app.tool()
def die() -> str:
    """Exit at once, mid-call."""
    print("dying now", file=sys.stderr, flush=True)
    os._exit(3)


if __name__ == "__main__":
    app.run()
'''


@pytest.fixture
def server(tmp_path: Path) -> list[str]:
    path = tmp_path / "server.py"
    path.write_text(SERVER)
    return [sys.executable, str(path)]


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_a_servers_tools_list_and_run(server: list[str]) -> None:
    async def go() -> tuple[Any, ...]:
        async with mcp_tools(server, server="test", env={"GREETING": "hi"}) as tools:
            by_name = {t.name: t for t in tools}
            added = await call_tool(by_name["add"], {"a": 2, "b": 40})
            env = await call_tool(by_name["env_says"], {"name": "GREETING"})
            failed = await call_tool(by_name["fail"], {"x": "y"})
            wrong = await call_tool(by_name["add"], {"a": "two", "b": 1})
            return by_name, added, env, failed, wrong

    by_name, added, env, failed, wrong = run(go())
    assert set(by_name) == {"add", "env_says", "fail", "slow", "die"}
    add = by_name["add"]
    assert add.description == "Add two numbers."
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"
    assert added.ok and added.result == "42"
    assert env.result == "hi"
    assert failed.error and failed.error.startswith("fail (MCP server 'test'):")
    assert wrong.error and "schema" in wrong.error  # checked before the server is asked


def test_a_slow_call_times_out_and_a_dying_server_is_a_clear_error(server: list[str]) -> None:
    async def go() -> tuple[Any, ...]:
        async with mcp_tools(server, server="test", call_timeout_s=0.5,
                             prefix="t") as tools:
            by_name = {t.name: t for t in tools}
            t0 = time.perf_counter()
            slow = await call_tool(by_name["t_slow"], {"seconds": 10})
            slow_s = time.perf_counter() - t0
            died = await call_tool(by_name["t_die"], {})
            after = await call_tool(by_name["t_add"], {"a": 1, "b": 1})
            return slow, slow_s, died, after

    t0 = time.perf_counter()
    slow, slow_s, died, after = run(go())
    assert slow.error == "MCP server 'test': slow gave no result within 0.5 s"
    assert slow_s < 2
    assert died.error and "MCP server 'test' failed during die" in died.error
    assert "dying now" in died.error  # the end of its stderr says why
    assert after.error and "MCP server 'test' failed during add" in after.error
    assert time.perf_counter() - t0 < 15  # stopping the dead server did not hang


@pytest.mark.parametrize(("command", "said"), [
    (["no-such-mcp-server-program"], "no program 'no-such-mcp-server-program'"),
    ([sys.executable, "-c", "import sys; print('bad flag', file=sys.stderr); sys.exit(2)"],
     "failed while starting"),
    ([], "command must be a list of words"),
])
def test_a_server_that_will_not_start(command: list[str], said: str) -> None:
    async def go() -> None:
        async with mcp_tools(command, server="broken", init_timeout_s=10):
            pass

    t0 = time.perf_counter()
    with pytest.raises(ConfigError) as e:
        run(go())
    assert said in e.value.message and "broken" in e.value.message
    if "failed while starting" in said:
        assert "bad flag" in e.value.message  # its stderr, shown
    assert time.perf_counter() - t0 < 10


def test_a_server_that_never_answers_times_out_at_start() -> None:
    async def go() -> None:
        async with mcp_tools([sys.executable, "-c", "import time; time.sleep(60)"],
                             server="mute", init_timeout_s=1):
            pass

    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="MCP server 'mute' did not start within 1 s"):
        run(go())
    assert time.perf_counter() - t0 < 10


def test_an_error_in_the_callers_block_comes_out_as_itself(server: list[str]) -> None:
    async def go() -> None:
        async with mcp_tools(server, server="test"):
            raise LookupError("the caller's own")

    with pytest.raises(LookupError, match="the caller's own"):
        run(go())
