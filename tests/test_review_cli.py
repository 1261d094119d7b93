"""The review loop through the command line, with the embedded model: a run pauses,
other processes decide, the run finishes with the decided output; and nothing is
lost when a process is killed while a run waits or while a rerun works."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.conftest import PODIUM, ROOT, cli_env
from tests.test_crash_resume import attempts, step_rows

GATED = """
[steps.draft]
kind = "llm"
prompt = "Write one short sentence about a lighthouse."
max_tokens = 30

[steps.check]
kind = "review"
of = "draft"
instructions = "Is it about a lighthouse?"

[steps.final]
kind = "template"
template = "FINAL: {{ steps.check }}"
"""


def podium(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(home), cwd=ROOT)


def out(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    return json.loads(proc.stdout)


def dump(db: Path) -> list[Any]:
    """Every row of every table: to show a refused command changed nothing."""
    conn = sqlite3.connect(db)
    tables = [r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                         "ORDER BY name")]
    rows = [conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables]
    conn.close()
    return rows


def test_pause_then_reject_with_feedback_then_edit_from_other_processes(
        podium_home: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "gated.toml"
    recipe.write_text(GATED)
    first = podium(podium_home, "run", str(recipe), "--json")
    assert first.returncode == 3, first.stderr
    run = out(first)
    assert run["status"] == "waiting" and run["outputs"] == {}
    waiting = out(podium(podium_home, "runs", "--status", "waiting", "--json"))
    assert [r["run_id"] for r in waiting] == [run["run_id"]]

    [item] = out(podium(podium_home, "review", "--json"))
    assert item["run_id"] == run["run_id"] and item["of_step"] == "draft"
    listing = podium(podium_home, "review").stdout
    assert f"{item['id']:>4}  {run['run_id']}" in listing and "check (draft)" in listing
    shown = podium(podium_home, "review", "show", str(item["id"])).stdout
    assert "Is it about a lighthouse?" in shown and item["original"] in shown

    rejected = podium(podium_home, "review", "reject", str(item["id"]), "--feedback",
                      "Write about a cat instead.", "--json")
    assert rejected.returncode == 3, rejected.stderr  # back in the queue
    again = out(rejected)
    assert again["review"]["status"] == "rejected" and again["status"] == "waiting"
    db = podium_home / "podium.db"
    assert attempts(db, run["run_id"])["draft"] == 2  # made again, with the feedback
    [second] = out(podium(podium_home, "review", "--json"))
    assert second["round"] == 2 and second["id"] != item["id"]

    edited = podium(podium_home, "review", "edit", str(second["id"]), "--value",
                    "A cat sleeps by the lamp.", "--json")
    assert edited.returncode == 0, edited.stderr
    done = out(edited)
    assert done["status"] == "succeeded"
    assert done["outputs"] == {"final": "FINAL: A cat sleeps by the lamp."}
    history = out(podium(podium_home, "review", "--all", "--json"))
    assert [(h["status"], h["round"]) for h in history] == [("rejected", 1), ("edited", 2)]
    # Its time is working time: the two waits for a person are kept apart.
    [listed] = out(podium(podium_home, "runs", "--json"))
    first_wait = history[0]["decided_at"] - history[0]["created_at"]
    assert listed["waited_s"] >= first_wait + history[1]["decided_at"] - \
        history[1]["created_at"] - 0.5
    assert podium(podium_home, "review", "--all").stdout.rstrip().endswith(
        "A cat sleeps by the lamp.")
    assert history[1]["original"] == second["original"]
    assert history[1]["decided"] == "A cat sleeps by the lamp."

    twice = podium(podium_home, "review", "approve", str(second["id"]))
    assert twice.returncode == 2 and "already decided: edited" in twice.stderr
    shown = out(podium(podium_home, "show", run["run_id"], "--json"))
    assert [(r["round"], r["status"]) for r in shown["reviews"]] == [(1, "rejected"),
                                                                   (2, "edited")]
    human = podium(podium_home, "show", run["run_id"]).stdout
    assert "(round 1): rejected" in human and "Write about a cat instead." in human


def test_approve_passes_the_draft_unchanged(podium_home: Path, tmp_path: Path) -> None:
    recipe = tmp_path / "gated.toml"
    recipe.write_text(GATED)
    quiet = podium(podium_home, "run", str(recipe), "-q")
    assert quiet.returncode == 3 and quiet.stdout == "" and quiet.stderr == ""
    [item] = out(podium(podium_home, "review", "--json"))
    held = podium(podium_home, "review", "approve", str(item["id"]), "--no-resume", "--json")
    assert held.returncode == 0 and out(held)["status"] == "waiting"
    resumed = podium(podium_home, "resume", item["run_id"], "--json")
    assert resumed.returncode == 0, resumed.stderr
    assert out(resumed)["outputs"]["final"] == "FINAL: " + item["original"]
    # The embedded model answered the draft alone: approving it taught the router.
    ask = "Write one short sentence about a lighthouse."
    db = sqlite3.connect(podium_home / "podium.db")
    assert db.execute("SELECT prompt, right, source FROM route_outcomes").fetchall() == [
        (ask, 1, "review")]
    routed = out(podium(podium_home, "route", ask, "--json"))
    assert "(seen here: review)" in " ".join(routed["reasons"])


def test_bad_input_gets_a_clear_message_and_changes_nothing(podium_home: Path,
                                                             tmp_path: Path) -> None:
    recipe = tmp_path / "extract.toml"
    recipe.write_text("""
