"""`podium batch`: a recipe over a dataset, each row a stored run. Bad data gets a
clear message; a failing row does not stop the others; a row waiting for review
waits while the others finish; a batch killed with SIGKILL resumes without running
a finished row again (asserted from the attempts stored)."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from podium.core.batch.data import read_dataset
from podium.core.errors import InputError
from podium.core.recipe.load import load
from podium.tui.cli import cli
from tests.conftest import PODIUM, ROOT, cli_env

GREET = """
[inputs.name]
type = "string"
[inputs.n]
type = "integer"
default = 1

[steps.greet]
kind = "template"
template = "Hello {{ inputs.name }} x{{ inputs.n }}"
"""


def podium(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False, prog_name="podium")


def jsonl(path: Path, rows: list[Any]) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n"
                            for r in rows))
    return path


def test_jsonl_rows_run_and_a_malformed_line_is_reported_by_number(
        tmp_path: Path, recipe_file: Any) -> None:
    recipe = recipe_file(GREET)
    data = jsonl(tmp_path / "people.jsonl",
                 [{"name": "Ada", "n": 2}, "{not json", {"name": "Bo", "extra": 1},
                  [1, 2], {"n": 3}])
    result = podium("batch", str(recipe), str(data), "--json")
    assert result.exit_code == 1, result.output
    assert "line 2: not valid JSON" in result.stderr
    assert "line 4: a JSON list, not an object" in result.stderr
    summary = json.loads(result.stdout)
    assert summary["counts"]["succeeded"] == 2
    assert summary["counts"]["skipped"] == 2
    assert summary["counts"]["failed"] == 1  # line 5 lacks the required `name`
    rows = json.loads(podium("batch", "status", summary["batch_id"], "--json").stdout)
    by_key = {r["key"]: r for r in rows["rows_detail"]}
    assert by_key["line 5"]["status"] == "failed"
    assert "missing input 'name'" in by_key["line 5"]["error"]
    exported = [json.loads(line) for line in
                podium("batch", "export", summary["batch_id"]).stdout.splitlines()]
    assert [r["outputs"] for r in exported if r["status"] == "succeeded"] == [
        {"greet": "Hello Ada x2"}, {"greet": "Hello Bo x1"}]
    assert exported[1]["error"].startswith("line 2: not valid JSON")
    again = json.loads(podium("batch", "resume", summary["batch_id"], "--json").stdout)
    assert again["ran"] == 0  # nothing left: done, failed and skipped rows stay as they are
    again = json.loads(podium("batch", "resume", summary["batch_id"], "--retry-failed",
                              "--json").stdout)
    assert again["ran"] == 1 and again["counts"] == summary["counts"]  # tried, fails again


def test_csv_with_a_mapped_column_and_csv_export(tmp_path: Path, recipe_file: Any) -> None:
    recipe = recipe_file(GREET)
    data = tmp_path / "people.csv"
    data.write_text("who,n\nAda,2\n\"Bo, Jr.\",\n")
    result = podium("batch", "run", str(recipe), str(data), "--map", "who=name", "-q")
    assert result.exit_code == 0, result.output
    out = podium("batch", "export", "last", "--format", "csv").stdout.splitlines()
    assert out[0] == "index,key,line,status,run_id,error,input.name,input.n,output.greet"
    assert out[1].endswith(",Ada,2,Hello Ada x2")
    assert out[2].endswith('"Bo, Jr.",,"Hello Bo, Jr. x1"')  # empty cell: the default


def test_bad_data_gets_a_clear_message_and_stores_nothing(tmp_path: Path,
                                                          recipe_file: Any) -> None:
    recipe = recipe_file(GREET)
    loaded = load(recipe)
    data = tmp_path / "people.csv"
    data.write_text("person,n\nAda,2\n")
    with pytest.raises(InputError) as e:
        read_dataset(data, loaded)
    assert "no column 'name' for the required input 'name'" in e.value.message
    assert "the header is: person, n" in e.value.message
    assert "--map COLUMN=name" in (e.value.hint or "")
    optional = load(recipe_file(GREET.replace('type = "string"', 'type = "string"\n'
                                               'default = "you"')))
    other = tmp_path / "other.csv"
    other.write_text("person,age\nAda,2\n")
    with pytest.raises(InputError) as e:  # every input has a default: still not silent
        read_dataset(other, optional)
    assert "no column is an input" in e.value.message
    assert "the header is: person, age" in e.value.message
    keys = jsonl(tmp_path / "keys.jsonl", [{"person": "Ada"}])
    with pytest.raises(InputError) as e:
        read_dataset(keys, optional)
    assert "no key of its objects is an input" in e.value.message
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    for path, said in ((tmp_path / "nope.jsonl", "no such file or folder"),
                       (empty, "has no rows"), (data, "no column 'name'")):
        result = podium("batch", str(recipe), str(path))
        assert result.exit_code == 2, result.output
        assert said in result.stderr and "Traceback" not in result.stderr
    assert "no batches yet" in podium("batch", "list").stdout
    result = podium("batch", "export", "last", "--format", "parquet", "-o",
                    str(tmp_path / "x.parquet"))
    assert "no batches yet" in result.stderr or "no batch" in result.stderr


def test_parquet_without_pyarrow_says_how_to_install(tmp_path: Path, recipe_file: Any,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    recipe = recipe_file(GREET)
    data = jsonl(tmp_path / "d.jsonl", [{"name": "Ada"}])
    assert podium("batch", str(recipe), str(data), "-q").exit_code == 0
    import sys

    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if not installed
    result = podium("batch", "export", "last", "--format", "parquet", "-o",
                    str(tmp_path / "x.parquet"))
    assert result.exit_code == 2
    assert "pyarrow" in result.stderr and "pip install pyarrow" in result.stderr


def test_a_folder_fills_the_file_input_and_a_failing_row_does_not_stop_the_rest(
        tmp_path: Path, recipe_file: Any) -> None:
    recipe = recipe_file("""
