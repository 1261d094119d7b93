"""Batches: a recipe run over a dataset, one row per dataset row, each row linked to
the run that did its work; and a run carried whole from one database to another
(a Ray worker's scratch store to the driver's), which is how remote rows land.

A row's status is its run's status (joined, never copied), so the runs stay the one
truth: a killed batch needs no repair, and a row decided in `podium review` shows
as done at once. Only rows without a run keep a status of their own: `pending`
(not started), `skipped` (the data row was unreadable) or `failed` (its inputs did
not fit the recipe).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium.core.errors import StoreError
from podium.core.store.records import HOST, dumps, pid_alive

if TYPE_CHECKING:
    from podium.core.recipe.schema import Recipe

# Tables a run owns besides `runs` (every table with a `run_id`), minus these.
_NOT_A_RUNS_PART = frozenset({"batch_rows"})


@dataclass
class BatchRecord:
    """A batch as stored."""

    id: str
    recipe_name: str
    recipe_hash: str
    data: str
    mapping: dict[str, str]
    executor: str
    concurrency: int
    total: int
    status: str  # running | finished
    created_at: float
    finished_at: float | None
    pid: int | None
    host: str | None

    @property
    def busy(self) -> bool:
        """Another live process on this host is running this batch."""
        return self.status == "running" and self.host == HOST and bool(self.pid) and \
            self.pid != os.getpid() and pid_alive(self.pid or 0)


@dataclass
class RowRecord:
    """One row of a batch and, once it has one, its run's status and outputs."""

    index: int
    key: str
    line: int | None
    inputs: dict[str, Any]
    status: str  # pending | running | in_doubt | succeeded | failed | waiting | skipped | ...
    run_id: str | None
    error: str | None
    outputs: dict[str, Any] | None