[steps.person]
kind = "llm"
prompt = "Name a scientist as JSON."
schema = { type = "object", properties = { name = { type = "string" } }, required = ["name"] }
max_tokens = 40

[steps.check]
kind = "review"
of = "person"
""")
    assert podium(podium_home, "run", str(recipe), "-q").returncode == 3
    [item] = out(podium(podium_home, "review", "--json"))
    db = podium_home / "podium.db"
    before = dump(db)
    cases = [
        (["review", "edit", str(item["id"]), "--value", '{"name": '], "not valid JSON"),
        (["review", "edit", str(item["id"]), "--value", '{"nom": "Ada"}'],
         "missing required field 'name'"),
        (["review", "approve", "999"], "no review 999"),
        (["review", "approve", "abc"], "'abc' is not a review id"),
        (["edit", "nosuchrun", "person", "--value", "x"], "no run 'nosuchrun'"),
        (["edit", item["run_id"], "person", "--value", "x"], "waits for review"),
        (["rerun", item["run_id"], "--from", "nope"], "has no step 'nope'"),
    ]
    for args, message in cases:
        proc = podium(podium_home, *args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert dump(db) == before

    broken = tmp_path / "broken.toml"
    broken.write_text(GATED.replace('instructions = "Is it about a lighthouse?"',
                                    'when = "steps.drafts == \'x\'"'))
    proc = podium(podium_home, "run", str(broken))
    assert proc.returncode == 2
    assert f"{broken}:10: steps.check.when: unknown step 'steps.drafts'" in proc.stderr
    assert "did you mean 'steps.draft'?" in proc.stderr
    assert dump(db) == before


WAIT_AND_WORK = """
[steps.draft]
kind = "llm"
prompt = "Say hello."
max_tokens = 8

[steps.check]
kind = "review"
of = "draft"

[steps.story]
kind = "llm"
prompt = "Continue the sequence up to 500: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
max_tokens = 300
temperature = 0
retries = 0

[steps.final]
kind = "template"
template = "{{ steps.check }} / {{ steps.story | length }}"
"""


def wait_for(what: Any, proc: subprocess.Popen[str], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if what():
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.kill()
    raise AssertionError(proc.communicate())


def test_sigkill_while_a_run_waits_for_review_loses_nothing(podium_home: Path,
                                                            tmp_path: Path) -> None:
    recipe = tmp_path / "wait.toml"
    recipe.write_text(WAIT_AND_WORK)
    db = podium_home / "podium.db"
    proc = subprocess.Popen([PODIUM, "run", str(recipe), "-q"], env=cli_env(podium_home),
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def gate_waits_and_story_streams() -> bool:
        rows = step_rows(db)
        return rows.get("check", (0, ""))[1] == "waiting" and \
            rows.get("story", (0, "", None))[1] == "running" and bool(rows["story"][2])

    wait_for(gate_waits_and_story_streams, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)

    [item] = out(podium(podium_home, "review", "--json"))  # the queue still holds it
    shown = out(podium(podium_home, "show", item["run_id"], "--json"))
    assert shown["status"] == "interrupted"
    steps = {s["step_id"]: s for s in shown["steps"]}
    assert steps["draft"]["status"] == "succeeded" and steps["check"]["status"] == "waiting"
    assert steps["story"]["status"] == "in_doubt"

    approved = podium(podium_home, "review", "approve", str(item["id"]), "--json", "-q")
    assert approved.returncode == 0, approved.stderr
    done = out(approved)
    assert done["status"] == "succeeded"
    assert done["outputs"]["final"].startswith(item["original"] + " / ")
    counts = attempts(db, item["run_id"])
    assert counts["draft"] == 1 and counts["story"] == 2  # only the in-doubt one again
    assert len(out(podium(podium_home, "review", "--all", "--json"))) == 1


CHAIN = """
[steps.a]
kind = "template"
template = "start"

[steps.b]
kind = "llm"
prompt = "Say hello."
max_tokens = 8

[steps.c]
kind = "llm"
prompt = "{{ steps.b }} Continue the sequence up to 500: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,"
max_tokens = 300
temperature = 0
retries = 0

