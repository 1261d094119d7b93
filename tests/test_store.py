"""The store: the schema a blank database gets, idempotent migrations, deduplicated
artifacts, run and step round trips, run lookup, several processes sharing one file,
and runs left `running` by a dead process."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from podium.core.errors import StoreError
from podium.core.recipe import load as recipe
from podium.core.recipe.schema import Recipe
from podium.core.store import Store
from podium.core.store.migrations import MIGRATIONS, migrate

RECIPE = '''
name = "pair"

[inputs.text]
default = "hello"

[steps.first]
kind = "template"
template = "{{ inputs.text }}"

[steps.second]
kind = "template"
template = "{{ steps.first }}!"

[steps.third]
kind = "template"
template = "{{ steps.first }}?"
'''

# Run by child processes: open the store and record a run the way the engine does.
CHILD_SETUP = textwrap.dedent('''
    import sys
    import time
    from pathlib import Path

    def barrier(stage):
        """With a folder in argv[4], wait until both children reach `stage`."""
        if len(sys.argv) < 5:
            return
        folder = Path(sys.argv[4])
        (folder / f"{stage}-{sys.argv[3]}").touch()
        deadline = time.time() + 30
        while len(list(folder.glob(f"{stage}-*"))) < 2 and time.time() < deadline:
            time.sleep(0.001)

    from podium.core.recipe import load as recipe
    from podium.core.store import Store

    r = recipe.loads(sys.argv[2], "pair.toml")
    order = r.plan.order
    store = Store(sys.argv[1])
    barrier("write")
    ''')


@pytest.fixture
def pair() -> Recipe:
    """A three-step recipe to store runs of."""
    return recipe.loads(RECIPE, "pair.toml")


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """A fresh database in tmp_path."""
    s = Store(tmp_path / "podium.db")
    yield s
    s.close()


def new_run(store: Store, r: Recipe, inputs: dict[str, str] | None = None) -> str:
    """Create a run of `r` with its planned steps."""
    return store.create_run(r, inputs or {"text": "hello"}, r.plan.order)


def columns(store: Store, table: str) -> set[str]:
    """The column names of `table`."""
    return {c.name for c in store.db[table].columns}


def user_version(path: Path) -> int:
    """`PRAGMA user_version` of the file at `path`, read by a connection of its own."""
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def count(store: Store, table: str) -> int:
    """Rows in `table`."""
    return int(store.conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])


# --- schema ------------------------------------------------------------------------------


def test_blank_database_schema(store: Store) -> None:
    """A new database has every table with exactly the columns the code relies on."""
    expected = {
        "_migrations": {"name", "applied_at"},
        "recipes": {"hash", "name", "path", "source", "created_at"},
        "runs": {"id", "recipe_name", "recipe_hash", "recipe_path", "status", "inputs",
                 "outputs", "error", "hint", "created_at", "started_at", "finished_at",
                 "pid", "host", "parent_run_id", "input_tokens", "output_tokens", "cost"},
        "steps": {"run_id", "step_id", "kind", "position", "status", "output_hash",
                  "partial_output", "model", "tier", "route", "input_tokens",
                  "output_tokens", "cost", "latency_ms", "started_at", "finished_at",
                  "attempts", "error", "hint", "reason", "cache_key", "stale", "version"},
        "attempts": {"id", "run_id", "step_id", "number", "status", "model", "started_at",
                     "finished_at", "error", "input_tokens", "output_tokens", "latency_ms"},
        "events": {"id", "run_id", "step_id", "ts", "type", "data"},
        "artifacts": {"hash", "content", "size", "created_at"},
        "cache": {"key", "artifact_hash", "model", "created_at"},
        "chats": {"id", "title", "created_at", "updated_at"},
        "messages": {"id", "chat_id", "position", "role", "content", "model", "tier",
                     "route", "input_tokens", "output_tokens", "cost", "latency_ms",
                     "created_at"},
        "comparisons": {"id", "run_id", "step_id", "original_model", "original_tier",
                        "model", "tier", "output_hash", "input_tokens", "output_tokens",
                        "cost", "latency_ms", "created_at", "prompt", "verdict"},
        "reviews": {"id", "run_id", "step_id", "of_step", "item", "kind", "round", "status",
                    "instructions", "original_hash", "decided_hash", "feedback", "action",
                    "amount", "created_at", "decided_at", "decided_by"},
        "step_versions": {"id", "run_id", "step_id", "version", "output_hash", "source",
                          "created_at", "created_by"},
        "calibration_answers": {"id", "fingerprint", "model", "answerer", "prompt", "reply",
                                "right", "signals", "finish_reason", "cost", "seconds",
                                "created_at"},
        "router_fits": {"id", "model", "fingerprint", "created_at", "fit", "examples",
                        "summary"},
        "route_outcomes": {"id", "fingerprint", "model", "prompt", "right", "source",
                           "run_id", "created_at"},
    }
    assert set(expected) <= set(store.db.table_names())
    for table, cols in expected.items():
        assert columns(store, table) == cols, table
    assert store.db.table("steps").pks == ["run_id", "step_id"]
    assert store.db.table("artifacts").pks == ["hash"]
    applied = [r[0] for r in store.conn.execute("SELECT name FROM _migrations ORDER BY rowid")]
    assert applied == [m.__name__ for m in MIGRATIONS]
    assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert user_version(store.path) == len(MIGRATIONS)


def test_migrate_twice_is_a_no_op(store: Store, pair: Recipe) -> None:
    """Running the migrations again (or reopening the file) changes nothing and keeps
    the data."""
    run_id = new_run(store, pair)
    schema = store.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    assert migrate(store.db) == []
    assert migrate(store.db) == []
    assert user_version(store.path) == len(MIGRATIONS)
    again = Store(store.path)
    try:
        assert again.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() \
            == schema
        assert count(again, "_migrations") == len(MIGRATIONS)
        assert again.get_run(run_id).id == run_id
    finally:
        again.close()


def test_open_uses_podium_home() -> None:
    """`Store.open()` without a path puts the database under PODIUM_HOME."""
    s = Store.open()
    try:
        assert s.path == Path(os.environ["PODIUM_HOME"]) / "podium.db"
        assert s.path.exists()
    finally:
        s.close()


def test_not_a_database(tmp_path: Path) -> None:
    """A file that is not SQLite is a StoreError with a hint, not a traceback."""
    bad = tmp_path / "notes.db"
    bad.write_text("this is not a database " * 100)
    with pytest.raises(StoreError) as info:
        Store(bad)
    assert info.value.hint


# --- runs and steps ----------------------------------------------------------------------


def test_run_and_steps_round_trip(store: Store, pair: Recipe) -> None:
    """What `create_run`, `start_step` and `finish_step` write, `get_run` and `get_steps`
    read back: pinned recipe, inputs, plan order, outputs, usage and attempts."""
    run_id = new_run(store, pair, {"text": "héllo"})
    run = store.get_run(run_id)
    assert (run.recipe_name, run.recipe_hash, run.status) == ("pair", pair.hash, "pending")
    assert run.inputs == {"text": "héllo"}
    assert run.pid == os.getpid()
    assert store.recipe_source(pair.hash) == ("pair", "pair.toml", pair.source)
    steps = store.get_steps(run_id)
    assert [s.step_id for s in steps] == pair.plan.order
    assert [s.position for s in steps] == [0, 1, 2]
    assert {s.status for s in steps} == {"pending"}
    assert not any(s.has_output for s in steps)

    store.claim_run(run_id)
    store.start_step(run_id, "first", 1)
    store.end_attempt(run_id, "first", 1, "failed", error="boom")
    store.start_step(run_id, "first", 2)
    assert store.get_steps(run_id)[0].status == "running"
    store.finish_step(run_id, "first", 2, status="succeeded", output={"text": "héllo", "n": [1]},
                      has_output=True, model="m", tier="local", route={"score": 0.1},
                      input_tokens=5, output_tokens=7, cost=0.5, latency_ms=12.0,
                      cache_key="k1")
    store.finish_run(run_id, "succeeded", {"result": "héllo"})

    first = store.get_steps(run_id)[0]
    assert first.status == "succeeded"
    assert first.has_output and first.output == {"text": "héllo", "n": [1]}
    assert (first.model, first.tier, first.route) == ("m", "local", {"score": 0.1})
    assert (first.input_tokens, first.output_tokens, first.cost) == (5, 7, 0.5)
    assert first.attempts == 2
    assert store.attempt_count(run_id, "first") == 2
    statuses = [r[0] for r in store.conn.execute(
        "SELECT status FROM attempts WHERE run_id = ? ORDER BY number", (run_id,))]
    assert statuses == ["failed", "succeeded"]
    assert store.cached("k1") == {"text": "héllo", "n": [1]}
    with pytest.raises(KeyError):
        store.cached("k2")

    run = store.get_run(run_id)
    assert run.status == "succeeded"
    assert run.outputs == {"result": "héllo"}
    assert (run.input_tokens, run.output_tokens, run.cost) == (5, 7, 0.5)
    assert run.finished_at is not None and run.started_at is not None


def test_step_without_output(store: Store, pair: Recipe) -> None:
    """A failed step stores its error and no output, and no artifact is written."""
    run_id = new_run(store, pair)
    store.start_step(run_id, "first", 1)
    store.finish_step(run_id, "first", 1, status="failed", error="bad", hint="fix it")
    first = store.get_steps(run_id)[0]
    assert (first.status, first.error, first.hint) == ("failed", "bad", "fix it")
    assert not first.has_output and first.output is None
    assert count(store, "artifacts") == 0


def test_null_output_is_an_output(store: Store, pair: Recipe) -> None:
    """A step whose output is JSON null still has an output (e.g. a failed map item)."""
    run_id = new_run(store, pair)
    store.finish_step(run_id, "first", 0, status="succeeded", output=None, has_output=True)
    first = store.get_steps(run_id)[0]
    assert first.has_output and first.output is None


def test_artifacts_are_deduplicated(store: Store, pair: Recipe) -> None:
    """Equal outputs (two steps, or two runs) share one artifact row; a different output
    adds one."""
    runs = [new_run(store, pair), new_run(store, pair)]
    for run_id in runs:
        store.finish_step(run_id, "first", 0, status="succeeded", output="same text",
                          has_output=True)
        store.finish_step(run_id, "second", 0, status="succeeded", output="same text",
                          has_output=True)
    assert count(store, "artifacts") == 1
    hashes = {r[0] for r in store.conn.execute("SELECT output_hash FROM steps "
                                               "WHERE output_hash IS NOT NULL")}
    assert len(hashes) == 1
    assert store.artifact(hashes.pop()) == "same text"

    store.finish_step(runs[0], "third", 0, status="succeeded", output="other",
                      has_output=True)
    assert count(store, "artifacts") == 2
    assert [s.output for s in store.get_steps(runs[1])][:2] == ["same text", "same text"]


# --- finding runs ------------------------------------------------------------------------


def test_get_run_by_prefix_and_last(store: Store, pair: Recipe) -> None:
    """A run is found by its id, a unique prefix, or `last`; an ambiguous prefix and an
    unknown id are StoreErrors with a hint."""
    with pytest.raises(StoreError) as empty:
        store.get_run("last")
    assert empty.value.hint

    a, b = new_run(store, pair), new_run(store, pair)
    common = os.path.commonprefix([a, b])
    assert common  # both start with the time, so they share at least a first character
    assert store.get_run(a).id == a
    assert store.get_run(a[:len(common) + 1]).id == a
    assert store.get_run(b[:len(common) + 1]).id == b
    assert store.get_run("last").id == b

    with pytest.raises(StoreError) as several:
        store.get_run(common)
    assert "several" in several.value.message and several.value.hint

    with pytest.raises(StoreError) as unknown:
        store.get_run("zzzz-not-a-run")
    assert "zzzz-not-a-run" in unknown.value.message and unknown.value.hint


def test_list_runs_newest_first(store: Store, pair: Recipe) -> None:
    """`list_runs` is newest first, limited, and filters by status."""
    ids = [new_run(store, pair) for _ in range(3)]
    store.finish_run(ids[0], "failed", None, error="x")
    assert [r.id for r in store.list_runs()] == ids[::-1]
    assert [r.id for r in store.list_runs(limit=2)] == ids[:0:-1]
    assert [r.id for r in store.list_runs(status="failed")] == [ids[0]]


def test_get_run_prefix_is_literal(store: Store, pair: Recipe) -> None:
    """A prefix is matched literally: `_`, `%` or an empty string match no run id (run
    ids are base36), rather than acting as SQL LIKE wildcards."""
    new_run(store, pair)
    for prefix in ("_", "____", "%", ""):
        with pytest.raises(StoreError):
            store.get_run(prefix)
            pytest.fail(f"get_run({prefix!r}) found a run")


# --- several processes -------------------------------------------------------------------


def test_two_processes_share_one_database(tmp_path: Path) -> None:
    """Two processes writing 50 runs each to one database at the same time both
    succeed, and every run and step they wrote is there."""
    db = tmp_path / "shared.db"
    Store(db).close()
    script = CHILD_SETUP + textwrap.dedent('''
        tag = sys.argv[3]
        print(time.time())
        for i in range(50):
            run_id = store.create_run(r, {"text": tag}, order)
            store.claim_run(run_id)
            for sid in order:
                store.start_step(run_id, sid, 1)
                store.finish_step(run_id, sid, 1, status="succeeded",
                                  output=f"{tag}-{i}-{sid}", has_output=True)
            store.finish_run(run_id, "succeeded", {"tag": tag})
            print(run_id)
        print(time.time())
        ''')
    ready = tmp_path / "ready"
    ready.mkdir()
    children = [subprocess.Popen([sys.executable, "-c", script, str(db), RECIPE, tag,
                                  str(ready)],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                for tag in ("left", "right")]
    results = [c.communicate(timeout=60) for c in children]
    for child, (_, err) in zip(children, results, strict=True):
        assert child.returncode == 0, err

    lines = [out.split() for out, _ in results]
    # The two writers really overlapped in time.
    starts, ends = [float(x[0]) for x in lines], [float(x[-1]) for x in lines]
    assert max(starts) < min(ends)
    ids = [x[1:-1] for x in lines]
    assert [len(x) for x in ids] == [50, 50]
    assert len(set(ids[0]) | set(ids[1])) == 100

    store = Store(db)
    try:
        assert count(store, "runs") == 100
        assert count(store, "_migrations") == len(MIGRATIONS)
        for tag, run_ids in zip(("left", "right"), ids, strict=True):
            for i, run_id in enumerate(run_ids):
                run = store.get_run(run_id)
                assert (run.status, run.inputs) == ("succeeded", {"text": tag})
                outputs = {s.step_id: s.output for s in store.get_steps(run_id)}
                assert outputs == {sid: f"{tag}-{i}-{sid}" for sid in
                                   ("first", "second", "third")}
        assert count(store, "artifacts") == 300
    finally:
        store.close()


def test_open_waits_for_a_writer_on_a_new_file(tmp_path: Path) -> None:
    """Opening a new database while another connection holds a short write lock on it
    (what a second Podium process meets when two start on a fresh file at once) waits
    for the lock instead of failing at once with 'database is locked'."""
    path = tmp_path / "new.db"
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    other.execute("CREATE TABLE scratch (x)")
    release = threading.Timer(0.3, lambda: other.execute("COMMIT"))
    release.start()
    try:
        store = Store(path)
    finally:
        release.join()
        other.close()
    try:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert "runs" in store.db.table_names()
    finally:
        store.close()


# --- orphaned runs -----------------------------------------------------------------------


def test_run_of_dead_process_is_orphaned(tmp_path: Path, store: Store,
                                         pair: Recipe) -> None:
    """A run marked running by a process that has exited is orphaned and shown as
    interrupted; a running run of a live process and a finished run are not."""
    script = CHILD_SETUP + textwrap.dedent('''
        run_id = store.create_run(r, {"text": "x"}, order)
        store.claim_run(run_id)
        store.start_step(run_id, order[0], 1)
        print(run_id)
        # Exit without finishing the run, as a killed process would.
        ''')
    child = subprocess.run([sys.executable, "-c", script, str(store.path), RECIPE],
                           capture_output=True, text=True, timeout=60)
    assert child.returncode == 0, child.stderr
    dead = store.get_run(child.stdout.strip())
    assert dead.status == "running"
    assert dead.pid is not None and dead.pid != os.getpid()
    assert dead.orphaned
    assert dead.shown_status == "interrupted"

    alive = new_run(store, pair)
    store.claim_run(alive)
    assert not store.get_run(alive).orphaned
    assert store.get_run(alive).shown_status == "running"

    store.finish_run(alive, "succeeded", {})
    assert not store.get_run(alive).orphaned


def test_events_recorded(store: Store, pair: Recipe) -> None:
    """Claiming, finishing steps and finishing a run leave a trace in `events`."""
    run_id = new_run(store, pair)
    store.claim_run(run_id)
    store.finish_step(run_id, "first", 0, status="succeeded", output="x", has_output=True)
    store.finish_run(run_id, "succeeded", {})
    rows = store.conn.execute("SELECT type, step_id, data FROM events WHERE run_id = ? "
                              "ORDER BY id", (run_id,)).fetchall()
    assert [(t, s) for t, s, _ in rows] == [("run_started", None), ("step_finished", "first"),
                                            ("run_finished", None)]
    assert json.loads(rows[-1][2]) == {"status": "succeeded"}


def test_upgrade_from_the_oldest_schema_keeps_runs(tmp_path: Path) -> None:
    """A database made by the first release (only m001) upgrades in place: the later
    tables appear and the runs already stored are still there."""
    import sqlite3

    import sqlite_utils

    from podium.core.store.migrations import MIGRATIONS, m001_initial

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    m001_initial(db)
    db.execute("INSERT INTO _migrations VALUES ('m001_initial', 0)")
    db.execute("INSERT INTO recipes VALUES ('h', 'old', 'old.toml', 'x', 0)")
    db.execute("INSERT INTO runs (id, recipe_name, recipe_hash, recipe_path, status, inputs, "
               "created_at) VALUES ('r1', 'old', 'h', 'old.toml', 'succeeded', '{}', 0)")
    conn.close()
    store = Store(path)
    try:
        assert {"chats", "messages", "comparisons"} <= set(store.db.table_names())
        assert store.get_run("r1").recipe_name == "old"
        applied = [r[0] for r in store.conn.execute("SELECT name FROM _migrations")]
        assert applied == [m.__name__ for m in MIGRATIONS]
        assert user_version(path) == len(MIGRATIONS)
    finally:
        store.close()


def test_each_migration_sets_user_version_in_its_transaction(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """user_version counts the migrations applied, one by one: a database migrated by
    a Podium that knew only three says 3, and this Podium takes it to the end."""
    import sqlite_utils

    from podium.core.store import migrations

    path = tmp_path / "partial.db"
    conn = sqlite3.connect(path, isolation_level=None)
    with monkeypatch.context() as m:
        m.setattr(migrations, "MIGRATIONS", MIGRATIONS[:3])
        assert migrate(sqlite_utils.Database(conn)) == [
            "m001_initial", "m002_chats", "m003_comparisons"]
    conn.close()
    assert user_version(path) == 3
    Store(path).close()
    assert user_version(path) == len(MIGRATIONS)


def test_complete_database_from_before_user_version_gets_it(tmp_path: Path) -> None:
    """A database every migration was applied to by a Podium that did not keep
    user_version (it reads 0) is up to date: opening it sets the number and changes
    nothing else."""
    path = tmp_path / "older.db"
    Store(path).close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    schema = conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall()
    conn.close()
    store = Store(path)
    try:
        assert store.conn.execute("SELECT sql FROM sqlite_master ORDER BY name").fetchall() \
            == schema
        assert count(store, "_migrations") == len(MIGRATIONS)
    finally:
        store.close()
    assert user_version(path) == len(MIGRATIONS)


def test_a_newer_user_version_is_refused_and_nothing_written(tmp_path: Path,
                                                             pair: Recipe) -> None:
    """A database whose user_version is above what this Podium knows (made by a newer
    one) is refused with the two numbers, before anything is written to it."""
    path = tmp_path / "future.db"
    store = Store(path)
    new_run(store, pair)
    store.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    before = path.read_bytes()
    with pytest.raises(StoreError) as info:
        Store(path)
    assert f"made by a newer Podium (schema 999); this one knows {len(MIGRATIONS)}" \
        in info.value.message
    assert str(path) in info.value.message and info.value.hint
    assert path.read_bytes() == before
    assert not path.with_name("future.db-wal").exists()
    assert user_version(path) == 999


def test_a_database_from_a_newer_podium_is_refused(tmp_path: Path) -> None:
    from podium.core.errors import StoreError

    path = tmp_path / "new.db"
    Store(path).close()
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO _migrations VALUES ('m099_future', 0)")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="newer Podium"):
        Store(path)


def test_daily_usage_counts_each_day_and_fills_the_gaps(store: Store, pair: Recipe) -> None:
    import datetime as dt

    run_id = new_run(store, pair)
    store.finish_step(run_id, "first", 1, status="succeeded", output="x", has_output=True,
                      input_tokens=3, output_tokens=4, cost=0.25)
    today = dt.date.today().isoformat()
    usage = store.daily_usage(3)
    assert [day for day, _, _ in usage][-1] == today and len(usage) == 3
    assert usage[-1][1:] == (7, 0.25) and usage[0][1:] == (0, 0.0)


def test_big_inputs_are_stored_once_and_read_back(store: Store, pair: Recipe) -> None:
    """Issue 13, item 9: a big input lives once, as an artifact; the run row stays
    small however often it is updated."""
    text = "ü" * 2_000_000
    run_id = store.create_run(pair, {"text": text}, pair.plan.order)
    for _ in range(3):
        store.claim_run(run_id, force=True)
        store.finish_run(run_id, "failed", None, "x")
    assert store.get_run(run_id).inputs == {"text": text}
    row = store.conn.execute("SELECT length(inputs) FROM runs WHERE id = ?", (run_id,))
    assert row.fetchone()[0] < 200
    stored = store.conn.execute("SELECT SUM(size) FROM artifacts").fetchone()[0]
    assert len(text) <= stored < len(text) * 1.1
    small = store.create_run(pair, {"text": "hi"}, pair.plan.order)
    assert store.get_run(small).inputs == {"text": "hi"}