class Batches:
    """The `Store`'s part for batches."""

    conn: sqlite3.Connection
    path: Path

    def _write(self, run_id: str | None = None) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the Store's

    def create_batch(self, batch_id: str, recipe: Recipe, data: str, mapping: dict[str, str],
                     executor: str, concurrency: int,
                     rows: Sequence[tuple[int, str, int | None, dict[str, Any] | None,
                                          str | None]]) -> None:
        """Store a batch and all its rows, `pending` (or `skipped` with the reason when
        the data row could not be read), in one transaction: the dataset is in the
        database before any row runs, so a resume never needs the file again."""
        now = time.time()
        with self._write() as c:
            c.execute("INSERT OR IGNORE INTO recipes (hash, name, path, source, created_at) "
                      "VALUES (?, ?, ?, ?, ?)",
                      (recipe.hash, recipe.name, recipe.path, recipe.source, now))
            c.execute("INSERT INTO batches (id, recipe_name, recipe_hash, data, mapping, "
                      "executor, concurrency, total, status, created_at, pid, host) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'running', ?, ?, ?)",
                      (batch_id, recipe.name, recipe.hash, data, dumps(mapping), executor,
                       concurrency, len(rows), now, os.getpid(), HOST))
            c.executemany("INSERT INTO batch_rows (batch_id, idx, key, line, inputs, status, "
                          "error) VALUES (?, ?, ?, ?, ?, ?, ?)",
                          [(batch_id, i, key, line, dumps(values or {}),
                            "skipped" if problem else "pending", problem)
                           for i, key, line, values, problem in rows])

    def claim_batch(self, batch_id: str, executor: str, concurrency: int) -> None:
        """Mark the batch running in this process; `StoreError` if another live one is."""
        with self._write() as c:
            row = c.execute("SELECT status, pid, host FROM batches WHERE id = ?",
                            (batch_id,)).fetchone()
            if row is None:
                raise StoreError(f"no batch '{batch_id}'", "list them: podium batch list")
            if row[0] == "running" and row[2] == HOST and row[1] != os.getpid() and \
                    pid_alive(row[1] or 0):
                raise StoreError(f"batch {batch_id} is running in process {row[1]}",
                                 "wait for it, or stop that process first")
            c.execute("UPDATE batches SET status = 'running', pid = ?, host = ?, executor = ?, "
                      "concurrency = ?, finished_at = NULL WHERE id = ?",
                      (os.getpid(), HOST, executor, concurrency, batch_id))

    def finish_batch(self, batch_id: str) -> None:
        """The batch process is done with it (rows may still wait for a person)."""
        with self._write() as c:
            c.execute("UPDATE batches SET status = 'finished', finished_at = ? WHERE id = ?",
                      (time.time(), batch_id))

    def get_batch(self, batch_id: str) -> BatchRecord:
        """A batch by id, unique prefix or `last`."""
        cols = "id, recipe_name, recipe_hash, data, mapping, executor, concurrency, total, " \
               "status, created_at, finished_at, pid, host"
        if batch_id == "last":
            rows = self.conn.execute(f"SELECT {cols} FROM batches ORDER BY created_at DESC "
                                     "LIMIT 1").fetchall()
            if not rows:
                raise StoreError("there are no batches yet",
                                 "start one: podium batch run RECIPE DATA")
        else:
            rows = self.conn.execute(f"SELECT {cols} FROM batches WHERE substr(id, 1, ?) = ? "
                                     "LIMIT 3", (len(batch_id), batch_id)).fetchall()
            exact = [r for r in rows if r[0] == batch_id]
            rows = exact or rows
            if not rows:
                raise StoreError(f"no batch '{batch_id}' in {self.path}",
                                 "list them: podium batch list")
            if len(rows) > 1:
                raise StoreError(f"'{batch_id}' matches several batches", "type more of the id")
        r = rows[0]
        return BatchRecord(r[0], r[1], r[2], r[3], json.loads(r[4] or "{}"), r[5], r[6], r[7],
                           r[8], r[9], r[10], r[11], r[12])

    def list_batches(self, limit: int = 20) -> list[BatchRecord]:
        """Newest first."""
        ids = [r[0] for r in self.conn.execute("SELECT id FROM batches ORDER BY created_at "
                                               "DESC LIMIT ?", (limit,))]
        return [self.get_batch(i) for i in ids]

    def batch_rows(self, batch_id: str, *, outputs: bool = False) -> list[RowRecord]:
        """Every row of a batch in order, each with its run's status (a run a killed
        process left running is `in_doubt`)."""
        cur = self.conn.execute(
            "SELECT b.idx, b.key, b.line, b.inputs, b.status, b.run_id, b.error, r.status, "
            "r.error, r.pid, r.host, " + ("r.outputs" if outputs else "NULL") +
            " FROM batch_rows b LEFT JOIN runs r ON r.id = b.run_id WHERE b.batch_id = ? "
            "ORDER BY b.idx", (batch_id,))
        out = []
        for idx, key, line, inputs, own, run_id, error, status, run_error, pid, host, o in cur:
            if status is None:  # no run (yet): the row's own status
                status, run_id = own, None
            elif status == "running" and (host != HOST or not pid or not pid_alive(pid)):
                status = "in_doubt"  # its process was killed
            elif status == "running" and host == HOST and pid == os.getpid():
                status = "running"
            out.append(RowRecord(idx, key, line, json.loads(inputs or "{}"), status, run_id,
                                 run_error or error, json.loads(o) if o else None))
        return out

    def link_row(self, batch_id: str, index: int, run_id: str) -> None:
        """The row's run is `run_id` (its id chosen before the run is made, so a crash
        between the two leaves a link to a run that does not exist yet: not started)."""
        with self._write() as c:
            c.execute("UPDATE batch_rows SET run_id = ?, status = 'started', error = NULL "
                      "WHERE batch_id = ? AND idx = ?", (run_id, batch_id, index))

    def fail_row(self, batch_id: str, index: int, error: str) -> None:
        """A row that could not become a run (its inputs do not fit the recipe)."""
        with self._write() as c:
            c.execute("UPDATE batch_rows SET status = 'failed', error = ?, run_id = NULL "
                      "WHERE batch_id = ? AND idx = ?", (error, batch_id, index))

    # --- a run carried between databases ---------------------------------------------------

    def _run_tables(self) -> dict[str, list[str]]:
        """Every table holding a run's parts (a `run_id` column), with its columns."""
        out: dict[str, list[str]] = {}
        for (name,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            if name in _NOT_A_RUNS_PART or name.startswith("sqlite_"):
                continue
            cols = [r[1] for r in self.conn.execute(f'PRAGMA table_info("{name}")')]
            if "run_id" in cols:
                out[name] = cols
        return out

    def _child_tables(self, tables: dict[str, list[str]]) -> dict[str, tuple[str, str]]:
        """Tables that hang off a run's table by its numbered id (a map's `items` off its
        `item_sets`): child -> (its column, the parent table)."""
        out: dict[str, tuple[str, str]] = {}
        for (name,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            if name in tables or name in _NOT_A_RUNS_PART or name.startswith("sqlite_"):
                continue
            for fk in self.conn.execute(f'PRAGMA foreign_key_list("{name}")'):
                if fk[2] in tables and (fk[4] or "id") == "id":
                    out[name] = (fk[3], fk[2])
        return out

    def export_run(self, run_id: str) -> dict[str, Any]:
        """Everything stored about one run, as plain values: its recipe, its row, the
        rows of every table that refers to it, and the artifacts they name."""
        c = self.conn
        run = _rows(c, "SELECT * FROM runs WHERE id = ?", (run_id,))
        if not run:
            raise StoreError(f"no run '{run_id}' to export")
        tables = self._run_tables()
        parts = {name: _rows(c, f'SELECT * FROM "{name}" WHERE run_id = ?', (run_id,))
                 for name in tables}
        children: dict[str, list[dict[str, Any]]] = {}
        for child, (column, parent) in self._child_tables(tables).items():
            ids = [r["id"] for r in parts[parent] if isinstance(r.get("id"), int)]
            if ids:
                children[child] = _rows(c, f'SELECT * FROM "{child}" WHERE "{column}" IN '
                                        f'({",".join("?" * len(ids))})', tuple(ids))
        digests: set[str] = set()
        for rows in [run, *parts.values(), *children.values()]:
            for row in rows:
                digests.update(v for k, v in row.items() if k.endswith("_hash") and
                               k != "recipe_hash" and isinstance(v, str))
        inputs = json.loads(run[0]["inputs"] or "{}")
        if isinstance(inputs, dict) and len(inputs) == 1:  # inputs kept as an artifact
            digests.update(v for v in inputs.values() if isinstance(v, str))
        marks = ",".join("?" * len(digests))
        artifacts = _rows(c, f"SELECT * FROM artifacts WHERE hash IN ({marks})",
                          tuple(digests)) if digests else []
        recipe = _rows(c, "SELECT * FROM recipes WHERE hash = ?", (run[0]["recipe_hash"],))
        return {"run": run[0], "parts": parts, "children": children, "artifacts": artifacts,
                "recipe": recipe}

    def land_run(self, batch_id: str, index: int, payload: dict[str, Any]) -> bool:
        """Take in a run made elsewhere (`export_run`) as the result of a batch row, in
        one transaction. False, and nothing written, if the row already has a run that
        is in this database: a row lands once, however often it was made."""
        run = payload["run"]
        with self._write() as c:
            row = c.execute("SELECT b.run_id, r.id FROM batch_rows b LEFT JOIN runs r ON "
                            "r.id = b.run_id WHERE b.batch_id = ? AND b.idx = ?",
                            (batch_id, index)).fetchone()
            if row is None:
                raise StoreError(f"batch {batch_id} has no row {index}")
            if row[1] is not None:
                return False
            for r in payload["recipe"]:
                _insert(c, "recipes", r, ignore=True)
            for a in payload["artifacts"]:
                _insert(c, "artifacts", a, ignore=True)
            _insert(c, "runs", run)
            tables = self._run_tables()
            renumbered: dict[str, dict[int, int]] = {}  # table -> worker's id -> ours
            for name, rows in payload["parts"].items():
                _known(name, tables)
                keep = set(tables[name])
                for r in rows:
                    # Numbered rows (attempts, events, reviews) get this database's numbers.
                    own = {k: v for k, v in r.items() if k in keep and
                           not (k == "id" and isinstance(v, int))}
                    new = _insert(c, name, own)
                    if isinstance(r.get("id"), int):
                        renumbered.setdefault(name, {})[r["id"]] = new
            links = self._child_tables(tables)
            for name, rows in payload.get("children", {}).items():
                _known(name, links)
                column, parent = links[name]
                keep = {r[1] for r in c.execute(f'PRAGMA table_info("{name}")')}
                for r in rows:
                    own = {k: v for k, v in r.items() if k in keep and
                           not (k == "id" and isinstance(v, int))}
                    own[column] = renumbered[parent][r[column]]
                    _insert(c, name, own)
            c.execute("UPDATE batch_rows SET run_id = ?, status = 'started', error = NULL "
                      "WHERE batch_id = ? AND idx = ?", (run["id"], batch_id, index))
        return True


def _rows(c: sqlite3.Connection, sql: str, args: tuple[Any, ...]) -> list[dict[str, Any]]:
    cur = c.execute(sql, args)
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _insert(c: sqlite3.Connection, table: str, row: dict[str, Any], *,
            ignore: bool = False) -> int:
    """Insert `row`; its rowid (the new number of a numbered row)."""
    cols = ", ".join(f'"{k}"' for k in row)
    marks = ", ".join("?" * len(row))
    verb = "INSERT OR IGNORE" if ignore else "INSERT"
    cur = c.execute(f'{verb} INTO "{table}" ({cols}) VALUES ({marks})', tuple(row.values()))
    return int(cur.lastrowid or 0)


def _known(name: str, tables: Any) -> None:
    if name not in tables:
        raise StoreError(f"a worker stored '{name}', which this database lacks",
                         "run the same Podium version on the driver and workers")
