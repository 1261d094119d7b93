"""The only package that speaks SQL: runs, steps, attempts, events, artifacts, cache,
the review queue and chats.

One SQLite file in WAL mode, shared safely by several processes (busy timeout,
short `BEGIN IMMEDIATE` write transactions). Every state change of a step is one
transaction, committed before anything that depends on it starts. Outputs are
content-addressed artifacts, so storage grows with unique content only.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import podium.core.store.faults as faults
import podium.core.store.files as files
from podium.core import paths
from podium.core.errors import StoreError
from podium.core.store.agents import AgentLog
from podium.core.store.batches import Batches
from podium.core.store.calibrations import Calibrations
from podium.core.store.chats import Conversations
from podium.core.store.corpora import Corpora
from podium.core.store.faults import fault
from podium.core.store.items import ItemStore
from podium.core.store.migrations import (
    applied,
    complete,
    migrate,
    refuse_newer,
    schema_version,
)
from podium.core.store.records import (
    HOST,
    RUN_FIELDS,
    STEP_FIELDS,
    Finished,
    RunRecord,
    StepRecord,
    dumps,
    new_run_id,
    pid_alive,
    put_artifact,
)
from podium.core.store.reviews import ReviewQueue

# Inputs bigger than this (as JSON) are kept as an artifact the run refers to.
INLINE_INPUTS = 16_384
ARTIFACT_KEY = "$podium-artifact"  # no recipe input can be called this

if TYPE_CHECKING:
    import sqlite_utils

    from podium.core.recipe.schema import Recipe

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


class Store(ReviewQueue, Conversations, ItemStore, Corpora, AgentLog, Batches,
            Calibrations):
    """A Podium database. Open with `Store.open()`; close with `close()`.

    `read_only` is None for a writable database. For a read-only file or folder it says
    why and how to fix it: reading works, and the first write raises `StoreError`."""

    def __init__(self, path: str | Path, *, synchronous: str = "NORMAL") -> None:
        self.path = Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise StoreError(f"cannot create the folder for {self.path}: {e.strerror}",
                             "pick another --db / PODIUM_DB / PODIUM_HOME") from None
        if self.path.is_dir():
            raise StoreError(f"{self.path} is a directory", "--db takes a file path")
        self.conn, self.read_only = files.connect(self.path)
        try:
            self._prepare(synchronous)
        except BaseException:
            self.conn.close()
            raise

    def _prepare(self, synchronous: str) -> None:
        """Check the schema version before writing anything, set the connection up, and
        migrate if needed."""
        conn = self.conn
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            done = applied(conn)
            refuse_newer(version, done, str(self.path))
            if self.read_only is None:
                _set_wal(conn)
                # NORMAL in WAL survives a killed process; FULL also survives power loss.
                conn.execute(f"PRAGMA synchronous={synchronous}")
            conn.execute(f"PRAGMA busy_timeout={int(faults.BUSY_TIMEOUT_S * 1000)}")
            conn.execute("PRAGMA foreign_keys=ON")
            if complete(done) and version == schema_version():
                return
            if self.read_only is None:
                migrate(self.db, str(self.path))
            elif not complete(done):
                raise StoreError(f"{self.path} needs an upgrade by this Podium, but "
                                 f"{self.read_only.why}",
                                 f"{self.read_only.fix} (once is enough); or "
                                 f"{faults.OTHER_DB}")
            # else: complete, from a Podium before user_version; read it as it is.
        except sqlite3.Error as e:
            raise fault(e, self.path, read_only=self.read_only) or StoreError(
                f"cannot open the database {self.path}: {e}",
                f"is it a Podium database? Otherwise {faults.OTHER_DB}") from None

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
            from podium.core.errors import ConfigError

            raise ConfigError(f"PODIUM_SYNC={sync} is not a durability level",
                              "use NORMAL (survives a killed process) or FULL (also power "
                              "loss)")
        return cls(path or paths.db_path(), synchronous=sync)

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()

    @contextmanager
    def _write(self, run_id: str | None = None) -> Iterator[sqlite3.Connection]:
        """One write transaction. What the filesystem refuses (read-only, full, failing,
        locked too long) is a `StoreError` naming the file; `run_id`, for the writes of
        a run in progress, lets its hint say how to continue."""
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                self._rollback()
                raise
            conn.execute("COMMIT")
        except sqlite3.Error as e:
            self._rollback()
            mapped = fault(e, self.path, read_only=self.read_only, run_id=run_id)
            if mapped is None:
                raise
            raise mapped from e

    def _rollback(self) -> None:
        # After a full disk or an I/O error SQLite may have rolled back already: a second
        # ROLLBACK would raise and hide the error that matters.
        if self.conn.in_transaction:
            try:
                self.conn.execute("ROLLBACK")
            except sqlite3.Error:
                pass

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
                   *, parent_run_id: str | None = None, run_id: str | None = None) -> str:
        """Store the pinned recipe, the run and its pending steps; return the run id
        (`run_id` when given: a batch row names its run before the run exists)."""
        run_id = run_id or new_run_id()
        now = time.time()
        stored = dumps(inputs)
        with self._write() as c:
            if len(stored) > INLINE_INPUTS:
                # Big inputs live once, content-addressed, and the run row stays small:
                # each update of a row rewrites all of it, and a 4 MB row rewritten at
                # claim and finish left three copies in the file.
                stored = dumps({ARTIFACT_KEY: put_artifact(c, inputs, now)})
            c.execute("INSERT OR IGNORE INTO recipes (hash, name, path, source, created_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                      (recipe.hash, recipe.name, recipe.path, recipe.source, now))
            c.execute("INSERT INTO runs (id, recipe_name, recipe_hash, recipe_path, status, "
                      "inputs, created_at, pid, host, parent_run_id, input_tokens, "
                      "output_tokens, cost) VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, 0, 0, 0)",
                      (run_id, recipe.name, recipe.hash, recipe.path, stored, now,
                       os.getpid(), HOST, parent_run_id))
            c.executemany("INSERT INTO steps (run_id, step_id, kind, position, status, "
                          "input_tokens, output_tokens, cost, attempts) "
                          "VALUES (?, ?, ?, ?, 'pending', 0, 0, 0, 0)",
                          [(run_id, sid, recipe.steps[sid].kind, i)
                           for i, sid in enumerate(order)])
        return run_id

    def claim_run(self, run_id: str, *, force: bool = False) -> None:
        """Mark a run running in this process (start or resume). Checked and written in
        one transaction: of two processes resuming a run at once, one gets `RunBusy`."""
        from podium.core.errors import RunBusy

        with self._write(run_id) as c:
            row = c.execute("SELECT status, pid, host FROM runs WHERE id = ?",
                            (run_id,)).fetchone()
            if row is not None and row[0] == "running" and not force and \
                    row[1] != os.getpid() and (row[2] != HOST or pid_alive(row[1] or 0)):
                raise RunBusy(run_id, row[1], row[2] if row[2] != HOST else None)
            c.execute("UPDATE runs SET status = 'running', pid = ?, host = ?, "
                      "started_at = COALESCE(started_at, ?), finished_at = NULL, error = NULL, "
                      "hint = NULL WHERE id = ?", (os.getpid(), HOST, time.time(), run_id))
            c.execute("INSERT INTO events (run_id, step_id, ts, type, data) "
                      "VALUES (?, NULL, ?, 'run_started', '{}')", (run_id, time.time()))

    def finish_run(self, run_id: str, status: str, outputs: dict[str, Any] | None,
                   error: str | None = None, hint: str | None = None, *,
                   waiting_on: set[str] | None = None) -> set[str]:
        """Record the end of a run (or its pause) with its outputs and totals. With
        `waiting_on`, first check in the same transaction that those steps still wait
        for a person; if some do not, write nothing and return them."""
        with self._write(run_id) as c:
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
            # The cache learns a run's outputs when it ends or pauses, in one statement:
            # its keys are random, and an insert each per step commit cost about a
            # fifth of a step. A run killed before this gets them when it is resumed.
            c.execute("INSERT OR REPLACE INTO cache (key, artifact_hash, model, created_at) "
                      "SELECT cache_key, output_hash, model, ? FROM steps WHERE run_id = ? "
                      "AND status = 'succeeded' AND cache_key IS NOT NULL AND output_hash "
                      "IS NOT NULL AND stale IS NULL", (time.time(), run_id))
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
        d = {k: v for k, v in zip(cols, row, strict=True) if k in RUN_FIELDS}
        d["inputs"] = json.loads(d["inputs"] or "{}")
        if isinstance(d["inputs"], dict) and list(d["inputs"]) == [ARTIFACT_KEY]:
            d["inputs"] = self.artifact(d["inputs"][ARTIFACT_KEY])
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
        with self._write(run_id) as c:
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
        with self._write(run_id) as c:
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
        with self._write(run_id) as c:
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
                digest, content = f.artifact()
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
        c.executemany("INSERT INTO events (run_id, step_id, ts, type, data) VALUES "
                      "(?, ?, ?, 'step_finished', ?)",
                      [(run_id, f.step_id, now, dumps({"status": f.status, "error": f.error}))
                       for f in finished])

    def skip_steps(self, run_id: str, reasons: dict[str, str]) -> None:
        """Mark steps skipped, each with why."""
        now = time.time()
        with self._write(run_id) as c:
            c.executemany("UPDATE steps SET status = 'skipped', reason = ?, finished_at = ? "
                          "WHERE run_id = ? AND step_id = ?",
                          [(why, now, run_id, sid) for sid, why in reasons.items()])

    def interrupt_steps(self, run_id: str, step_ids: list[str], status: str) -> None:
        """Steps that were running when the run stopped (cancel): keep partial output."""
        with self._write(run_id) as c:
            c.executemany("UPDATE steps SET status = ? WHERE run_id = ? AND step_id = ? "
                          "AND status = 'running'", [(status, run_id, s) for s in step_ids])
            c.executemany("UPDATE attempts SET status = ?, finished_at = ? WHERE run_id = ? "
                          "AND step_id = ? AND status = 'running'",
                          [(status, time.time(), run_id, s) for s in step_ids])

    def reset_steps(self, run_id: str, step_ids: list[str]) -> None:
        """Put unfinished steps back to pending so a resume runs them."""
        with self._write(run_id) as c:
            c.executemany("UPDATE steps SET status = 'pending', reason = NULL WHERE run_id = ? "
                          "AND step_id = ?", [(run_id, s) for s in step_ids])
            c.executemany("UPDATE attempts SET status = 'in_doubt', finished_at = ? WHERE "
                          "run_id = ? AND step_id = ? AND status = 'running'",
                          [(time.time(), run_id, s) for s in step_ids])

    def settle_attempts(self, run_id: str) -> None:
        """Attempts a killed process left `running` (e.g. a reviewed step being made
        again) are in doubt; nothing runs them any more."""
        with self._write(run_id) as c:
            c.execute("UPDATE attempts SET status = 'in_doubt', finished_at = ? WHERE "
                      "run_id = ? AND status = 'running'", (time.time(), run_id))

    def add_attempt(self, run_id: str, step_id: str, attempt: int) -> None:
        """An attempt of a step that stays as it is meanwhile (a reviewed step made again:
        its stored output holds until the new one succeeds)."""
        with self._write(run_id) as c:
            c.execute("INSERT INTO attempts (run_id, step_id, number, status, started_at) "
                      "VALUES (?, ?, ?, 'running', ?)", (run_id, step_id, attempt, time.time()))

    def save_partial(self, run_id: str, step_id: str, text: str) -> None:
        """Keep streamed text so far, so a crash leaves it for a person to see."""
        with self._write(run_id) as c:
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
                 if k in STEP_FIELDS or k in ("content", "output_hash")}
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
