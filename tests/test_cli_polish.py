"""The command line's rough edges (issue 13, "Smaller, all seen"), each through the
`podium` command: in-process with click's CliRunner where that is faithful, in a
subprocess (a pty, a signal to a process group) where it is not. The recipes are
templates and review gates, so no model is called."""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from podium.tui.cli import cli
from podium.tui.progress import named, plural
from podium.tui.views import timing
from tests.conftest import PODIUM, ROOT, cli_env

GATED = """
[steps.draft]
kind = "template"
template = "A lighthouse stands on the rock."

[steps.check]
kind = "review"
of = "draft"
on_reject = "fail"

[steps.final]
kind = "template"
template = "FINAL: {{ steps.check }}"
"""

BRANCHED = """
[steps.kind]
kind = "template"
template = "billing"

[steps.dispatch]
kind = "branch"
on = "steps.kind"
cases = { billing = ["billing"], bug = ["bug"] }

[steps.billing]
kind = "template"
template = "refunds: {{ steps.kind }}"

[steps.bug]
kind = "template"
template = "bugs: {{ steps.kind }}"

[steps.reply]
kind = "template"
join = "any"
template = "{{ steps.billing or '' }}{{ steps.bug or '' }}"
"""


def podium(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, prog_name="podium")


def as_json(result: Result) -> Any:
    assert result.stdout, result.stderr
    return json.loads(result.stdout)


def waiting_item(recipe_file: Any) -> dict[str, Any]:
    """Run GATED to its review gate; the pending item."""
    assert podium("run", str(recipe_file(GATED)), "-q").exit_code == 3
    [item] = as_json(podium("review", "--json"))
    return dict(item)


# --- 1. quiet means only the outputs ------------------------------------------------------


def test_quiet_run_prints_only_the_outputs(recipe_file: Any) -> None:
    ok = podium("run", str(recipe_file('[steps.a]\nkind = "template"\ntemplate = "hi"\n')),
                "-q")
    assert ok.exit_code == 0
    assert ok.stdout == "a:\nhi\n"
    assert ok.stderr == ""  # no summary line, no progress
    loud = podium("run", str(recipe_file('[steps.a]\nkind = "template"\ntemplate = "hi"\n')))
    assert "succeeded in" in loud.stderr and loud.stdout == "a:\nhi\n"


def test_quiet_run_still_says_what_failed(recipe_file: Any) -> None:
    bad = recipe_file('[steps.a]\nkind = "template"\ntemplate = "{{ inputs.x.y }}"\n'
                      '[inputs.x]\ntype = "object"\ndefault = {}\n')
    result = podium("run", str(bad), "-q")
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.startswith("error: a.template: ")
    assert "hint: " in result.stderr and "details: podium show" not in result.stderr


def test_quiet_review_decision_prints_only_the_outputs(recipe_file: Any) -> None:
    item = waiting_item(recipe_file)
    result = podium("review", "approve", str(item["id"]), "-q")
    assert result.exit_code == 0
    assert result.stdout == "final:\nFINAL: A lighthouse stands on the rock.\n"
    assert result.stderr == ""


# --- 2. plurals ---------------------------------------------------------------------------


def test_one_step_is_not_one_steps(recipe_file: Any) -> None:
    path = str(recipe_file('[steps.a]\nkind = "template"\ntemplate = "hi"\n'))
    ran = podium("run", path)
    assert "· 1 step\n" in ran.stderr and "1 steps" not in ran.stderr
    assert "· 0 tokens ·" in ran.stderr
    checked = podium("recipe", "check", path)
    assert checked.stdout.strip().endswith(": 1 step")
    assert [plural(n, "step") for n in (0, 1, 2)] == ["0 steps", "1 step", "2 steps"]


# --- 3. Ctrl-C at the editor (chooser) exits 130 ------------------------------------------


