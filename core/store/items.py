"""The items of a `map` or `ensemble`, each kept as it finishes: the journal a resume
reads so that it makes only the items that were not finished.

Items belong to a set: one step of one run, made from one definition and one set of
inputs (the set's key, given by the engine). A rerun after an input changed, or a
remake with a reviewer's feedback, has another key, so stale items are never taken
for current ones. Rows are only ever added; a test (or a person) can count how
often each item was made.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from podium.core.store.records import Status, dumps


@dataclass(slots=True)
class ItemRow:
    """One finished item, as the journal writes it: which item (`index`, and the
    `digest` of what it was made from), how it ended, its output and what it cost."""

    index: int
    digest: str
    status: str  # succeeded | failed
    output: Any = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    latency_ms: float | None = None
    error: str | None = None


@dataclass(slots=True)
class KeptItem:
    """An item that succeeded earlier under the same key: what a resume takes as it is."""

    digest: str
    output: Any
    model: str | None
    input_tokens: int
    output_tokens: int
    cost: float


@dataclass
class ItemRecord:
    """An item as stored (for `show`, tests and people counting work done)."""

    run_id: str
    step_id: str
    key: str
    index: int
    digest: str
    status: str
    output: Any
    attempt: int
    model: str | None
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: float | None
    error: str | None


class ItemStore:
    """The `Store`'s part for the items of maps and ensembles."""

    conn: sqlite3.Connection

    def _write(self, run_id: str | None = None) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the Store's

    def _item_set(self, run_id: str, step_id: str, key: str) -> int | None:
        row = self.conn.execute("SELECT id FROM item_sets WHERE run_id = ? AND step_id = ? "
                                "AND key = ?", (run_id, step_id, key)).fetchone()
        return None if row is None else int(row[0])

    def add_items(self, run_id: str, step_id: str, key: str, attempt: int,
                  rows: Iterable[ItemRow]) -> int:
        """Keep finished items of the set (run, step, key), made by `attempt` of the
        step, in one transaction; returns the set's id (created on first use)."""
        now = time.time()
        with self._write(run_id) as c:
            c.execute("INSERT OR IGNORE INTO item_sets (run_id, step_id, key, created_at) "
                      "VALUES (?, ?, ?, ?)", (run_id, step_id, key, now))
            set_id = int(c.execute("SELECT id FROM item_sets WHERE run_id = ? AND step_id = ? "
                                   "AND key = ?", (run_id, step_id, key)).fetchone()[0])
            c.executemany(
                "INSERT INTO items (set_id, idx, digest, status, output, attempt, model, "
                "input_tokens, output_tokens, cost, latency_ms, error, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [(set_id, r.index, r.digest, r.status,
                  dumps(r.output) if r.status == Status.SUCCEEDED else None, attempt,
                  r.model, r.input_tokens, r.output_tokens, r.cost, r.latency_ms, r.error,
                  now) for r in rows])
        return set_id

    def kept_items(self, run_id: str, step_id: str, key: str) -> dict[int, KeptItem]:
        """Items of the set (run, step, key) that succeeded, by index. Failed ones are
        not kept: a resume tries them again, as it does failed steps."""
        set_id = self._item_set(run_id, step_id, key)
        if set_id is None:
            return {}
        rows = self.conn.execute("SELECT idx, digest, output, model, input_tokens, "
                                 "output_tokens, cost FROM items WHERE set_id = ? AND "
                                 "status = 'succeeded' ORDER BY id", (set_id,))
        return {r[0]: KeptItem(r[1], json.loads(r[2]), r[3], r[4] or 0, r[5] or 0,
                               r[6] or 0.0) for r in rows}

    def items(self, run_id: str, step_id: str | None = None) -> list[ItemRecord]:
        """Every item row of a run (or of one of its steps), in the order they were kept."""
        sql = ("SELECT s.run_id, s.step_id, s.key, i.idx, i.digest, i.status, i.output, "
               "i.attempt, i.model, i.input_tokens, i.output_tokens, i.cost, i.latency_ms, "
               "i.error FROM items i JOIN item_sets s ON s.id = i.set_id WHERE s.run_id = ?")
        args: tuple[Any, ...] = (run_id,)
        if step_id is not None:
            sql += " AND s.step_id = ?"
            args += (step_id,)
        rows = self.conn.execute(sql + " ORDER BY i.id", args).fetchall()
        return [ItemRecord(r[0], r[1], r[2], r[3], r[4], r[5],
                           json.loads(r[6]) if r[6] is not None else None, r[7], r[8],
                           r[9] or 0, r[10] or 0, r[11] or 0.0, r[12], r[13]) for r in rows]

    def item_counts(self, run_id: str) -> dict[str, int]:
        """How many items of each step of a run are finished and kept, in the step's
        latest set (what a resume would take from the store)."""
        rows = self.conn.execute(
            "SELECT s.step_id, COUNT(DISTINCT i.idx) FROM items i JOIN item_sets s ON "
            "s.id = i.set_id WHERE s.run_id = ? AND i.status = 'succeeded' AND s.id = "
            "(SELECT MAX(id) FROM item_sets WHERE run_id = s.run_id AND step_id = s.step_id) "
            "GROUP BY s.step_id", (run_id,)).fetchall()
        return {r[0]: int(r[1]) for r in rows}
