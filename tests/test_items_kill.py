"""A run killed (SIGKILL) in the middle of a `map` resumes making only the items that
were not finished: the finished ones are read back from the store. Real processes, a
real SQLite file, a real loopback model server that counts what it was asked, and the
embedded model."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.conftest import PODIUM, ROOT, cli_env
from tests.servers import Behaviour, ScriptServer

ITEMS = 40


class EchoServer(ScriptServer):
    """An OpenAI-format server that answers each prompt with itself, after a pause."""

    def __init__(self, delay: float) -> None:
        super().__init__([Behaviour()])
        self.delay = delay

    def respond(self, h: Any, b: Behaviour, body: dict[str, Any]) -> None:
        text = "re " + body["messages"][-1]["content"]
        super().respond(h, Behaviour(text=text, delay=self.delay), body)


def item_rows(db: Path, run_id: str | None = None) -> list[tuple[Any, ...]]:
    """(index, status, step attempt, output) of every item row, in the order kept."""
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT i.idx, i.status, i.attempt, i.output FROM items i JOIN "
                            "item_sets s ON s.id = i.set_id" +
                            (" WHERE s.run_id = ?" if run_id else "") + " ORDER BY i.id",
                            (run_id,) if run_id else ()).fetchall()
    except sqlite3.OperationalError:  # not created yet
        return []
    finally:
        conn.close()


def kill_when_items(home: Path, recipe: Path, env: dict[str, str], at_least: int,
                    deadline_s: float = 90) -> None:
    """Run the recipe, SIGKILL it once `at_least` items are stored, and check it was
    killed mid-map (not after it)."""
    proc = subprocess.Popen([PODIUM, "run", str(recipe), "-q", "--json"], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + deadline_s
    try:
        while len(item_rows(home / "podium.db")) < at_least:
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the map never got that far"
            time.sleep(0.02)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGKILL


def resume(env: dict[str, str]) -> dict[str, Any]:
    shown = json.loads(subprocess.run([PODIUM, "show", "last", "--json"], env=env, cwd=ROOT,
                                      capture_output=True, text=True, check=True).stdout)
    assert shown["status"] == "interrupted"
    human = subprocess.run([PODIUM, "show", shown["run_id"]], env=env, cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout
    assert "items finished and kept: a resume makes only the rest" in human, human
    done = subprocess.run([PODIUM, "resume", shown["run_id"], "--json", "-q"], env=env,
                          cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr
    out: dict[str, Any] = json.loads(done.stdout)
    out["run_id"] = shown["run_id"]
    return out


def assert_each_item_once(db: Path, run_id: str, count: int) -> list[tuple[Any, ...]]:
    """Every item has exactly one result, and none finished in the killed process
    was made again by the resume (the item rows are only ever added)."""
    rows = item_rows(db, run_id)
    succeeded = [r for r in rows if r[1] == "succeeded"]
    assert sorted(r[0] for r in succeeded) == list(range(count))
    before = [r for r in succeeded if r[2] == 1]
    after = [r for r in succeeded if r[2] == 2]
    assert before and after, "the kill did not land mid-map"
    conn = sqlite3.connect(db)
    attempts = conn.execute("SELECT number, status FROM attempts WHERE run_id = ? AND "
                            "step_id = 'each' ORDER BY number", (run_id,)).fetchall()
    conn.close()
    assert attempts == [(1, "in_doubt"), (2, "succeeded")]
    return succeeded


def test_sigkill_mid_map_resumes_only_the_unfinished_items(podium_home: Path,
                                                           tmp_path: Path) -> None:
    """40 remote calls of 0.1 s, four at a time; killed after 12 are stored. The server
    saw every stored item asked exactly once, over both processes."""
    recipe = tmp_path / "map.toml"
    recipe.write_text(f"""
[steps.each]
kind = "map"
over = "range({ITEMS}) | list"
concurrency = 4
step = {{ kind = "llm", model = "remote", prompt = "item {{{{ item }}}}" }}
[steps.count]
kind = "template"
template = "{{{{ steps.each | length }}}} replies"
""")
    with EchoServer(delay=0.1) as server:
        (podium_home / "config.toml").write_text(
            f'[models.remote]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            'key_env = "PODIUM_TEST_KEY"\n')
        env = dict(cli_env(podium_home), PODIUM_TEST_KEY="sk-test")
        kill_when_items(podium_home, recipe, env, at_least=12)
        first = len(server.requests)
        out = resume(env)
    assert out["status"] == "succeeded" and out["outputs"]["count"] == f"{ITEMS} replies"
    db = podium_home / "podium.db"
    succeeded = assert_each_item_once(db, out["run_id"], ITEMS)
    asked = Counter(r["body"]["messages"][-1]["content"] for r in server.requests)
    assert set(asked) == {f"item {i}" for i in range(ITEMS)}
    for index, _, attempt, output in succeeded:
        assert json.loads(output) == f"re item {index}"
        if attempt == 1:  # finished before the kill: never asked again
            assert asked[f"item {index}"] == 1, index
    # Asked twice: only items in flight (or not yet committed) when the process died.
    assert sum(asked.values()) - ITEMS <= first - sum(1 for r in succeeded if r[2] == 1)
    conn = sqlite3.connect(db)
    tokens = conn.execute("SELECT input_tokens, output_tokens FROM steps WHERE run_id = ? "
                          "AND step_id = 'each'", (out["run_id"],)).fetchone()
    conn.close()
    assert tokens == (11 * ITEMS, 5 * ITEMS)  # the kept items' tokens count, once each


def test_sigkill_mid_map_on_the_embedded_model(podium_home: Path, tmp_path: Path) -> None:
    """The same on the model that ships with Podium: killed after 6 of 16 items."""
    recipe = tmp_path / "map.toml"
    recipe.write_text("""
[steps.each]
kind = "map"
over = "range(16) | list"
concurrency = 2
step = { kind = "llm", route = "local", prompt = "Say the number {{ item }}.", max_tokens = 6 }
""")
    env = cli_env(podium_home)
    kill_when_items(podium_home, recipe, env, at_least=6)
    out = resume(env)
    assert out["status"] == "succeeded" and len(out["outputs"]["each"]) == 16
    succeeded = assert_each_item_once(podium_home / "podium.db", out["run_id"], 16)
    assert [json.loads(r[3]) for r in sorted(succeeded)] == out["outputs"]["each"]
