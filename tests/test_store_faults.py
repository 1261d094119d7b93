"""The store on a hostile filesystem: a read-only database file or folder, a full disk,
a failing disk, a lock held too long, a damaged file or one that is not a database.
Each is an `error:` line naming the file and a `hint:`, exit code 2, never a
traceback; nothing already stored is lost, and a run cut short resumes.

Read-only files are tested for real, through the `podium` command in a subprocess
without the privilege to ignore file modes (root drops CAP_DAC_OVERRIDE, as an
ordinary user has none). A full disk is SQLite's own SQLITE_FULL, from `PRAGMA
max_page_count`, and a failing write the kernel's, from a file size limit.
"""

from __future__ import annotations

import ctypes
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.core.errors import StoreError
from podium.core.recipe import load as recipe
from podium.core.store import Finished, Store
from podium.core.store import faults as store_faults
from podium.core.store.migrations import MIGRATIONS
from tests.conftest import PODIUM, ROOT, cli_env

TINY = 'name = "tiny"\n\n[steps.a]\nkind = "template"\ntemplate = "hi"\n'
STEPS = 30
# Thirty steps, each with a 3 kB output of its own: the database grows at every one.
FILLER = 'name = "filler"\n\n[inputs.seed]\ndefault = "a"\n' + "".join(
    f'\n[steps.s{i}]\nkind = "template"\ntemplate = "{{{{ inputs.seed }}}}-{i}-{"x" * 3000}"\n'
    for i in range(STEPS))

# Runs `podium ARGS...` with the database capped at its size when opened plus
# argv[1] pages: SQLite answers SQLITE_FULL beyond, as on a full disk.
CAPPED = '''
import sqlite3
import sys
extra = int(sys.argv[1])
real = sqlite3.connect
def connect(*args, **kwargs):
    conn = real(*args, **kwargs)
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages + extra}")
    return conn
sqlite3.connect = connect
from podium.tui.cli import main
sys.argv = ["podium", *sys.argv[2:]]
main()
'''

PR_CAPBSET_DROP = 24
CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER = 1, 2, 3


def _drop_file_privileges() -> None:
    """preexec_fn: drop root's power to ignore file modes (from the bounding set, so the
    program exec'd next never gets it); an ordinary user has none to drop."""
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER):
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


Run = Callable[..., subprocess.CompletedProcess[str]]


def run_podium(home: Path, *args: str, preexec: Callable[[], None] | None = None,
               env: dict[str, str] | None = None,
               capped: int | None = None) -> subprocess.CompletedProcess[str]:
    """`podium ARGS` in a subprocess on `home`; `capped`: with the database capped."""
    cmd = [PODIUM, *args] if capped is None else \
        [sys.executable, "-c", CAPPED, str(capped), *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env={**cli_env(home), **(env or {})}, cwd=ROOT,
                          preexec_fn=preexec)