[steps.d]
kind = "template"
template = "{{ steps.c | length }} characters"
"""


def test_sigkill_during_a_rerun_after_an_edit_loses_nothing(podium_home: Path,
                                                           tmp_path: Path) -> None:
    recipe = tmp_path / "chain.toml"
    recipe.write_text(CHAIN)
    db = podium_home / "podium.db"
    first = out(podium(podium_home, "run", str(recipe), "--json", "-q"))
    edited = podium(podium_home, "edit", first["run_id"], "b", "--value", "Hi there.")
    assert edited.returncode == 0 and "stale now: c, d" in edited.stdout, edited.stderr
    before = out(podium(podium_home, "show", first["run_id"], "--json"))
    assert [s["stale"] is not None for s in before["steps"]] == [False, False, True, True]

    proc = subprocess.Popen([PODIUM, "rerun", first["run_id"], "-q"],
                            env=cli_env(podium_home), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)

    def new_run_streams_c() -> bool:
        conn = sqlite3.connect(db)
        row = conn.execute("SELECT s.status, s.partial_output FROM steps s JOIN runs r ON "
                           "r.id = s.run_id WHERE r.parent_run_id = ? AND s.step_id = 'c'",
                           (first["run_id"],)).fetchone()
        conn.close()
        return row is not None and row[0] == "running" and bool(row[1])

    wait_for(new_run_streams_c, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=10)

    rerun = out(podium(podium_home, "show", "last", "--json"))
    assert rerun["parent_run_id"] == first["run_id"] and rerun["status"] == "interrupted"
    resumed = podium(podium_home, "resume", rerun["run_id"], "--json", "-q")
    assert resumed.returncode == 0, resumed.stderr
    done = out(resumed)
    assert done["status"] == "succeeded" and done["outputs"]["d"].endswith("characters")
    assert attempts(db, rerun["run_id"]) == {"c": 2, "d": 1}  # a and b kept, not run
    listed = podium(podium_home, "runs").stdout.splitlines()
    assert any(line.startswith(rerun["run_id"]) and line.endswith(
        f"rerun of {first['run_id']}") for line in listed)
    steps = {s["step_id"]: s for s in done["steps"]}
    assert steps["b"]["output"] == "Hi there." and steps["b"]["version"] == 2
    # The old run is as it was: its outputs, and its stale marks.
    assert out(podium(podium_home, "show", first["run_id"], "--json")) == before


def test_shipped_support_reply_holds_an_angry_customer_for_review(podium_home: Path) -> None:
    first = podium(podium_home, "run", "support-reply", "--json")
    assert first.returncode == 3, first.stderr  # the default message is an angry one
    run = out(first)
    assert run["outputs"]["mood"] == "angry" and run["outputs"]["reply"] is None
    [item] = out(podium(podium_home, "review", "--json"))
    assert "sounds angry" in item["instructions"]
    done = out(podium(podium_home, "review", "approve", str(item["id"]), "--json", "-q"))
    assert done["status"] == "succeeded"
    article = {s["step_id"]: s for s in done["steps"]}["article"]["output"]
    assert done["outputs"]["reply"] == f"{item['original']}\n\nMore help: {article}"


def test_a_token_budget_pauses_the_run_until_a_person_raises_it(podium_home: Path,
                                                                tmp_path: Path) -> None:
    recipe = tmp_path / "budget.toml"
    recipe.write_text("""
[budget]
tokens = 20

[steps.one]
kind = "llm"
prompt = "Say hello."
max_tokens = 8

[steps.two]
kind = "llm"
prompt = "Say goodbye after: {{ steps.one }}"
max_tokens = 8
""")
    first = podium(podium_home, "run", str(recipe), "--json")
    assert first.returncode == 3, first.stderr
    [item] = out(podium(podium_home, "review", "--json"))
    assert item["kind"] == "budget" and item["step_id"] == "two"
    assert item["original"]["what"] == "tokens" and item["original"]["spent"] >= 20
    listing = podium(podium_home, "review").stdout
    assert "budget before two" in listing and "tokens used" in listing
    wrong = podium(podium_home, "review", "edit", str(item["id"]), "--value", "x")
    assert wrong.returncode == 2 and "approve or reject" in wrong.stderr
    done = podium(podium_home, "review", "approve", str(item["id"]), "--budget", "1000",
                  "--json")
    assert done.returncode == 0, done.stderr
    assert out(done)["status"] == "succeeded"
    assert out(done)["review"]["action"] == "continue"


TWO_GATES = """
[steps.a]
kind = "template"
template = "A"
[steps.b]
kind = "template"
template = "B"
[steps.ra]
kind = "review"
of = "a"
on_reject = "fail"
[steps.rb]
kind = "review"
of = "b"
on_reject = "fail"
[steps.after]
kind = "template"
template = "{{ steps.ra }}{{ steps.rb }}"
"""


def test_two_people_deciding_at_once_continue_the_run_once(podium_home: Path,
                                                           tmp_path: Path) -> None:
    recipe = tmp_path / "two.toml"
    recipe.write_text(TWO_GATES)
    db = podium_home / "podium.db"
    for _ in range(4):
        assert podium(podium_home, "run", str(recipe), "-q").returncode == 3
        first, second = out(podium(podium_home, "review", "--json"))
        procs = [subprocess.Popen([PODIUM, "review", "approve", str(r["id"]), "-q"],
                                  env=cli_env(podium_home), cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for r in (first, second)]
        for proc in procs:
            _, err = proc.communicate(timeout=60)
            assert proc.returncode in (0, 3) and "Traceback" not in err, err
        run = out(podium(podium_home, "show", first["run_id"], "--json"))
        assert run["status"] == "succeeded" and run["outputs"] == {"after": "AB"}
        assert attempts(db, first["run_id"])["after"] == 1