[inputs.doc]
type = "file"

[steps.size]
kind = "template"
template = "{{ inputs.doc.name }}: {{ 100 // (inputs.doc.text | length) }}"
""")
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("four")
    (folder / "b.txt").write_text("")  # 100 // 0: this row fails
    (folder / "c.md").write_text("# ten chars")
    result = podium("batch", str(recipe), str(folder), "--json")
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["counts"]["succeeded"] == 2 and summary["counts"]["failed"] == 1
    rows = [json.loads(x) for x in podium("batch", "export", "last").stdout.splitlines()]
    assert [(r["key"], r["status"]) for r in rows] == [
        ("a.txt", "succeeded"), ("b.txt", "failed"), ("c.md", "succeeded")]
    assert rows[0]["outputs"] == {"size": "a.txt: 25"}
    assert "division" in rows[1]["error"] or "size" in rows[1]["error"]


REVIEWED = """
[inputs.name]
type = "string"

[steps.draft]
kind = "template"
template = "Dear {{ inputs.name }}"

[steps.check]
kind = "review"
of = "draft"
when = "inputs.name == 'Cy'"
on_reject = "fail"

[steps.final]
kind = "template"
template = "{{ steps.check }}!"
"""


def test_a_row_waiting_for_review_waits_while_the_others_finish(
        tmp_path: Path, recipe_file: Any) -> None:
    recipe = recipe_file(REVIEWED)
    data = jsonl(tmp_path / "d.jsonl", [{"name": n} for n in ("Ada", "Cy", "Bo", "Cy")])
    result = podium("batch", str(recipe), str(data), "--json")
    assert result.exit_code == 3, result.output
    summary = json.loads(result.stdout)
    assert summary["counts"]["succeeded"] == 2 and summary["counts"]["waiting"] == 2
    status = podium("batch", "status").stdout
    assert "waiting" in status and "podium review --run" in status
    queue = json.loads(podium("review", "--json").stdout)
    assert len(queue) == 2
    # One approved and carried on at once; one approved without carrying on.
    assert podium("review", "approve", str(queue[0]["id"]), "-q").exit_code == 0
    assert podium("review", "approve", str(queue[1]["id"]), "--no-resume").exit_code == 0
    tally = json.loads(podium("batch", "status", "--json").stdout)["counts"]
    assert tally["succeeded"] == 3 and tally["waiting"] == 1
    resumed = podium("batch", "resume", summary["batch_id"], "--json")
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["ran"] == 1  # only the decided row, nothing else
    rows = [json.loads(x) for x in podium("batch", "export", "last").stdout.splitlines()]
    assert [r["outputs"]["final"] for r in rows] == ["Dear Ada!", "Dear Cy!", "Dear Bo!",
                                                     "Dear Cy!"]


# --- killed mid-way --------------------------------------------------------------------------

SLOW = """
[inputs.i]
type = "integer"