@pytest.fixture
def as_user(tmp_path: Path) -> Run:
    """`podium` as a user that file modes bind (skips if there is no way to be one)."""
    if sys.platform != "linux":
        pytest.skip("dropping root's file privileges is Linux-only")
    preexec = _drop_file_privileges if os.geteuid() == 0 else None
    probe = tmp_path / "probe"
    probe.write_text("")
    probe.chmod(0o444)
    try:
        child = subprocess.run([sys.executable, "-c", f"open({str(probe)!r}, 'a')"],
                               capture_output=True, preexec_fn=preexec)
    except subprocess.SubprocessError as e:
        pytest.skip(f"cannot drop root's file privileges here: {e}")
    if child.returncode == 0:
        pytest.skip("this process can write a read-only file even without privileges")

    def run(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
        return run_podium(home, *args, preexec=preexec)

    return run


@pytest.fixture
def tiny(tmp_path: Path) -> str:
    """A one-step template recipe (no model) as a file."""
    path = tmp_path / "tiny.toml"
    path.write_text(TINY)
    return str(path)


@pytest.fixture
def filler(tmp_path: Path) -> str:
    """A thirty-step recipe whose every step adds 3 kB to the database."""
    path = tmp_path / "filler.toml"
    path.write_text(FILLER)
    return str(path)


@pytest.fixture
def restore_modes(podium_home: Path) -> Iterator[None]:
    """Give the home folder and its files their modes back, so tmp_path can be removed."""
    yield
    podium_home.chmod(0o755)
    for f in podium_home.iterdir():
        f.chmod(0o644)


def clean_failure(proc: subprocess.CompletedProcess[str], *said: str) -> None:
    """Exit code 2, an `error:` and a `hint:` line saying each of `said`, no traceback."""
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    assert "error: " in proc.stderr and "hint: " in proc.stderr, proc.stderr
    for text in said:
        assert text in proc.stderr, (text, proc.stderr)


def run_ids(home: Path) -> list[str]:
    """Every run in `home`'s database, newest first (read with plain sqlite3)."""
    conn = sqlite3.connect(home / "podium.db")
    try:
        return [r[0] for r in conn.execute("SELECT id FROM runs ORDER BY created_at DESC")]
    finally:
        conn.close()


def show(home: Path, run_id: str) -> dict[str, Any]:
    proc = run_podium(home, "show", run_id, "--json", "--full")
    assert proc.returncode == 0, proc.stderr
    return dict(json.loads(proc.stdout))


def attempts(home: Path, run_id: str) -> dict[str, int]:
    conn = sqlite3.connect(home / "podium.db")
    try:
        return dict(conn.execute("SELECT step_id, COUNT(*) FROM attempts WHERE run_id = ? "
                                 "GROUP BY step_id", (run_id,)).fetchall())
    finally:
        conn.close()


# --- read-only files and folders (item 6) ------------------------------------------------


def test_read_only_database_file(podium_home: Path, as_user: Run, tiny: str,
                                 restore_modes: None) -> None:
    """`chmod 444 podium.db`: `run` says the file is read-only and how to fix it, with
    exit code 2; `runs` still lists what is stored and leaves no -wal or -shm behind;
    once the mode is restored, `run` works again."""
    assert as_user(podium_home, "run", tiny, "-q").returncode == 0
    db = podium_home / "podium.db"
    db.chmod(0o444)
    clean_failure(as_user(podium_home, "run", "document-pipeline"),
                  f"error: cannot write to the database {db}: the file is read-only",
                  f"hint: make it writable: chmod u+w {db}")
    listed = as_user(podium_home, "runs")
    assert listed.returncode == 0 and "tiny" in listed.stdout, listed.stderr
    assert sorted(f.name for f in podium_home.iterdir()) == ["podium.db"]
    db.chmod(0o644)
    again = as_user(podium_home, "run", tiny, "-q")
    assert again.returncode == 0, again.stderr
    assert len(run_ids(podium_home)) == 2


def test_read_only_folder(podium_home: Path, as_user: Run, tiny: str,
                          restore_modes: None) -> None:
    """`chmod 555` on the database's folder: SQLite cannot make its -wal and -shm there,
    so `run` fails cleanly naming the folder; `runs` still reads; restored, `run` works."""
    assert as_user(podium_home, "run", tiny, "-q").returncode == 0
    podium_home.chmod(0o555)
    clean_failure(as_user(podium_home, "run", "document-pipeline"),
                  f"its folder {podium_home} is not writable",
                  f"chmod u+w {podium_home}")
    listed = as_user(podium_home, "runs")
    assert listed.returncode == 0 and "tiny" in listed.stdout, listed.stderr
    podium_home.chmod(0o755)
    again = as_user(podium_home, "run", tiny, "-q")
    assert again.returncode == 0, again.stderr


def test_read_only_shm_left_behind_is_repaired(podium_home: Path, as_user: Run, tiny: str,
                                               restore_modes: None) -> None:
    """A plain read-only open (an older Podium, the sqlite3 shell) of a `chmod 444`
    database leaves -wal and -shm with mode 0444; once the database is writable again,
    `run` gives them its mode back instead of failing on them for ever."""
    assert as_user(podium_home, "run", tiny, "-q").returncode == 0
    db = podium_home / "podium.db"
    db.chmod(0o444)
    peek = subprocess.run([sys.executable, "-c", "import sqlite3, sys; sqlite3.connect("
                           "sys.argv[1]).execute('SELECT COUNT(*) FROM runs').fetchone()",
                           str(db)], capture_output=True, text=True,
                          preexec_fn=_drop_file_privileges if os.geteuid() == 0 else None)
    assert peek.returncode == 0, peek.stderr
    shm = podium_home / "podium.db-shm"
    assert shm.exists() and shm.stat().st_mode & 0o777 == 0o444
    db.chmod(0o644)
    again = as_user(podium_home, "run", tiny, "-q")
    assert again.returncode == 0, again.stderr
    assert len(run_ids(podium_home)) == 2


def test_new_database_in_a_read_only_folder(podium_home: Path, as_user: Run,
                                            restore_modes: None) -> None:
    """A database to be created in a folder that cannot be written: the folder is named
    as the cause, not "is it a Podium database?"."""
    podium_home.chmod(0o555)
    proc = as_user(podium_home, "runs")
    clean_failure(proc, f"cannot create the database {podium_home / 'podium.db'}: the "
                  f"folder {podium_home} is not writable", f"chmod u+w {podium_home}")
    assert "Podium database" not in proc.stderr


def test_read_only_database_of_an_older_podium(podium_home: Path, as_user: Run, tiny: str,
                                              restore_modes: None) -> None:
    """A read-only database from before user_version was kept is read as it is; one
    that lacks a migration cannot be upgraded, and says so instead of failing later."""
    assert as_user(podium_home, "run", tiny, "-q").returncode == 0
    db = podium_home / "podium.db"
    conn = sqlite3.connect(db)
    conn.execute("PRAGMA user_version = 0")
    conn.commit()
    conn.close()
    db.chmod(0o444)
    listed = as_user(podium_home, "runs")
    assert listed.returncode == 0 and "tiny" in listed.stdout, listed.stderr
    db.chmod(0o644)
    conn = sqlite3.connect(db)
    conn.execute("DELETE FROM _migrations WHERE name = ?", (MIGRATIONS[-1].__name__,))
    conn.commit()
    conn.close()
    db.chmod(0o444)
    clean_failure(as_user(podium_home, "runs"),
                  f"{db} needs an upgrade by this Podium, but the file is read-only",
                  f"chmod u+w {db} (once is enough)")


# --- a full disk, a failing disk (item 7) -------------------------------------------------


def test_disk_full_mid_run_fails_cleanly_and_resumes(podium_home: Path, filler: str) -> None:
    """The disk fills up in the middle of a run: an `error:` line, a hint naming the
    run to resume, exit code 2. Nothing stored before is lost; once there is space,
    `podium resume` finishes the run without running a finished step again."""
    first = run_podium(podium_home, "run", filler, "-q", "-i", "seed=first")
    assert first.returncode == 0, first.stderr
    [earlier] = run_ids(podium_home)
    before = show(podium_home, earlier)

    full = run_podium(podium_home, "run", filler, "-q", "-i", "seed=second", capped=12)
    [cut, _] = run_ids(podium_home)
    clean_failure(full, f"error: cannot write to the database {podium_home / 'podium.db'}: "
                  "the disk is full", f"podium resume {cut}")
    assert show(podium_home, earlier) == before
    kept = show(podium_home, cut)
    done = {s["step_id"]: s["output"] for s in kept["steps"] if s["status"] == "succeeded"}
    assert 0 < len(done) < STEPS  # it got some way, and no further

    resumed = run_podium(podium_home, "resume", cut, "-q")
    assert resumed.returncode == 0, resumed.stderr
    after = show(podium_home, cut)
    assert after["status"] == "succeeded"
    outputs = {s["step_id"]: s["output"] for s in after["steps"]}
    assert outputs == {f"s{i}": f"second-{i}-{'x' * 3000}" for i in range(STEPS)}
    tries = attempts(podium_home, cut)
    assert all(tries[sid] == 1 for sid in done), tries
    assert show(podium_home, earlier) == before


def test_file_size_limit_mid_run_fails_cleanly_and_resumes(podium_home: Path,
                                                           filler: str) -> None:
    """The kernel refuses a write (a file size limit, EFBIG: a disk I/O error to SQLite)
    while a run is going: the real `podium`, no hook in it, fails cleanly and the run
    resumes once the limit is gone."""
    assert run_podium(podium_home, "run", filler, "-q").returncode == 0  # the recipe stored

    def limited() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
        resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))

    proc = run_podium(podium_home, "run", filler, "-q", "-i", "seed=limited", preexec=limited)
    cut = run_ids(podium_home)[0]
    clean_failure(proc, f"cannot write to the database {podium_home / 'podium.db'}: disk "
                  "I/O error", f"podium resume {cut}")
    resumed = run_podium(podium_home, "resume", cut, "-q")
    assert resumed.returncode == 0, resumed.stderr
    assert show(podium_home, cut)["status"] == "succeeded"


