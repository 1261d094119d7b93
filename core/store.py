"""The only module that speaks SQL: runs, steps, attempts, events, artifacts, cache.

One SQLite file in WAL mode, shared safely by several processes (busy timeout,
short `BEGIN IMMEDIATE` write transactions). Every state change of a step is one
transaction, committed before anything that depends on it starts. Outputs are
content-addressed artifacts, so storage grows with unique content only.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core import paths
from core.errors import StoreError
from core.migrations import migrate, up_to_date

if TYPE_CHECKING:
    import sqlite_utils

    from core.recipe import Recipe

TERMINAL_RUN = ("succeeded", "failed", "cancelled")
_HOST = socket.gethostname()


@dataclass
class RunRecord:
    """A run as stored."""

    id: str
    recipe_name: str
    recipe_hash: str
    recipe_path: str
    status: str
    inputs: dict[str, Any]
    outputs: dict[str, Any] | None
    error: str | None
    hint: str | None
    created_at: float
    started_at: float | None
    finished_at: float | None
    pid: int | None
    host: str | None
    parent_run_id: str | None
    input_tokens: int
    output_tokens: int
    cost: float

    @property
    def orphaned(self) -> bool:
        """Marked running, but the process that ran it on this host is gone (killed)."""
        if self.status != "running" or self.host != _HOST or not self.pid:
            return False
        return not _pid_alive(self.pid)

    @property
    def shown_status(self) -> str:
        """The status a person should see: a killed run is `interrupted`, not running."""
        return "interrupted" if self.orphaned else self.status


@dataclass
class Finished:
    """A step's final result, ready to commit."""

    step_id: str
    attempt: int
    status: str
    output: Any = None
    has_output: bool = False
    model: str | None = None
    tier: str | None = None
    route: dict[str, Any] | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_ms: float | None = None
    error: str | None = None
    hint: str | None = None
    cache_key: str | None = None
    reason: str | None = None
    stale: str | None = None  # an input changed while it ran: why it is out of date


@dataclass
class StepRecord:
    """A step of a run as stored."""

    run_id: str
    step_id: str
    kind: str
    position: int
    status: str
    output: Any
    has_output: bool
    partial_output: str | None
    model: str | None
    tier: str | None
    route: dict[str, Any] | None
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: float | None
    started_at: float | None
    finished_at: float | None
    attempts: int
    error: str | None
    hint: str | None
    reason: str | None
    cache_key: str | None
    stale: str | None = None
    version: int | None = None


@dataclass
class ReviewRecord:
    """A question put to a person, and the answer once given."""

    id: int
    run_id: str
    step_id: str
    of_step: str
    item: int | None
    kind: str  # review | budget
    round: int
    status: str  # pending | approved | edited | rejected
    instructions: str | None
    original: Any
    decided: Any
    feedback: str | None
    action: str | None
    amount: float | None
    created_at: float
    decided_at: float | None
    decided_by: str | None


# Columns a newer Podium may have added are ignored when reading.
_RUN_FIELDS = frozenset(RunRecord.__dataclass_fields__)
_STEP_FIELDS = frozenset(StepRecord.__dataclass_fields__)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (killed, not yet reaped by its parent) is not alive either.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def _set_wal(conn: sqlite3.Connection, patience: float = 30.0) -> None:
    """Switch to WAL. On a new file another process may hold the write lock, and this
    pragma returns "locked" at once instead of honouring busy_timeout: wait here."""
    deadline = time.monotonic() + patience
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def new_run_id() -> str:
    """Short, sortable by time, unique enough across processes: base36 ms + 4 random."""
    ms = int(time.time() * 1000)
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while ms:
        ms, r = divmod(ms, 36)
        out = digits[r] + out
    return out + "".join(secrets.choice(digits) for _ in range(4))