[steps.a]
kind = "template"
template = "{% for k in range(12000) %}{% endfor %}{{ inputs.i }}"

[steps.b]
kind = "template"
template = "{% for k in range(12000) %}{% endfor %}{{ steps.a }}-b"
"""


def batch_db(db: Path, sql: str, args: tuple[Any, ...] = ()) -> list[Any]:
    conn = sqlite3.connect(db, timeout=30)
    try:
        return conn.execute(sql, args).fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        conn.close()


def test_sigkill_mid_batch_then_resume_runs_every_row_once(podium_home: Path, tmp_path: Path,
                                                          recipe_file: Any) -> None:
    recipe = recipe_file(SLOW)
    data = jsonl(tmp_path / "rows.jsonl", [{"i": i} for i in range(300)])
    db = podium_home / "podium.db"
    proc = subprocess.Popen([PODIUM, "batch", "run", str(recipe), str(data), "-c", "4", "-q"],
                            env=cli_env(podium_home), cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    done_rows = 0
    while time.monotonic() < deadline and proc.poll() is None:
        done_rows = batch_db(db, "SELECT COUNT(*) FROM batch_rows b JOIN runs r ON "
                             "r.id = b.run_id WHERE r.status = 'succeeded'")[0:1]
        done_rows = done_rows[0][0] if done_rows else 0
        if done_rows >= 60:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the batch ended before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    # What was finished when it died, and how often each of its steps was tried.
    before = dict(batch_db(db, "SELECT r.id, (SELECT COUNT(*) FROM attempts a WHERE "
                           "a.run_id = r.id) FROM batch_rows b JOIN runs r ON r.id = b.run_id "
                           "WHERE r.status = 'succeeded'"))
    assert 60 <= len(before) < 300
    assert set(before.values()) == {2}
    status = subprocess.run([PODIUM, "batch", "status", "--json"], env=cli_env(podium_home),
                            cwd=ROOT, capture_output=True, text=True)
    shown = json.loads(status.stdout)
    assert shown["status"] == "unfinished" and shown["counts"]["pending"] > 0
    resumed = subprocess.run([PODIUM, "batch", "resume", shown["batch_id"], "--json"],
                             env=cli_env(podium_home), cwd=ROOT, capture_output=True,
                             text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["counts"]["succeeded"] == 300
    rows = batch_db(db, "SELECT b.idx, b.run_id, r.status, r.outputs FROM batch_rows b "
                    "JOIN runs r ON r.id = b.run_id ORDER BY b.idx")
    assert [r[0] for r in rows] == list(range(300))  # every row, each with one run
    assert {r[2] for r in rows} == {"succeeded"}
    assert [json.loads(r[3])["b"] for r in rows] == [f"{i}-b" for i in range(300)]
    assert batch_db(db, "SELECT COUNT(*) FROM runs")[0][0] == 300  # no stray second runs
    after = dict(batch_db(db, "SELECT run_id, COUNT(*) FROM attempts GROUP BY run_id"))
    assert {rid: after[rid] for rid in before} == before  # nothing finished ran again
    # A row in flight at the kill retried only its unfinished step: at most one more try.
    assert max(after.values()) <= 3


def test_batch_tables_and_a_run_carried_between_databases_lands_once(
        tmp_path: Path, recipe_file: Any) -> None:
    """What a Ray worker does with its scratch store, without Ray: the run made in one
    database lands whole in another, once, however often it is sent."""
    import asyncio

    from podium.core.batch.executor import LocalExecutor
    from podium.core.batch.runner import create_batch, run_batch
    from podium.core.config import Settings
    from podium.core.store import Store
    from podium.tui.factory import make_engine

    recipe = load(recipe_file(REVIEWED + """