def test_a_full_disk_rolls_back_and_the_store_goes_on(tmp_path: Path) -> None:
    """In the store itself: a commit that meets a full disk raises `StoreError` (not the
    "cannot rollback" SQLite says if asked to roll back twice), keeps what was stored,
    leaves no transaction open, and the next commit works once there is room."""
    r = recipe.loads(FILLER, "filler.toml")
    store = Store(tmp_path / "podium.db")
    try:
        run_id = store.create_run(r, {"seed": "a"}, r.plan.order)
        store.finish_step(run_id, "s0", 1, status="succeeded", output="kept", has_output=True)
        pages = store.conn.execute("PRAGMA page_count").fetchone()[0]
        store.conn.execute(f"PRAGMA max_page_count = {pages}")
        big = Finished("s1", 1, "succeeded", output="y" * 50_000, has_output=True)
        with pytest.raises(StoreError) as info:
            store.commit(run_id, finished=[big])
        assert "the disk is full" in info.value.message
        assert f"podium resume {run_id}" in (info.value.hint or "")
        assert not store.conn.in_transaction
        steps = {s.step_id: s for s in store.get_steps(run_id)}
        assert steps["s0"].output == "kept" and steps["s1"].status == "pending"
        store.conn.execute(f"PRAGMA max_page_count = {pages + 1000}")
        store.commit(run_id, finished=[big])
        assert store.get_steps(run_id)[1].output == "y" * 50_000
    finally:
        store.close()