def test_ctrl_c_in_the_editor_exits_130_and_decides_nothing(
        recipe_file: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    item = waiting_item(recipe_file)
    monkeypatch.setenv("EDITOR", "vi")

    def interrupted(*args: Any, **kwargs: Any) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(click, "edit", interrupted)
    result = podium("review", "edit", str(item["id"]))
    assert result.exit_code == 130
    assert "cancelled" in result.stderr and "Aborted" not in result.stderr
    assert as_json(podium("review", "--json"))[0]["status"] == "pending"


def test_ctrl_c_reaching_the_whole_process_group_exits_130(podium_home: Path,
                                                           recipe_file: Any) -> None:
    """As a terminal does: the editor (here a shell that sends SIGINT to its process
    group, as Ctrl-C at sensible-editor's chooser would) and podium both get it."""
    item = waiting_item(recipe_file)
    env = dict(cli_env(podium_home), EDITOR="sh -c 'kill -INT 0'")
    proc = subprocess.run([PODIUM, "review", "edit", str(item["id"])], env=env, cwd=ROOT,
                          capture_output=True, text=True, timeout=60, start_new_session=True)
    assert proc.returncode == 130, proc.stderr
    assert "cancelled" in proc.stderr and "Traceback" not in proc.stderr


# --- 4. the cursor a killed run hid is shown again ----------------------------------------


def read_all(fd: int) -> bytes:
    out = b""
    while select.select([fd], [], [], 0.5)[0]:
        try:
            chunk = os.read(fd, 4096)
        except OSError:  # the pty closed
            break
        if not chunk:
            break
        out += chunk
    return out


def test_every_command_shows_the_cursor_on_a_terminal_and_only_there(
        podium_home: Path) -> None:
    import pty

    primary, secondary = pty.openpty()
    try:
        proc = subprocess.run([PODIUM, "--version"], env=cli_env(podium_home), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=secondary, timeout=60)
        os.close(secondary)
        assert b"\x1b[?25h" in read_all(primary)
    finally:
        os.close(primary)
    assert b"\x1b" not in proc.stdout
    piped = subprocess.run([PODIUM, "--version"], env=cli_env(podium_home), cwd=ROOT,
                           capture_output=True, timeout=60)
    assert b"\x1b" not in piped.stdout + piped.stderr


def test_sigterm_during_live_progress_shows_the_cursor_and_leaves_the_run(
        podium_home: Path, recipe_file: Any) -> None:
    """A plain `kill` of a run drawing live progress: the cursor comes back, and the run
    is left interrupted for `podium resume`, as before."""
    import pty

    slow = recipe_file('[steps.a]\nkind = "template"\ntemplate = "a"\n'
                       '[steps.b]\nkind = "llm"\nprompt = "Count to 400: 1, 2, 3,"\n'
                       'max_tokens = 400\n')
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen([PODIUM, "run", str(slow)], env=cli_env(podium_home),
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=secondary)
        seen = b""
        deadline = time.monotonic() + 60
        while b"running" not in seen and time.monotonic() < deadline:
            if select.select([primary], [], [], 0.2)[0]:
                seen += os.read(primary, 65536)
        assert b"\x1b[?25l" in seen  # live progress hid it
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        os.close(secondary)
        rest = read_all(primary)
    finally:
        os.close(primary)
    assert proc.returncode == -signal.SIGTERM
    assert b"\x1b[?25h" in rest
    shown = subprocess.run([PODIUM, "show", "--json"], env=cli_env(podium_home), cwd=ROOT,
                           capture_output=True, text=True, timeout=60)
    assert json.loads(shown.stdout)["status"] == "interrupted"


# --- 5. an error names its step once ------------------------------------------------------


def test_a_failed_step_is_named_once(recipe_file: Any) -> None:
    bad = recipe_file('[steps.bug_report]\nkind = "template"\n'
                      'template = "{{ inputs.x.y }}"\n'
                      '[inputs.x]\ntype = "object"\ndefault = {}\n')
    result = podium("run", str(bad))
    assert result.exit_code == 1
    assert "bug_report: bug_report" not in result.stderr
    assert "  bug_report.template: " in result.stderr
    # Messages from core that carry the step id (an ensemble's, a classify's) too.
    said = "bug_report: the model answered 'x', not one of the labels"
    assert named("bug_report", said) == said
    assert named("bug_report", "timed out after 2 s") == "bug_report: timed out after 2 s"
    assert named("a", "ab: x") == "a: ab: x"


# --- 6. review --all previews what was decided --------------------------------------------


def test_review_all_previews_the_edited_value(recipe_file: Any) -> None:
    item = waiting_item(recipe_file)
    edited = podium("review", "edit", str(item["id"]), "--value", "A cat on a mat.", "-q")
    assert edited.exit_code == 0
    listing = podium("review", "--all").stdout
    assert "A cat on a mat." in listing and "A lighthouse" not in listing


# --- 7. "stale now:" lists only steps that had an output ----------------------------------


def test_stale_lists_only_steps_that_had_an_output(recipe_file: Any) -> None:
    assert podium("run", str(recipe_file(BRANCHED)), "-q").exit_code == 0
    result = podium("edit", "last", "kind", "--value", "bug")
    assert result.exit_code == 0
    assert "stale now: dispatch, billing, reply\n" in result.stdout
    assert as_json(podium("edit", "last", "kind", "--value", "billing", "--json"))[
        "stale"] == ["dispatch", "billing", "reply"]
    shown = podium("show").stdout
    bug = shown[shown.index("↷ bug"):shown.index("reply")]
    assert "stale" not in bug
    assert "recompute the stale steps with: podium rerun" in shown


# --- 8. an optional argument looks optional in --help -------------------------------------


def commands(group: click.Group, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        out.append((*path, name))
        if isinstance(command, click.Group):
            out += commands(command, (*path, name))
    return out


def test_show_help_says_run_is_optional_and_defaults_to_last() -> None:
    text = podium("show", "--help").stdout
    assert "Usage: podium show [OPTIONS] [RUN]" in text and "`last`" in text
    assert "default" in text


# `compare RUN STEP` needs both but with --pairs, as its help's first lines say.
@pytest.mark.parametrize("path", [p for p in commands(cli) if p != ("compare",)])
def test_every_optional_argument_is_bracketed_in_help(path: tuple[str, ...]) -> None:
    command: Any = cli
    for name in path:
        command = command.commands[name]
    usage = podium(*path, "--help").stdout.splitlines()[0]
    for param in command.params:
        if isinstance(param, click.Argument):
            shown = param.make_metavar(click.Context(command))
            assert shown in usage
            assert shown.startswith("[") == (not param.required), (path, shown)


# --- 9. a run's time is working time ------------------------------------------------------


def test_time_waiting_for_a_person_is_not_working_time(recipe_file: Any) -> None:
    item = waiting_item(recipe_file)
    time.sleep(1.2)
    assert podium("review", "approve", str(item["id"]), "-q").exit_code == 0
    [row] = as_json(podium("runs", "--json"))
    assert row["duration_s"] < 0.5 and row["waited_s"] >= 1.2
    assert as_json(podium("show", "--json"))["duration_s"] == row["duration_s"]
    header = podium("show").stdout.splitlines()[1]
    assert "waiting for a person" in header
    listed = podium("runs").stdout.splitlines()[1]
    assert " 0.0s " in listed or " 0.1s " in listed


def fake(attempts: list[tuple[str, float, float]],
         reviews: list[tuple[float, float | None]]) -> Any:
    """A store with these attempts (step, start, end; a step named gate is a review
    gate) and review items (asked, decided)."""

    class Attempts:
        def rows_where(self, where: str, args: list[Any], select: str) -> list[Any]:
            return [{"step_id": s, "status": "succeeded", "started_at": a, "finished_at": b}
                    for s, a, b in attempts]

    class Store:
        db = {"attempts": Attempts()}

        def get_steps(self, run_id: str) -> list[Any]:
            return [SimpleNamespace(step_id=s, kind="review" if s == "gate" else "llm")
                    for s, _, _ in attempts]

        def reviews(self, **kwargs: Any) -> list[Any]:
            return [SimpleNamespace(created_at=a, decided_at=b) for a, b in reviews]

    return Store()


def test_working_time_counts_other_branches_that_worked_while_a_gate_waited() -> None:
    run = SimpleNamespace(id="r", started_at=0.0, finished_at=100.0)
    # A gate asks at 1; a parallel step works 1..11; the decision comes at 90; the
    # gate goes on at 95 (resumed later by hand) and the last step runs 95..100.
    store = fake([("draft", 0.0, 1.0), ("gate", 1.0, 1.0), ("side", 1.0, 11.0),
                  ("gate", 95.0, 95.0), ("final", 95.0, 100.0)], [(1.0, 90.0)])
    working, waited = timing(store, run)
    assert waited == pytest.approx(84.0) and working == pytest.approx(16.0)
    # Still waiting: the run paused at 11, and has worked all that time.
    paused = SimpleNamespace(id="r", started_at=0.0, finished_at=11.0)
    store = fake([("draft", 0.0, 1.0), ("side", 1.0, 11.0)], [(1.0, None)])
    assert timing(store, paused) == (pytest.approx(11.0), pytest.approx(0.0))
    assert timing(store, SimpleNamespace(id="r", started_at=0.0, finished_at=None)) == \
        (None, 0.0)


def test_working_time_leaves_out_every_round_of_a_rejected_draft() -> None:
    """Rejected, the draft is made again: its step's own span then covers the wait
    between the rounds, its attempts do not."""
    run = SimpleNamespace(id="r", started_at=0.0, finished_at=40.0)
    store = fake([("draft", 0.0, 5.0), ("gate", 5.0, 5.0), ("draft", 20.0, 25.0),
                  ("gate", 20.0, 25.0), ("gate", 39.0, 39.0), ("send", 39.0, 40.0)],
                 [(5.0, 19.0), (25.0, 38.0)])
    assert timing(store, run) == (pytest.approx(11.0), pytest.approx(29.0))


# --- 10. recipe check --json has the README's error shape ---------------------------------


def test_recipe_check_json_has_the_documented_error_shape(recipe_file: Any) -> None:
    broken = recipe_file('[steps.a]\nkind = "llm"\npromt = "hi"\n')
    checked = podium("recipe", "check", str(broken), "triage", "--json")
    assert checked.exit_code == 2
    report = as_json(checked)
    assert report["status"] == "error"
    assert report["error"] == f"{broken}:3: steps.a.promt: unknown field 'promt'"
    assert report["hint"].startswith("did you mean 'prompt'?")
    [problem] = report["errors"]
    assert problem == {"message": report["error"], "hint": report["hint"],
                       "file": str(broken), "line": 3, "field": "steps.a.promt"}
    assert [f["valid"] for f in report["files"]] == [False, True]
    # The same keys as any other command's --json error (here `run` on the same file).
    ran = as_json(podium("run", str(broken), "--json"))
    assert {k: ran[k] for k in ("status", "error", "hint")} == \
        {k: report[k] for k in ("status", "error", "hint")}
    assert [{k: e[k] for k in ("message", "hint")} for e in ran["errors"]] == \
        [{k: e[k] for k in ("message", "hint")} for e in report["errors"]]
    fine = as_json(podium("recipe", "check", "triage", "--json"))
    assert fine == {"status": "valid", "files": [{"file": "triage", "valid": True,
                                                  "steps": 6}]}


# --- more of the same kind ----------------------------------------------------------------


def test_usage_errors_read_like_every_other_error_and_are_json_when_asked() -> None:
    missing = podium("run")
    assert missing.exit_code == 2
    assert "error: Missing argument 'RECIPE'." in missing.stderr
    assert "hint: see podium run --help" in missing.stderr
    bad = podium("run", "triage", "-i", "oops", "--json")
    assert bad.exit_code == 2
    out = as_json(bad)
    assert out["status"] == "error" and "expected NAME=VALUE" in out["error"]
    assert out["hint"] == "see podium run --help"
    typo = podium("shwo")
    assert typo.exit_code == 2 and "Did you mean 'show'?" in typo.stderr


def test_numbers_no_store_can_hold_are_usage_errors_not_tracebacks(recipe_file: Any) -> None:
    item = waiting_item(recipe_file)
    for args in (["review", "show", "99999999999999999999"],
                 ["review", "approve", "-1" + "0" * 20],
                 ["review", "approve", str(item["id"]), "--budget", "nan"],
                 ["review", "approve", str(item["id"]), "--budget", "inf"]):
        result = CliRunner().invoke(cli, args, prog_name="podium")
        assert result.exit_code == 2, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        assert "error: " in result.stderr, args
    assert as_json(podium("review", "--json"))[0]["status"] == "pending"


def test_json_answers_carry_a_status(recipe_file: Any) -> None:
    assert podium("run", str(recipe_file(BRANCHED)), "-q").exit_code == 0
    same = as_json(podium("edit", "last", "kind", "--value", "billing", "--json"))
    assert same["status"] == "unchanged" and same["version"] is None
    nothing = podium("rerun", "last", "--json")
    assert as_json(nothing) == {"run_id": same["run_id"], "status": "up_to_date",
                                "outputs": {"reply": "refunds: billing"}, "rerun": None}
    note = podium("rerun", "last")
    assert note.stdout == "" and "nothing in run" in note.stderr


def test_a_recipe_name_the_file_system_refuses_is_a_recipe_error() -> None:
    name = "a" * 5000  # ENAMETOOLONG from the file system
    for args in (["run", name], ["recipe", "check", name]):
        result = CliRunner().invoke(cli, args, prog_name="podium")
        assert result.exit_code == 2 and not isinstance(result.exception, OSError), args
        assert "not a recipe file or name: File name too long" in result.stderr
    report = as_json(podium("recipe", "check", name, "--json"))
    assert report["status"] == "error" and report["files"][0]["valid"] is False
