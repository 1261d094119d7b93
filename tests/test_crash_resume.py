"""A run killed mid-way (SIGKILL) or cancelled (Ctrl-C) resumes from the store:
committed steps are never re-run, the step that was in flight is retried."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import PODIUM, ROOT, cli_env

RECIPE = """
[steps.a]
kind = "template"
template = "start"

[steps.b]
kind = "llm"
prompt = "Say hello."
max_tokens = 8

[steps.c]
kind = "llm"
prompt = "Write a very long story about a lighthouse keeper. {{ steps.b }}"
max_tokens = 600
temperature = 0.9
retries = 0

[steps.d]
kind = "template"
template = "{{ steps.c | length }} characters"
"""


def step_rows(db: Path, run_id: str | None = None) -> dict[str, tuple[Any, ...]]:
    conn = sqlite3.connect(db)
    try:
        sql = "SELECT step_id, status, partial_output FROM steps"
        rows = conn.execute(sql + (" WHERE run_id = ?" if run_id else ""),
                            (run_id,) if run_id else ()).fetchall()
    except sqlite3.OperationalError:
        return {}
    finally:
        conn.close()
    return {r[0]: r for r in rows}


def as_in_a_terminal() -> None:
    """Ctrl-C reaches the child as it would in a terminal. A test suite started in the
    background (`make test &`, nohup) ignores SIGINT, the child would inherit that, and
    Python leaves an inherited SIG_IGN alone, so the run would never see the signal."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_and_wait_for_c(home: Path, recipe: Path) -> subprocess.Popen[str]:
    """Start `podium run` and return once step c is streaming."""
    proc = subprocess.Popen([PODIUM, "run", str(recipe), "-q", "--json"], env=cli_env(home),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, preexec_fn=as_in_a_terminal)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        rows = step_rows(home / "podium.db")
        if rows.get("c", (None, None, None))[1] == "running" and rows["c"][2]:
            return proc
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    proc.communicate()
    raise AssertionError("step c never started streaming")


def attempts(db: Path, run_id: str) -> dict[str, int]:
    conn = sqlite3.connect(db)
    rows = conn.execute("SELECT step_id, COUNT(*) FROM attempts WHERE run_id = ? "
                        "GROUP BY step_id", (run_id,)).fetchall()
    conn.close()
    return dict(rows)


def test_sigkill_then_resume(podium_home: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "story.toml"
    recipe.write_text(RECIPE)
    proc = start_and_wait_for_c(podium_home, recipe)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    db = podium_home / "podium.db"
    env = cli_env(podium_home)

    shown = json.loads(subprocess.run([PODIUM, "show", "last", "--json"], env=env, cwd=ROOT,
                                      capture_output=True, text=True, check=True).stdout)
    run_id = shown["run_id"]
    assert shown["status"] == "interrupted"
    steps = {s["step_id"]: s for s in shown["steps"]}
    assert steps["a"]["status"] == steps["b"]["status"] == "succeeded"
    assert steps["c"]["status"] == "in_doubt" and steps["c"]["partial_output"]
    assert steps["d"]["status"] == "pending"
    human = subprocess.run([PODIUM, "show", run_id], env=env, cwd=ROOT, capture_output=True,
                           text=True).stdout
    assert "in doubt" in human and f"podium resume {run_id}" in human

    resumed = subprocess.run([PODIUM, "resume", run_id, "--json", "-q"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    out = json.loads(resumed.stdout)
    assert out["status"] == "succeeded" and out["outputs"]["d"].endswith("characters")
    assert attempts(db, run_id) == {"a": 1, "b": 1, "c": 2, "d": 1}


def test_in_doubt_step_can_be_settled_by_hand(podium_home: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "story.toml"
    recipe.write_text(RECIPE)
    proc = start_and_wait_for_c(podium_home, recipe)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)
    env = cli_env(podium_home)
    resumed = subprocess.run([PODIUM, "resume", "last", "--output", "c=a short story",
                              "--json", "-q"], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["outputs"]["d"] == "13 characters"


def test_ctrl_c_cancels_cleanly_and_resumes(podium_home: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "story.toml"
    recipe.write_text(RECIPE)
    proc = start_and_wait_for_c(podium_home, recipe)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "podium resume" in err
    run_id = json.loads(out)["run_id"]
    rows = step_rows(podium_home / "podium.db", run_id)
    assert rows["c"][1] == "cancelled" and rows["b"][1] == "succeeded"
    env = cli_env(podium_home)
    resumed = subprocess.run([PODIUM, "resume", run_id, "--json", "-q"], env=env, cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert attempts(podium_home / "podium.db", run_id)["b"] == 1