def test_a_full_disk_during_a_migration_changes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Upgrading an old database on a full disk: a `StoreError`, the database as it was
    (the failed migration rolled back, not recorded), and the upgrade done later."""
    import sqlite_utils

    from podium.core.store.migrations import m001_initial

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path, isolation_level=None)
    db = sqlite_utils.Database(conn)
    db.execute("CREATE TABLE _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    m001_initial(db)
    db.execute("INSERT INTO _migrations VALUES ('m001_initial', 0)")
    conn.close()
    real = sqlite3.connect

    def full(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        c = real(*args, **kwargs)
        pages = c.execute("PRAGMA page_count").fetchone()[0]
        c.execute(f"PRAGMA max_page_count = {pages}")
        return c

    with monkeypatch.context() as m:
        m.setattr(sqlite3, "connect", full)
        with pytest.raises(StoreError, match="the disk is full"):
            Store(path)
    conn = sqlite3.connect(path)
    assert [r[0] for r in conn.execute("SELECT name FROM _migrations")] == ["m001_initial"]
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 0
    conn.close()
    Store(path).close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


# --- locks, damaged files, bugs ------------------------------------------------------------


def test_a_lock_held_past_the_busy_timeout(tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """Another connection holds the write lock for longer than the busy timeout: a
    `StoreError` saying the database is busy, and the store works once it is let go."""
    monkeypatch.setattr(store_faults, "BUSY_TIMEOUT_S", 0.2)
    r = recipe.loads(TINY, "tiny.toml")
    store = Store(tmp_path / "podium.db")
    other = sqlite3.connect(store.path, isolation_level=None, check_same_thread=False)
    try:
        other.execute("BEGIN IMMEDIATE")
        with pytest.raises(StoreError) as info:
            store.create_run(r, {}, r.plan.order)
        assert "is busy" in info.value.message and info.value.hint
        assert not store.conn.in_transaction
        threading.Timer(0.05, lambda: other.execute("COMMIT")).start()
        store.create_run(r, {}, r.plan.order)
    finally:
        other.close()
        store.close()


def test_not_a_database_through_the_cli(podium_home: Path, tmp_path: Path) -> None:
    """`--db` pointing at a text file: a clean error, not a traceback."""
    notes = tmp_path / "notes.txt"
    notes.write_text("shopping list\n" * 500)
    proc = run_podium(podium_home, "--db", str(notes), "runs")
    clean_failure(proc, f"{notes} is not a Podium database")
    assert notes.read_text() == "shopping list\n" * 500


def test_a_damaged_page_met_while_reading(podium_home: Path, tiny: str) -> None:
    """The page holding the runs table is overwritten: `podium runs` says the database
    is damaged and how to recover, with no traceback (a read, mapped at the CLI's edge)."""
    assert run_podium(podium_home, "run", tiny, "-q").returncode == 0
    db = podium_home / "podium.db"
    conn = sqlite3.connect(db)
    root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'runs'").fetchone()[0]
    size = conn.execute("PRAGMA page_size").fetchone()[0]
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    with db.open("r+b") as f:
        f.seek(size * (root - 1))
        f.write(b"\x0d" + b"\xff" * (size - 1))
    clean_failure(run_podium(podium_home, "runs"), f"the database {db} is damaged", ".recover")


def test_a_constraint_violation_stays_a_bug(tmp_path: Path) -> None:
    """Only what the environment causes becomes a `StoreError`: a statement that breaks
    a constraint is a bug in Podium and keeps its own exception."""
    store = Store(tmp_path / "podium.db")
    try:
        with pytest.raises(sqlite3.IntegrityError):
            with store._write() as c:
                c.execute("INSERT INTO artifacts (hash, content) VALUES ('h', '1')")
                c.execute("INSERT INTO artifacts (hash, content) VALUES ('h', '2')")
        assert not store.conn.in_transaction
        assert store.conn.execute("SELECT COUNT(*) FROM artifacts").fetchone()[0] == 0
    finally:
        store.close()


def test_a_newer_database_through_the_cli(podium_home: Path, tiny: str) -> None:
    """`podium run` on a database a newer Podium made (user_version 999): refused with
    both schema numbers, exit code 2, and no run written."""
    assert run_podium(podium_home, "run", tiny, "-q").returncode == 0
    conn = sqlite3.connect(podium_home / "podium.db")
    conn.execute("PRAGMA user_version = 999")
    conn.commit()
    conn.close()
    proc = run_podium(podium_home, "run", tiny, "-q")
    clean_failure(proc, f"made by a newer Podium (schema 999); this one knows "
                  f"{len(MIGRATIONS)}", "upgrade Podium")
    assert len(run_ids(podium_home)) == 1