def dumps(value: Any) -> str:
    """Canonical JSON for outputs and inputs."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


class Store:
    """A Podium database. Open with `Store.open()`; close with `close()`."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder for {self.path}: {e.strerror}",
                             "pick another --db / PODIUM_DB / PODIUM_HOME") from None
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory", "--db takes a file path")
        try:
            conn = sqlite3.connect(str(self.path), isolation_level=None,
                                   check_same_thread=False, timeout=30)
            _set_wal(conn)
            # NORMAL in WAL survives a killed process; FULL also survives power loss.
            conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute("PRAGMA busy_timeout=30000")
            conn.execute("PRAGMA foreign_keys=ON")
            self.conn = conn
            if not up_to_date(conn):
                migrate(self.db)
        except sqlite3.DatabaseError as e:
            raise StoreError(f"cannot open database {self.path}: {e}",
                             "is it a Podium database? Use --db or PODIUM_DB for another "
                             "file") from None

    @property
    def db(self) -> sqlite_utils.Database:
        """The sqlite-utils view of the database (for migrations and schema checks)."""
        import sqlite_utils

        return sqlite_utils.Database(self.conn)

    @classmethod
    def open(cls, path: str | Path | None = None) -> Store:
        """Open (creating if needed) the database at `path` or the default location."""
        sync = os.environ.get("PODIUM_SYNC", "NORMAL").upper()
        if sync not in ("NORMAL", "FULL", "EXTRA"):
            from core.errors import ConfigError

            raise ConfigError(f"PODIUM_SYNC={sync} is not a durability level",
                              "use NORMAL (survives a killed process) or FULL (also power "
                              "loss)")
        return cls(path or paths.db_path(), synchronous=sync)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield self.conn
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    # --- artifacts ------------------------------------------------------------------------

    def artifact(self, digest: str) -> Any:
        """The value stored under `digest`."""
        row = self.conn.execute("SELECT content FROM artifacts WHERE hash = ?",
                                (digest,)).fetchone()
        if row is None:
            raise StoreError(f"missing artifact {digest[:12]}")
        return json.loads(row[0])

    # --- runs -----------------------------------------------------------------------------

    def create_run(self, recipe: Recipe, inputs: dict[str, Any], order: list[str],
                   *, parent_run_id: str | None = None) -> str:
        """Store the pinned recipe, the run and its pending steps; return the run id."""
        run_id = new_run_id()
        now = time.time()
        with self._write() as c:
            c.execute("INSERT OR IGNORE INTO recipes (hash, name, path, source, created_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                      (recipe.hash, recipe.name, recipe.path, recipe.source, now))
            c.execute("INSERT INTO runs (id, recipe_name, recipe_hash, recipe_path, status, "
                      "inputs, created_at, pid, host, parent_run_id, input_tokens, "
                      "output_tokens, cost) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, 0, 0, 0)",
                      (run_id, recipe.name, recipe.hash, recipe.path, dumps(inputs), now,
                       os.getpid(), _HOST, parent_run_id))
            c.executemany("INSERT INTO steps (run_id, step_id, kind, position, status, "
                          "input_tokens, output_tokens, cost, attempts) "
                          "VALUES (?, ?, ?, ?, 'pending', 0, 0, 0, 0)",
                          [(run_id, sid, recipe.steps[sid].kind, i)
                           for i, sid in enumerate(order)])
        return run_id

    def claim_run(self, run_id: str, *, force: bool = False) -> None:
        """Mark a run running in this process (start or resume). Checked and written in
        one transaction: of two processes resuming a run at once, one gets `RunBusy`."""
        from core.errors import RunBusy

        with self._write() as c:
            row = c.execute("SELECT status, pid, host FROM runs WHERE id = ?",
                            (run_id,)).fetchone()
            if row is not None and row[0] == "running" and not force and \
                    row[1] != os.getpid() and (row[2] != _HOST or _pid_alive(row[1] or 0)):
                raise RunBusy(run_id, row[1], row[2] if row[2] != _HOST else None)
            c.execute("UPDATE runs SET status = 'running', pid = ?, host = ?, "
                      "started_at = COALESCE(started_at, ?), finished_at = NULL, error = NULL, "
                      "hint = NULL WHERE id = ?", (os.getpid(), _HOST, time.time(), run_id))
            c.execute("INSERT INTO events (run_id, step_id, ts, type, data) "
                      "VALUES (?, NULL, ?, 'run_started', '{}')", (run_id, time.time()))

    def finish_run(self, run_id: str, status: str, outputs: dict[str, Any] | None,
                   error: str | None = None, hint: str | None = None, *,
                   waiting_on: set[str] | None = None) -> set[str]:
        """Record the end of a run (or its pause) with its outputs and totals. With
        `waiting_on`, first check in the same transaction that those steps still wait
        for a person; if some do not, write nothing and return them."""
        with self._write() as c:
            if waiting_on:
                rows = c.execute("SELECT DISTINCT step_id FROM reviews WHERE run_id = ? AND "
                                 "status = 'pending'", (run_id,)).fetchall()
                decided = waiting_on - {r[0] for r in rows}
                if decided:
                    return decided
            c.execute(
                "UPDATE runs SET status = ?, outputs = ?, error = ?, hint = ?, finished_at = ?, "
                "input_tokens = (SELECT COALESCE(SUM(input_tokens), 0) FROM steps "
                "WHERE run_id = ?), output_tokens = (SELECT COALESCE(SUM(output_tokens), 0) "
                "FROM steps WHERE run_id = ?), cost = (SELECT COALESCE(SUM(cost), 0) FROM steps "
                "WHERE run_id = ?) WHERE id = ?",
                (status, None if outputs is None else dumps(outputs), error, hint, time.time(),
                 run_id, run_id, run_id, run_id))
            c.execute("INSERT INTO events (run_id, step_id, ts, type, data) "
                      "VALUES (?, NULL, ?, 'run_finished', ?)",
                      (run_id, time.time(), dumps({"status": status})))
        return set()

    def get_run(self, run_id: str) -> RunRecord:
        """A run by id, unique prefix, or `last`. Raises `StoreError` when unknown."""
        if run_id == "last":
            row = self.conn.execute("SELECT * FROM runs ORDER BY created_at DESC, id DESC "
                                    "LIMIT 1").fetchone()
            if row is None:
                raise StoreError("there are no runs yet", "start one: podium run RECIPE")
            return self._run(row)
        if not run_id.strip():
            raise StoreError("no run id given", "pass a run id, a prefix of one, or `last`")
        # A prefix compared literally: LIKE would treat _ and % as wildcards.
        rows = self.conn.execute("SELECT * FROM runs WHERE substr(id, 1, ?) = ? LIMIT 3",
                                 (len(run_id), run_id)).fetchall()
        exact = [r for r in rows if r[0] == run_id]
        if exact:
            return self._run(exact[0])
        if not rows:
            raise StoreError(f"no run '{run_id}' in {self.path}",
                             "list runs with: podium runs")
        if len(rows) > 1:
            raise StoreError(f"'{run_id}' matches several runs", "type more of the run id")
        return self._run(rows[0])

    def list_runs(self, *, limit: int = 20, status: str | None = None) -> list[RunRecord]:
        """Newest first."""
        sql = "SELECT * FROM runs"
        args: list[Any] = []
        if status:
            sql += " WHERE status = ?"
            args.append(status)
        sql += " ORDER BY created_at DESC, id DESC LIMIT ?"
        args.append(limit)
        return [self._run(r) for r in self.conn.execute(sql, args).fetchall()]

    def recipe_source(self, digest: str) -> tuple[str, str, str]:
        """(name, path, source) of a pinned recipe version."""
        row = self.conn.execute("SELECT name, path, source FROM recipes WHERE hash = ?",
                                (digest,)).fetchone()
        if row is None:
            raise StoreError(f"recipe version {digest[:12]} is not stored")
        return row[0], row[1], row[2]

    def _run(self, row: tuple[Any, ...]) -> RunRecord:
        cols = [d[0] for d in self.conn.execute("SELECT * FROM runs LIMIT 0").description]
        d = {k: v for k, v in zip(cols, row, strict=True) if k in _RUN_FIELDS}
        d["inputs"] = json.loads(d["inputs"] or "{}")
        d["outputs"] = json.loads(d["outputs"]) if d["outputs"] else None
        if d["finished_at"] is None:  # still going, or killed: sum what the steps have
            row = self.conn.execute("SELECT COALESCE(SUM(input_tokens), 0), "
                                    "COALESCE(SUM(output_tokens), 0), COALESCE(SUM(cost), 0) "
                                    "FROM steps WHERE run_id = ?", (d["id"],)).fetchone()
            d["input_tokens"], d["output_tokens"], d["cost"] = row
        d["input_tokens"] = d["input_tokens"] or 0
        d["output_tokens"] = d["output_tokens"] or 0
        d["cost"] = d["cost"] or 0.0
        return RunRecord(**d)

    # --- steps ----------------------------------------------------------------------------

    def start_step(self, run_id: str, step_id: str, attempt: int) -> None:
        """A step's attempt begins: status running, an attempt row."""
        with self._write() as c:
            self._start(c, run_id, step_id, attempt, time.time())

    @staticmethod
    def _start(c: sqlite3.Connection, run_id: str, step_id: str, attempt: int,
               now: float) -> None:
        c.execute("UPDATE steps SET status = 'running', started_at = ?, attempts = ?, "
                  "partial_output = NULL, error = NULL, hint = NULL "
                  "WHERE run_id = ? AND step_id = ?", (now, attempt, run_id, step_id))
        c.execute("INSERT INTO attempts (run_id, step_id, number, status, started_at) "
                  "VALUES (?, ?, ?, 'running', ?)", (run_id, step_id, attempt, now))

    def end_attempt(self, run_id: str, step_id: str, attempt: int, status: str,
                    *, error: str | None = None, model: str | None = None,
                    input_tokens: int = 0, output_tokens: int = 0,
                    latency_ms: float | None = None) -> None:
        """Close one attempt (a retry follows, or the step ends)."""
        with self._write() as c:
            self._end_attempt(c, run_id, step_id, attempt, status, error, model,
                              input_tokens, output_tokens, latency_ms)

    @staticmethod
    def _end_attempt(c: sqlite3.Connection, run_id: str, step_id: str, attempt: int,
                     status: str, error: str | None, model: str | None, input_tokens: int,
                     output_tokens: int, latency_ms: float | None) -> None:
        c.execute("UPDATE attempts SET status = ?, finished_at = ?, error = ?, model = ?, "
                  "input_tokens = ?, output_tokens = ?, latency_ms = ? WHERE run_id = ? AND "
                  "step_id = ? AND number = ? AND status = 'running'",
                  (status, time.time(), error, model, input_tokens, output_tokens, latency_ms,
                   run_id, step_id, attempt))

    def finish_step(self, run_id: str, step_id: str, attempt: int, **fields: Any) -> None:
        """Commit one step's result (and its last attempt); `fields` as in `Finished`."""
        self.commit(run_id, finished=[Finished(step_id, attempt, **fields)])

    def commit(self, run_id: str, *, finished: list[Finished] | None = None,
               skipped: dict[str, str] | None = None,
               started: list[tuple[str, int]] | None = None) -> None:
        """One transaction for a scheduling pass: results of the steps that finished,
        the steps skipped because of them, and the attempts that start next. The
        dependents' work begins only after this returns, so each result is durable
        before anything that depends on it runs."""
        now = time.time()
        with self._write() as c:
            if finished:
                self._finish_all(c, run_id, finished, now)
            if skipped:
                c.executemany("UPDATE steps SET status = 'skipped', reason = ?, "
                              "finished_at = ? WHERE run_id = ? AND step_id = ?",
                              [(why, now, run_id, sid) for sid, why in skipped.items()])
            if started:
                c.executemany("UPDATE steps SET status = 'running', started_at = ?, "
                              "attempts = ?, partial_output = NULL, error = NULL, hint = NULL "
                              "WHERE run_id = ? AND step_id = ?",
                              [(now, n, run_id, sid) for sid, n in started])
                c.executemany("INSERT INTO attempts (run_id, step_id, number, status, "
                              "started_at) VALUES (?, ?, ?, 'running', ?)",
                              [(run_id, sid, n, now) for sid, n in started])

    def _finish_all(self, c: sqlite3.Connection, run_id: str, finished: list[Finished],
                    now: float) -> None:
        digests: list[str | None] = []
        artifacts = []
        for f in finished:
            if f.has_output:
                content = dumps(f.output)
                digest = hashlib.sha256(content.encode()).hexdigest()
                artifacts.append((digest, content, len(content), now))
                digests.append(digest)
            else:
                digests.append(None)
        c.executemany("INSERT OR IGNORE INTO artifacts (hash, content, size, created_at) "
                      "VALUES (?, ?, ?, ?)", artifacts)
        c.executemany(
            "UPDATE steps SET status = ?, output_hash = ?, model = ?, tier = ?, route = ?, "
            "input_tokens = ?, output_tokens = ?, cost = ?, latency_ms = ?, finished_at = ?, "
            "error = ?, hint = ?, cache_key = ?, reason = ?, stale = ?, "
            "partial_output = CASE WHEN ? THEN NULL ELSE partial_output END "
            "WHERE run_id = ? AND step_id = ?",
            [(f.status, d, f.model, f.tier, None if f.route is None else dumps(f.route),
              f.input_tokens, f.output_tokens, f.cost, f.latency_ms, now, f.error, f.hint,
              f.cache_key, f.reason, f.stale, f.has_output, run_id, f.step_id)
             for f, d in zip(finished, digests, strict=True)])
        c.executemany("UPDATE attempts SET status = ?, finished_at = ?, error = ?, model = ?, "
                      "input_tokens = ?, output_tokens = ?, latency_ms = ? WHERE run_id = ? "
                      "AND step_id = ? AND number = ? AND status = 'running'",
                      [(f.status, now, f.error, f.model, f.input_tokens, f.output_tokens,
                        f.latency_ms, run_id, f.step_id, f.attempt)
                       for f in finished if f.attempt])
        c.executemany("INSERT OR REPLACE INTO cache (key, artifact_hash, model, created_at) "
                      "VALUES (?, ?, ?, ?)",
                      [(f.cache_key, d, f.model, now)
                       for f, d in zip(finished, digests, strict=True)
                       if d and f.cache_key and not f.stale])
        c.executemany("INSERT INTO events (run_id, step_id, ts, type, data) VALUES "
                      "(?, ?, ?, 'step_finished', ?)",
                      [(run_id, f.step_id, now, dumps({"status": f.status, "error": f.error}))
                       for f in finished])

    def skip_steps(self, run_id: str, reasons: dict[str, str]) -> None:
        """Mark steps skipped, each with why."""
        now = time.time()
        with self._write() as c:
            c.executemany("UPDATE steps SET status = 'skipped', reason = ?, finished_at = ? "
                          "WHERE run_id = ? AND step_id = ?",
                          [(why, now, run_id, sid) for sid, why in reasons.items()])

    def interrupt_steps(self, run_id: str, step_ids: list[str], status: str) -> None:
        """Steps that were running when the run stopped (cancel): keep partial output."""
        with self._write() as c:
            c.executemany("UPDATE steps SET status = ? WHERE run_id = ? AND step_id = ? "
                          "AND status = 'running'", [(status, run_id, s) for s in step_ids])
            c.executemany("UPDATE attempts SET status = ?, finished_at = ? WHERE run_id = ? "
                          "AND step_id = ? AND status = 'running'",
                          [(status, time.time(), run_id, s) for s in step_ids])

    def reset_steps(self, run_id: str, step_ids: list[str]) -> None:
        """Put unfinished steps back to pending so a resume runs them."""
        with self._write() as c:
            c.executemany("UPDATE steps SET status = 'pending', reason = NULL WHERE run_id = ? "
                          "AND step_id = ?", [(run_id, s) for s in step_ids])
            c.executemany("UPDATE attempts SET status = 'in_doubt', finished_at = ? WHERE "
                          "run_id = ? AND step_id = ? AND status = 'running'",
                          [(time.time(), run_id, s) for s in step_ids])

    def settle_attempts(self, run_id: str) -> None:
        """Attempts a killed process left `running` (e.g. a reviewed step being made
        again) are in doubt; nothing runs them any more."""
        with self._write() as c:
            c.execute("UPDATE attempts SET status = 'in_doubt', finished_at = ? WHERE "
                      "run_id = ? AND status = 'running'", (time.time(), run_id))

    def add_attempt(self, run_id: str, step_id: str, attempt: int) -> None:
        """An attempt of a step that stays as it is meanwhile (a reviewed step made again:
        its stored output holds until the new one succeeds)."""
        with self._write() as c:
            c.execute("INSERT INTO attempts (run_id, step_id, number, status, started_at) "
                      "VALUES (?, ?, ?, 'running', ?)", (run_id, step_id, attempt, time.time()))

    def save_partial(self, run_id: str, step_id: str, text: str) -> None:
        """Keep streamed text so far, so a crash leaves it for a person to see."""
        with self._write() as c:
            c.execute("UPDATE steps SET partial_output = ? WHERE run_id = ? AND step_id = ?",
                      (text, run_id, step_id))

    def get_steps(self, run_id: str) -> list[StepRecord]:
        """A run's steps in plan order."""
        cur = self.conn.execute("SELECT s.*, a.content FROM steps s LEFT JOIN artifacts a "
                                "ON a.hash = s.output_hash WHERE s.run_id = ? "
                                "ORDER BY s.position", (run_id,))
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            d = {k: v for k, v in zip(cols, row, strict=True)
                 if k in _STEP_FIELDS or k in ("content", "output_hash")}
            content = d.pop("content")
            d.pop("output_hash")
            d["has_output"] = content is not None
            d["output"] = json.loads(content) if content is not None else None
            d["route"] = json.loads(d["route"]) if d["route"] else None
            for k in ("input_tokens", "output_tokens", "attempts"):
                d[k] = d[k] or 0
            d["cost"] = d["cost"] or 0.0
            out.append(StepRecord(**d))
        return out

    def attempt_count(self, run_id: str, step_id: str | None = None) -> int:
        """How many attempts were started (for tests and `show`)."""
        if step_id is None:
            row = self.conn.execute("SELECT COUNT(*) FROM attempts WHERE run_id = ?",
                                    (run_id,)).fetchone()
        else:
            row = self.conn.execute("SELECT COUNT(*) FROM attempts WHERE run_id = ? AND "
                                    "step_id = ?", (run_id, step_id)).fetchone()
        return int(row[0])

    def cached(self, key: str) -> Any:
        """A cached output for `key`, or raise KeyError."""
        return self.cache_entry(key)[0]

    def cache_entry(self, key: str) -> tuple[Any, str | None]:
        """(output, model that made it) cached under `key`, or raise KeyError."""
        row = self.conn.execute("SELECT a.content, c.model FROM cache c JOIN artifacts a ON "
                                "a.hash = c.artifact_hash WHERE c.key = ?", (key,)).fetchone()
        if row is None:
            raise KeyError(key)
        return json.loads(row[0]), row[1]

    # --- hand edits and reruns ------------------------------------------------------------

    def edit_step(self, run_id: str, step_id: str, value: Any, *, by: str,
                  stale: dict[str, str]) -> int:
        """Store `value` as a new version of a finished step's output (the first version
        kept) and mark `stale` steps out of date, in one transaction. Returns the
        new version number."""
        content = dumps(value)
        digest = hashlib.sha256(content.encode()).hexdigest()
        now = time.time()
        with self._write() as c:
            row = c.execute("SELECT output_hash, COALESCE(version, 1), finished_at FROM steps "
                            "WHERE run_id = ? AND step_id = ?", (run_id, step_id)).fetchone()
            if row is None:
                raise StoreError(f"run {run_id} has no step '{step_id}'")
            old_hash, version, finished_at = row
            if not c.execute("SELECT 1 FROM step_versions WHERE run_id = ? AND step_id = ?",
                             (run_id, step_id)).fetchone():
                c.execute("INSERT INTO step_versions (run_id, step_id, version, output_hash, "
                          "source, created_at, created_by) VALUES (?, ?, 1, ?, 'run', ?, NULL)",
                          (run_id, step_id, old_hash, finished_at or now))
            version += 1
            c.execute("INSERT OR IGNORE INTO artifacts (hash, content, size, created_at) "
                      "VALUES (?, ?, ?, ?)", (digest, content, len(content), now))
            c.execute("INSERT INTO step_versions (run_id, step_id, version, output_hash, "
                      "source, created_at, created_by) VALUES (?, ?, ?, ?, 'edit', ?, ?)",
                      (run_id, step_id, version, digest, now, by))
            c.execute("UPDATE steps SET output_hash = ?, version = ?, stale = NULL "
                      "WHERE run_id = ? AND step_id = ?", (digest, version, run_id, step_id))
            c.executemany("UPDATE steps SET stale = ? WHERE run_id = ? AND step_id = ?",
                          [(why, run_id, sid) for sid, why in stale.items()])
            c.execute("INSERT INTO events (run_id, step_id, ts, type, data) "
                      "VALUES (?, ?, ?, 'step_edited', ?)",
                      (run_id, step_id, now, dumps({"version": version, "by": by})))
        return int(version)

    def step_versions(self, run_id: str, step_id: str) -> list[dict[str, Any]]:
        """Every stored version of a step's output, oldest first."""
        cur = self.conn.execute("SELECT v.version, v.source, v.created_at, v.created_by, "
                                "a.content FROM step_versions v JOIN artifacts a ON "
                                "a.hash = v.output_hash WHERE v.run_id = ? AND v.step_id = ? "
                                "ORDER BY v.version", (run_id, step_id))
        return [{"version": r[0], "source": r[1], "created_at": r[2], "created_by": r[3],
                 "output": json.loads(r[4])} for r in cur.fetchall()]

    def keep_steps(self, run_id: str, from_run: str, step_ids: list[str]) -> None:
        """Copy finished steps of `from_run` into `run_id` (a rerun) without running
        them: same output and model, no tokens spent in this run."""
        now = time.time()
        with self._write() as c:
            c.executemany(
                "UPDATE steps SET (status, output_hash, model, tier, route, version, "
                "finished_at, reason) = (SELECT 'succeeded', o.output_hash, o.model, o.tier, "
                "o.route, o.version, ?, ? FROM steps o WHERE o.run_id = ? AND "
                "o.step_id = steps.step_id) WHERE run_id = ? AND step_id = ?",
                [(now, f"kept from run {from_run}", from_run, run_id, sid)
                 for sid in step_ids])

    # --- reviews --------------------------------------------------------------------------

    def add_review(self, run_id: str, step_id: str, of_step: str, *, kind: str = "review",
                   round: int = 1, original: Any = None, instructions: str | None = None,
                   item: int | None = None) -> int:
        """Put a question to a person; returns the review id."""
        return self.add_reviews(run_id, step_id, of_step, [(item, original)], kind=kind,
                                round=round, instructions=instructions)[0]

    def add_reviews(self, run_id: str, step_id: str, of_step: str,
                    items: list[tuple[int | None, Any]], *, kind: str = "review",
                    round: int | list[int] = 1,
                    instructions: str | None = None) -> list[int]:
        """Several questions at once, (item, original) each, in one transaction: a
        crash leaves all of them asked or none. Returns their ids."""
        now = time.time()
        rounds = round if isinstance(round, list) else [round] * len(items)
        ids = []
        with self._write() as c:
            for (item, original), n in zip(items, rounds, strict=True):
                content = dumps(original)
                digest = hashlib.sha256(content.encode()).hexdigest()
                c.execute("INSERT OR IGNORE INTO artifacts (hash, content, size, created_at) "
                          "VALUES (?, ?, ?, ?)", (digest, content, len(content), now))
                cur = c.execute("INSERT INTO reviews (run_id, step_id, of_step, item, kind, "
                                "round, status, instructions, original_hash, created_at) "
                                "VALUES (?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?)",
                                (run_id, step_id, of_step, item, kind, n, instructions,
                                 digest, now))
                ids.append(int(cur.lastrowid or 0))
                c.execute("INSERT INTO events (run_id, step_id, ts, type, data) "
                          "VALUES (?, ?, ?, 'review_requested', ?)",
                          (run_id, step_id, now, dumps({"review": ids[-1], "kind": kind})))
        return ids

    _REVIEW_SQL = ("SELECT r.*, o.content AS original, d.content AS decided FROM reviews r "
                   "LEFT JOIN artifacts o ON o.hash = r.original_hash "
                   "LEFT JOIN artifacts d ON d.hash = r.decided_hash")

    def _reviews(self, where: str, args: tuple[Any, ...]) -> list[ReviewRecord]:
        cur = self.conn.execute(f"{self._REVIEW_SQL} WHERE {where}", args)
        cols = [d[0] for d in cur.description]
        out = []
        for row in cur.fetchall():
            d = dict(zip(cols, row, strict=True))
            out.append(ReviewRecord(
                d["id"], d["run_id"], d["step_id"], d["of_step"], d["item"], d["kind"],
                d["round"], d["status"], d["instructions"],
                json.loads(d["original"]) if d["original"] is not None else None,
                json.loads(d["decided"]) if d["decided"] is not None else None,
                d["feedback"], d["action"], d["amount"], d["created_at"], d["decided_at"],
                d["decided_by"]))
        return out

    def review(self, review_id: int | str) -> ReviewRecord:
        """One review item. Raises `StoreError` when unknown."""
        try:
            number = int(review_id)
        except (TypeError, ValueError):
            raise StoreError(f"'{review_id}' is not a review id", "review ids are numbers; "
                             "list them with: podium review") from None
        found = self._reviews("r.id = ?", (number,))
        if not found:
            raise StoreError(f"no review {number} in {self.path}",
                             "list pending reviews with: podium review")
        return found[0]

    def reviews(self, *, status: str | None = "pending", run_id: str | None = None,
                step_id: str | None = None, limit: int = 1000) -> list[ReviewRecord]:
        """Review items, oldest first."""
        where, args = ["1"], []
        for column, value in (("r.status", status), ("r.run_id", run_id),
                              ("r.step_id", step_id)):
            if value is not None:
                where.append(f"{column} = ?")
                args.append(value)
        return self._reviews(" AND ".join(where) + " ORDER BY r.created_at, r.id LIMIT ?",
                             (*args, limit))

    def decide_review(self, review_id: int, status: str, *, by: str,
                      decided: Any = None, has_decided: bool = False,
                      feedback: str | None = None, action: str | None = None,
                      amount: float | None = None) -> None:
        """Record a decision, once: a second decision raises `StoreError` and changes
        nothing."""
        now = time.time()
        digest = None
        with self._write() as c:
            if has_decided:
                content = dumps(decided)
                digest = hashlib.sha256(content.encode()).hexdigest()
                c.execute("INSERT OR IGNORE INTO artifacts (hash, content, size, created_at) "
                          "VALUES (?, ?, ?, ?)", (digest, content, len(content), now))
            cur = c.execute("UPDATE reviews SET status = ?, decided_hash = ?, feedback = ?, "
                            "action = ?, amount = ?, decided_at = ?, decided_by = ? "
                            "WHERE id = ? AND status = 'pending'",
                            (status, digest, feedback, action, amount, now, by, review_id))
            if cur.rowcount != 1:
                row = c.execute("SELECT status, decided_by, decided_at FROM reviews "
                                "WHERE id = ?", (review_id,)).fetchone()
                if row is None:
                    raise StoreError(f"no review {review_id}", "list them with: podium review")
                when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row[2] or 0))
                raise StoreError(f"review {review_id} was already decided: {row[0]} by "
                                 f"{row[1] or 'someone'} at {when}",
                                 "a decision is final; edit the step's output with "
                                 "`podium edit` and `podium rerun` to change it")
            c.execute("INSERT INTO events (run_id, step_id, ts, type, data) SELECT run_id, "
                      "step_id, ?, 'review_decided', ? FROM reviews WHERE id = ?",
                      (now, dumps({"review": review_id, "status": status}), review_id))

    def asking(self, run_id: str, step_ids: set[str]) -> set[str]:
        """Which of these steps still wait on an undecided review item."""
        rows = self.conn.execute("SELECT DISTINCT step_id FROM reviews WHERE run_id = ? AND "
                                 "status = 'pending'", (run_id,)).fetchall()
        return {r[0] for r in rows} & step_ids

    def supersede(self, run_id: str, kind: str, keep: int) -> None:
        """Close the other pending items of `kind` in a run: one answer settles them."""
        with self._write() as c:
            c.execute("UPDATE reviews SET status = 'superseded', decided_at = ?, "
                      "decided_by = (SELECT decided_by FROM reviews WHERE id = ?) "
                      "WHERE run_id = ? AND kind = ? AND status = 'pending' AND id != ?",
                      (time.time(), keep, run_id, kind, keep))

    def mark_stale(self, run_id: str, reasons: dict[str, str]) -> None:
        """Mark steps whose output is out of date, each with why."""
        with self._write() as c:
            c.executemany("UPDATE steps SET stale = ? WHERE run_id = ? AND step_id = ? AND "
                          "status IN ('succeeded', 'failed', 'skipped')",
                          [(why, run_id, sid) for sid, why in reasons.items()])

    # --- chats ----------------------------------------------------------------------------

    def create_chat(self, title: str) -> str:
        """A new chat; returns its id."""
        chat_id = new_run_id()
        now = time.time()
        with self._write() as c:
            c.execute("INSERT INTO chats (id, title, created_at, updated_at) VALUES "
                      "(?, ?, ?, ?)", (chat_id, title, now, now))
        return chat_id

    def add_message(self, chat_id: str, role: str, content: str, *, model: str | None = None,
                    tier: str | None = None, route: dict[str, Any] | None = None,
                    input_tokens: int = 0, output_tokens: int = 0, cost: float = 0.0,
                    latency_ms: float | None = None) -> None:
        """Append one message to a chat."""
        now = time.time()
        with self._write() as c:
            position = c.execute("SELECT COUNT(*) FROM messages WHERE chat_id = ?",
                                 (chat_id,)).fetchone()[0]
            c.execute("INSERT INTO messages (chat_id, position, role, content, model, tier, "
                      "route, input_tokens, output_tokens, cost, latency_ms, created_at) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (chat_id, position, role, content, model, tier,
                       None if route is None else dumps(route), input_tokens, output_tokens,
                       cost, latency_ms, now))
            c.execute("UPDATE chats SET updated_at = ? WHERE id = ?", (now, chat_id))

    def chat_messages(self, chat_id: str) -> list[dict[str, Any]]:
        """A chat's messages in order. Raises `StoreError` for an unknown chat."""
        if not self.conn.execute("SELECT 1 FROM chats WHERE id = ?", (chat_id,)).fetchone():
            raise StoreError(f"no chat '{chat_id}'", "list chats with: podium chat --list")
        cur = self.conn.execute("SELECT * FROM messages WHERE chat_id = ? ORDER BY position",
                                (chat_id,))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def list_chats(self, limit: int = 20) -> list[dict[str, Any]]:
        """Newest chats first, with their message counts."""
        cur = self.conn.execute("SELECT c.id, c.title, c.updated_at, COUNT(m.id) AS messages "
                                "FROM chats c LEFT JOIN messages m ON m.chat_id = c.id "
                                "GROUP BY c.id ORDER BY c.updated_at DESC LIMIT ?", (limit,))
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    # --- comparisons ------------------------------------------------------------------------

    def add_comparison(self, run_id: str, step_id: str, *, original_model: str | None,
                       original_tier: str | None, model: str, tier: str, output: Any,
                       input_tokens: int, output_tokens: int, cost: float,
                       latency_ms: float) -> None:
        """Store a sibling answer of a finished step, from the other tier."""
        content = dumps(output)
        digest = hashlib.sha256(content.encode()).hexdigest()
        now = time.time()
        with self._write() as c:
            c.execute("INSERT OR IGNORE INTO artifacts (hash, content, size, created_at) "
                      "VALUES (?, ?, ?, ?)", (digest, content, len(content), now))
            c.execute("INSERT INTO comparisons (run_id, step_id, original_model, "
                      "original_tier, model, tier, output_hash, input_tokens, output_tokens, "
                      "cost, latency_ms, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (run_id, step_id, original_model, original_tier, model, tier, digest,
                       input_tokens, output_tokens, cost, latency_ms, now))

    def cost_since(self, since: float) -> float:
        """USD spent by steps that finished after `since` (epoch seconds)."""
        row = self.conn.execute("SELECT COALESCE(SUM(cost), 0) FROM steps WHERE "
                                "finished_at >= ?", (since,)).fetchone()
        return float(row[0])