[steps.each]
kind = "map"
over = "[1, 2, 3]"
step = { kind = "template", template = "{{ inputs.name }}{{ item }}" }
"""))
    data = jsonl(tmp_path / "d.jsonl", [{"name": "Ada"}, {"name": "Cy"}])
    dataset = read_dataset(data, recipe)
    stores = [Store.open(tmp_path / f"{n}.db") for n in ("worker", "driver")]
    columns = stores[1].db.table("batch_rows").columns_dict
    assert {"batch_id", "idx", "key", "line", "inputs", "status", "run_id", "error"} <= \
        set(columns)
    batches = [create_batch(s, recipe, dataset, executor="local", concurrency=2, mapping={})
               for s in stores]
    engine = make_engine(stores[0], Settings())
    local = LocalExecutor(engine)
    asyncio.run(run_batch(stores[0], batches[0], recipe, local, local, lambda o: None,
                          concurrency=2))
    made = stores[0].batch_rows(batches[0])
    for row in made:
        payload = stores[0].export_run(row.run_id or "")
        assert stores[1].land_run(batches[1], row.index, payload)
        assert not stores[1].land_run(batches[1], row.index, payload)  # once only
    landed = stores[1].batch_rows(batches[1], outputs=True)
    assert [(r.status, r.run_id) for r in landed] == [(r.status, r.run_id) for r in made]
    assert landed[0].outputs == {"each": ["Ada1", "Ada2", "Ada3"], "final": "Dear Ada!"}
    for a, b in zip(made, landed, strict=True):
        assert [(s.step_id, s.status, s.output, s.attempts) for s in stores[0].get_steps(
            a.run_id or "")] == [(s.step_id, s.status, s.output, s.attempts)
                                 for s in stores[1].get_steps(b.run_id or "")]
    # A map's items come along, under the driver's numbering of their set.
    items = "SELECT s.run_id, i.idx, i.output FROM items i JOIN item_sets s ON s.id = " \
        "i.set_id ORDER BY s.run_id, i.idx"
    made_items = stores[0].conn.execute(items).fetchall()
    assert len(made_items) == 6 and stores[1].conn.execute(items).fetchall() == made_items
    # The waiting row's review came along: it can be decided in the driver's database.
    assert [r.step_id for r in stores[1].reviews(run_id=landed[1].run_id)] == ["check"]


def test_progress_is_a_bar_with_rate_and_eta_on_a_terminal_and_lines_in_a_pipe() -> None:
    import io

    from podium.core.batch.executor import RowOutcome
    from podium.tui.batch_progress import BatchProgress

    outcomes = [RowOutcome(0, "line 1", "succeeded", "r1", seconds=0.1),
                RowOutcome(1, "line 2", "failed", "r2", "boom", 0.2)]
    for live in (True, False):
        stream = io.StringIO()
        with BatchProgress(2, stream=stream, live=live) as progress:
            for outcome in outcomes:
                progress(outcome)
        shown = stream.getvalue()
        assert "boom" in shown
        if live:
            assert "2/2" in shown and "/s" in shown and "eta" in shown
        else:
            assert shown.splitlines()[0].split()[:5] == ["✓", "row", "0", "line", "1"]
            assert "[2/2]" in shown.splitlines()[1]
