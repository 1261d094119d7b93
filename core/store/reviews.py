"""The review queue and hand edits: questions put to people and their answers, every
version of an edited output, and the stale marks an edit leaves downstream."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from podium.core.errors import StoreError
from podium.core.store.records import ReviewRecord, dumps, put_artifact


class ReviewQueue:
    """The `Store`'s part for people in the loop."""

    conn: sqlite3.Connection
    path: Path

    def _write(self, run_id: str | None = None) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the Store's

    def edit_step(self, run_id: str, step_id: str, value: Any, *, by: str,
                  stale: dict[str, str]) -> int:
        """Store `value` as a new version of a finished step's output (the first version
        kept) and mark `stale` steps out of date, in one transaction. Returns the
        new version number."""
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
            digest = put_artifact(c, value, now)
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
        with self._write(run_id) as c:
            for (item, original), n in zip(items, rounds, strict=True):
                digest = put_artifact(c, original, now)
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
                digest = put_artifact(c, decided, now)
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
        with self._write(run_id) as c:
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
