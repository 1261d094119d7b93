"""The `agent` kind on the embedded model: every local tool call parses and fits its
tool's schema; each limit and the loop guard stop it with the reason stored; an `ask`
tool waits in the review queue and a denial reaches the agent; a SIGKILL during the
third tool call, then `podium resume`, repeats no finished call."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.core.agents import wire
from podium.core.config import Settings
from podium.core.errors import RecipeErrors
from podium.core.recipe import validate
from podium.core.recipe.load import loads
from podium.core.review.decisions import decide
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.core.tools import catalog
from podium.core.tools.base import ToolDef
from podium.providers.registry import build_hub
from tests.conftest import PODIUM, ROOT, cli_env

PAGE = {"type": "object", "properties": {"page": {"type": "integer"}}, "required": ["page"]}
SAVED: list[int] = []


def save_page(args: dict[str, Any]) -> str:
    SAVED.append(args["page"])
    return f"saved page {args['page']}. Now save page {args['page'] + 1}."


@pytest.fixture(autouse=True)
def pages_tool() -> Iterator[None]:
    SAVED.clear()
    catalog.register("save_page", lambda ctx: ToolDef("save_page", "Save one page by number.",
                                                      PAGE, save_page))
    yield
    catalog.unregister("save_page")


@pytest.fixture(scope="module")
def engine_hub() -> Any:
    return build_hub(Settings())


def agent(extra: str = "", turns: int = 4) -> str:
    return f"""
[steps.pages]
kind = "agent"
role = "You save pages one at a time with save_page."
instructions = "Save pages 1, 2, 3 and 4, one call each, in order. Then call final_answer."
tools = ["save_page"]
max_turns = {turns}
max_tokens = 48
temperature = 0
{extra}
"""


def run(hub: Any, source: str) -> tuple[Store, Any]:
    store = Store.open()
    result = asyncio.run(Engine(store, hub).run(loads(source), {}))
    return store, result


def test_every_local_call_parses_and_fits_its_schema(engine_hub: Any) -> None:
    store, result = run(engine_hub, agent(turns=3))
    entries = store.messages(result.run_id, "pages")
    calls = [c for e in entries if e.role == "assistant" for c in e.tool_calls]
    assert len(calls) == 3  # one per model turn, every one a real call
    schemas = {"save_page": PAGE, wire.FINAL: wire.ANSWER_SCHEMA}
    for c in calls:
        assert c["name"] in schemas
        assert validate.problems(c["arguments"], schemas[c["name"]]) == []
    results = [e for e in entries if e.role == "tool"]
    assert all(r.duration_ms is not None and r.error is None for r in results)
    assert SAVED == [1, 2, 3]
    step = store.get_steps(result.run_id)[0]
    assert step.status == "failed" and "reached max_turns = 3" in (step.error or "")
    assert entries[-1].role == "stop" and "max_turns = 3" in entries[-1].content


def test_token_and_cost_limits_stop_with_their_reason(engine_hub: Any) -> None:
    store, result = run(engine_hub, agent("token_limit = 100"))
    step = store.get_steps(result.run_id)[0]
    assert "past token_limit = 100" in (step.error or "") and SAVED == [1]
    SAVED.clear()
    spec = engine_hub.specs["smollm2"]
    engine_hub.specs["smollm2"] = spec.model_copy(update={"price_in": 10.0, "price_out": 10.0})
    try:
        store, result = run(engine_hub, agent("cost_limit = 0.002"))
    finally:
        engine_hub.specs["smollm2"] = spec
    step = store.get_steps(result.run_id)[0]
    assert "past cost_limit = $0.002" in (step.error or "")
    assert 1 <= len(SAVED) < 4 and step.cost >= 0.002


def test_loop_guard_stops_a_repeated_call(engine_hub: Any) -> None:
    add = {"type": "object", "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
           "required": ["a", "b"]}
    catalog.register("add", lambda ctx: ToolDef("add", "Add two numbers.", add,
                                                lambda a: str(a["a"] + a["b"])))
    try:
        store, result = run(engine_hub, """
