"""Agents with the real tools, wired as `podium run` wires them (`tui/factory.py`): the
built-ins made from the recipe's `[tools]`, a module of the person's own functions, and
a real MCP server over stdio whose tool an agent calls. The model is a scripted server
speaking the OpenAI wire on 127.0.0.1."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from podium.core.config import ModelSpec, Settings
from podium.core.recipe.load import load
from podium.core.store import Store
from podium.tui.factory import make_engine
from tests.agent_wire import TurnServer

pytest.importorskip("mcp")

SERVER = '''
from mcp.server.mcpserver import MCPServer

app = MCPServer("sums")


@app.tool()
def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


if __name__ == "__main__":
    app.run()
'''

MODULE = '''
__all__ = ["shout"]


def shout(text: str) -> str:
    """Say it louder.

    Args:
        text: What to say.
    """
    return text.upper() + "!"
'''


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_KEY", "sk-test")


def settings(url: str) -> Settings:
    return Settings(models={"remote": ModelSpec(
        provider="openai", base_url=url + "/v1", model="m", key_env="PODIUM_TEST_KEY")})


def run(tmp_path: Path, recipe: str, script: list[Any]) -> tuple[Store, Any, TurnServer]:
    path = tmp_path / "r.toml"
    path.write_text(recipe)
    with TurnServer(script) as server:
        store = Store.open()
        engine = make_engine(store, settings(server.url))
        result = asyncio.run(engine.run(load(path), {}))
    return store, result, server


def results(store: Store, run_id: str, step: str) -> dict[str, str]:
    return {e.tool_name or "": e.content for e in store.messages(run_id, step)
            if e.role == "tool"}


def test_builtins_and_a_module_of_functions(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("alpha")
    (tmp_path / "secret.txt").write_text("do not read")
    (tmp_path / "mine.py").write_text(MODULE)
    recipe = """
[tools]
read_roots = ["docs"]
module = "mine.py"

[steps.work]
kind = "agent"
model = "remote"
instructions = "Work."
tools = ["read_file", "calculator", "shout"]
"""
    script = [[("read_file", {"path": "../secret.txt"})], [("read_file", {"path": "a.txt"})],
              [("calculator", {"expression": "2 ** 10"})], [("shout", {"text": "hi"})],
              [("final_answer", {"answer": "ok"})]]
    store, result, server = run(tmp_path, recipe, script)
    assert result.status == "succeeded"
    entries = [e for e in store.messages(result.run_id, "work") if e.role == "tool"]
    escaped, read, calc, shouted = entries[:4]
    assert escaped.error and "do not read" not in escaped.content
    assert read.content.endswith("alpha") and calc.content == "1024"
    assert shouted.content == "HI!"
    offered = [t["function"]["name"] for t in server.bodies[0]["tools"]]
    assert offered == ["read_file", "calculator", "shout", "final_answer"]


def test_an_agent_calls_a_real_mcp_servers_tool(tmp_path: Path) -> None:
    (tmp_path / "sums.py").write_text(SERVER)
    recipe = f"""
[tools.mcp.sums]
command = [{sys.executable!r}, "sums.py"]

[steps.work]
kind = "agent"
model = "remote"
instructions = "Add 2 and 3."
tools = ["mcp.sums"]
"""
    script = [[("add", {"a": 2, "b": 3})], [("final_answer", {"answer": "5"})]]
    store, result, server = run(tmp_path, recipe.replace("'", '"'), script)
    assert result.status == "succeeded", result.error
    assert results(store, result.run_id, "work")["add"] == "5"
    assert [t["function"]["name"] for t in server.bodies[0]["tools"]] == ["add",
                                                                          "final_answer"]


def test_an_mcp_server_that_will_not_start_fails_the_step_clearly(tmp_path: Path) -> None:
    recipe = """
[tools.mcp.gone]
command = ["no-such-program-here"]

[steps.work]
kind = "agent"
model = "remote"
instructions = "Work."
tools = ["mcp.gone"]
"""
    store, result, _ = run(tmp_path, recipe, [[("final_answer", {"answer": "x"})]])
    step = store.get_steps(result.run_id)[0]
    assert step.status == "failed" and "no program 'no-such-program-here'" in (step.error or "")


def test_shell_waits_for_a_person(tmp_path: Path) -> None:
    from podium.core.review.decisions import decide

    recipe = """
[tools]
shell = true

[steps.work]
kind = "agent"
model = "remote"
instructions = "Say hi."
tools = ["shell"]
"""
    path = tmp_path / "r.toml"
    path.write_text(recipe)
    script = [[("shell", {"command": "touch said.txt"})],
              [("final_answer", {"answer": "done"})]]
    with TurnServer(script) as server:
        store = Store.open()
        engine = make_engine(store, settings(server.url))
        first = asyncio.run(engine.run(load(path), {}))
        assert first.status == "waiting" and not (tmp_path / "said.txt").exists()
        [asked] = store.reviews(run_id=first.run_id)
        assert asked.kind == "tool" and asked.original == {"command": "touch said.txt"}
        decide(store, asked.id, "approve")
        done = asyncio.run(engine.resume(first.run_id))
    assert done.status == "succeeded" and (tmp_path / "said.txt").exists()
