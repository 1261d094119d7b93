"""Chats (line-based conversations with routed models) and comparisons (a finished
step answered again on the other tier)."""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

from podium.core.errors import StoreError
from podium.core.store.records import dumps, new_run_id, put_artifact


class Conversations:
    """The `Store`'s part for chats and comparisons."""

    conn: sqlite3.Connection
    path: Path

    def _write(self, run_id: str | None = None) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the Store's

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
                       latency_ms: float, prompt: str | None = None) -> None:
        """Store a sibling answer of a finished step, from the other tier."""
        now = time.time()
        with self._write() as c:
            digest = put_artifact(c, output, now)
            c.execute("INSERT INTO comparisons (run_id, step_id, original_model, "
                      "original_tier, model, tier, output_hash, input_tokens, output_tokens, "
                      "cost, latency_ms, created_at, prompt) "
                      "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (run_id, step_id, original_model, original_tier, model, tier, digest,
                       input_tokens, output_tokens, cost, latency_ms, now, prompt))

    def judge_comparison(self, run_id: str, step_id: str, verdict: str) -> None:
        """Record which answer of the step's latest comparison was right."""
        with self._write() as c:
            row = c.execute("SELECT id FROM comparisons WHERE run_id = ? AND step_id = ? "
                            "ORDER BY id DESC LIMIT 1", (run_id, step_id)).fetchone()
            if row is None:
                raise StoreError(f"step '{step_id}' of run {run_id} has not been compared",
                                 f"compare it first: podium compare {run_id} {step_id}")
            c.execute("UPDATE comparisons SET verdict = ? WHERE id = ?", (verdict, row[0]))

    def judged_pairs(self) -> list[dict[str, Any]]:
        """Every comparison a person judged, with its prompt, oldest first."""
        cur = self.conn.execute("SELECT run_id, step_id, prompt, original_tier, tier, "
                                "verdict, created_at FROM comparisons WHERE verdict IS NOT "
                                "NULL AND prompt IS NOT NULL ORDER BY id")
        cols = [d[0] for d in cur.description]
        return [dict(zip(cols, row, strict=True)) for row in cur.fetchall()]

    def daily_usage(self, days: int, *, now: float | None = None) -> list[tuple[str, int, float]]:
        """(local date, tokens, USD) of each of the last `days` days, oldest first, days
        without steps included as zeros."""
        import datetime as dt

        today = dt.date.fromtimestamp(now if now is not None else time.time())
        first = today - dt.timedelta(days=days - 1)
        since = dt.datetime.combine(first, dt.time()).timestamp()
        rows = self.conn.execute(
            "SELECT date(finished_at, 'unixepoch', 'localtime') AS day, "
            "COALESCE(SUM(input_tokens + output_tokens), 0), COALESCE(SUM(cost), 0) "
            "FROM steps WHERE finished_at >= ? GROUP BY day", (since,)).fetchall()
        found = {r[0]: (int(r[1]), float(r[2])) for r in rows}
        out = []
        for i in range(days):
            day = (first + dt.timedelta(days=i)).isoformat()
            tokens, cost = found.get(day, (0, 0.0))
            out.append((day, tokens, cost))
        return out

    def cost_since(self, since: float) -> float:
        """USD spent by steps that finished after `since` (epoch seconds)."""
        row = self.conn.execute("SELECT COALESCE(SUM(cost), 0) FROM steps WHERE "
                                "finished_at >= ?", (since,)).fetchone()
        return float(row[0])