[steps.sum]
kind = "agent"
role = "You are a calculator assistant. Always use the add tool before answering."
instructions = "What is 17 + 25? Use the add tool."
tools = ["add"]
max_turns = 4
max_tokens = 64
temperature = 0
""")
    finally:
        catalog.unregister("add")
    step = store.get_steps(result.run_id)[0]
    assert step.status == "failed"
    assert 'loop guard: called add again with the same arguments {"a": 17, "b": 25}' in \
        (step.error or "")
    ran = [e for e in store.messages(result.run_id, "sum") if e.role == "tool"]
    assert [r.error for r in ran][0] is None and ran[-1].error.startswith("not run")


def test_ask_waits_for_approval_and_a_denial_reaches_the_agent(engine_hub: Any) -> None:
    store = Store.open()
    engine = Engine(store, engine_hub)
    first = asyncio.run(engine.run(loads(agent('approval = {save_page = "ask"}', turns=2)), {}))
    assert first.status == "waiting" and SAVED == []  # nothing ran unasked
    pending = store.reviews(run_id=first.run_id)
    assert [(r.kind, r.original) for r in pending] == [("tool", {"page": 1})]
    # Edited arguments run in place of the model's.
    decide(store, pending[0].id, "edit", value='{"page": 7}')
    second = asyncio.run(engine.resume(first.run_id))
    assert SAVED == [7] and second.status == "waiting"
    asked = store.reviews(run_id=first.run_id)[0]
    decide(store, asked.id, "reject", feedback="no more pages today")
    third = asyncio.run(engine.resume(first.run_id))
    assert SAVED == [7] and third.status == "failed"  # max_turns = 2 after the denial
    entries = store.messages(first.run_id, "pages")
    denied = [e for e in entries if e.role == "tool" and e.error == "denied by a person"]
    assert len(denied) == 1 and "no more pages today" in denied[0].content
    ran = next(e for e in entries if e.role == "tool" and e.error is None)
    assert ran.arguments == {"page": 7}
    # What the model was shown next carries the person's reason.
    shown = wire.conversation(entries, "", "s", native=False)
    assert any("no more pages today" in m.content for m in shown)


def test_deny_refuses_with_a_message(engine_hub: Any) -> None:
    store, result = run(engine_hub, agent('approval = {save_page = "deny"}', turns=2))
    refused = [e for e in store.messages(result.run_id, "pages") if e.role == "tool"]
    assert SAVED == [] and refused
    assert refused[0].error == "denied by the recipe"
    assert "not allowed here" in refused[0].content


def test_tools_are_checked_at_load() -> None:
    with pytest.raises(RecipeErrors) as caught:
        loads(agent().replace('tools = ["save_page"]', 'tools = ["save_pgae", "shell"]\n'
                              'approval = {shell = "auto"}'), "r.toml")
    said = str(caught.value)
    assert "r.toml:6: steps.pages.tools.0: unknown tool 'save_pgae'" in said
    assert "did you mean 'save_page'?" in caught.value.errors[0].hint
    assert "shell is off" in said and "shell cannot run without a person" in said
    with pytest.raises(RecipeErrors) as caught:
        loads("[tools]\nread_rots = []\n" + agent(), "r.toml")
    assert "did you mean 'read_roots'?" in (caught.value.errors[0].hint or "")


PAGES_MODULE = '''
import os, time
from podium.core.tools.base import ToolDef

def save(args):
    log = os.environ["PAGES_LOG"]
    with open(log, "a") as f:
        f.write(f"start {args['page']}\\n")
    if args["page"] == 3 and os.path.exists(log + ".slow"):
        time.sleep(60)
    with open(log, "a") as f:
        f.write(f"done {args['page']}\\n")
    return f"saved page {args['page']}. Now save page {args['page'] + 1}."

TOOLS = [ToolDef("save_page", "Save one page by number.",
                 {"type": "object", "properties": {"page": {"type": "integer"}},
                  "required": ["page"]}, save)]
'''


def test_sigkill_during_the_third_call_then_resume(podium_home: Path, tmp_path: Path) -> None:
    (tmp_path / "pages.py").write_text(PAGES_MODULE)
    recipe = tmp_path / "pages.toml"
    recipe.write_text('[tools]\nmodule = "pages.py"\n' + agent(turns=5))
    log = tmp_path / "pages.log"
    (tmp_path / "pages.log.slow").touch()
    env = dict(cli_env(podium_home), PAGES_LOG=str(log))
    proc = subprocess.Popen([PODIUM, "run", str(recipe), "-q"], env=env, cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 240  # the local model is one machine-wide turn at a time
    while "start 3" not in (log.read_text() if log.exists() else ""):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    (tmp_path / "pages.log.slow").unlink()
    resumed = subprocess.run([PODIUM, "resume", "last", "-q"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=300)
    lines = log.read_text().split("\n")
    assert lines.count("done 1") == 1 and lines.count("done 2") == 1  # not made again
    assert lines.count("start 3") == 2 and lines.count("done 3") == 1  # in flight: again
    shown = json.loads(subprocess.run([PODIUM, "show", "last", "--json"], env=env, cwd=ROOT,
                                      capture_output=True, text=True).stdout)
    transcript = shown["steps"][0]["transcript"]
    pages = [m["arguments"]["page"] for m in transcript if m["role"] == "tool" and
             "error" not in m]
    assert pages[:3] == [1, 2, 3] and resumed.returncode in (0, 1)


def test_transcripts_table_columns() -> None:
    columns = Store.open().db.table("agent_messages").columns_dict
    for name in ("run_id", "step_id", "seq", "speaker", "role", "content", "tool_calls",
                 "tool_call_id", "tool_name", "arguments", "error", "truncated",
                 "duration_ms", "input_tokens", "output_tokens", "cost"):
        assert name in columns
