"""Agent transcripts: every message an agent or a team wrote or read, and each tool
call's result (arguments, duration, error, truncation) beside the call it answers.
One row per message, committed as it happens, so a killed agent resumes from here."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from podium.core.store.records import dumps


@dataclass
class AgentEntry:
    """One stored message of a transcript. `role` is system, user, assistant or tool
    (a model's or a tool's words), or `stop` (why the agent or team stopped) and
    `note` (what Podium told the transcript: a speaker chosen, a conflict settled)."""

    role: str
    content: str = ""
    speaker: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)  # {id, name, arguments}
    tool_call_id: str | None = None
    tool_name: str | None = None
    arguments: dict[str, Any] | None = None
    error: str | None = None
    truncated: bool = False
    duration_ms: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost: float = 0.0
    seq: int = 0
    created_at: float = 0.0

    def to_json(self) -> dict[str, Any]:
        """The entry as `podium show --json` gives it (empty fields left out)."""
        out: dict[str, Any] = {"seq": self.seq, "role": self.role}
        for key in ("speaker", "content", "tool_calls", "tool_call_id", "tool_name",
                    "arguments", "error", "duration_ms"):
            value = getattr(self, key)
            if value not in (None, "", []):
                out[key] = value
        if self.truncated:
            out["truncated"] = True
        if self.input_tokens or self.output_tokens:
            out["tokens"] = [self.input_tokens, self.output_tokens]
        if self.cost:
            out["cost"] = self.cost
        return out


_COLUMNS = ("seq", "speaker", "role", "content", "tool_calls", "tool_call_id", "tool_name",
            "arguments", "error", "truncated", "duration_ms", "input_tokens",
            "output_tokens", "cost", "created_at")


class AgentLog:
    """The `Store`'s part for agent transcripts."""

    conn: sqlite3.Connection

    def _write(self, run_id: str | None = None) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the Store's

    def add_messages(self, run_id: str, step_id: str, entries: list[AgentEntry]) -> None:
        """Append entries to a step's transcript in one transaction (numbered on)."""
        if not entries:
            return
        now = time.time()
        with self._write(run_id) as c:
            row = c.execute("SELECT COALESCE(MAX(seq), 0) FROM agent_messages WHERE "
                            "run_id = ? AND step_id = ?", (run_id, step_id)).fetchone()
            seq = int(row[0])
            rows = []
            for e in entries:
                seq += 1
                e.seq, e.created_at = seq, now
                rows.append((run_id, step_id, seq, e.speaker, e.role, e.content,
                             dumps(e.tool_calls) if e.tool_calls else None, e.tool_call_id,
                             e.tool_name, None if e.arguments is None else dumps(e.arguments),
                             e.error, int(e.truncated), e.duration_ms, e.input_tokens,
                             e.output_tokens, e.cost, now))
            c.executemany(f"INSERT INTO agent_messages (run_id, step_id, {', '.join(_COLUMNS)})"
                          f" VALUES ({', '.join('?' * (len(_COLUMNS) + 2))})", rows)

    def messages(self, run_id: str, step_id: str) -> list[AgentEntry]:
        """A step's transcript, in order (empty if it has none)."""
        cur = self.conn.execute(f"SELECT {', '.join(_COLUMNS)} FROM agent_messages WHERE "
                                "run_id = ? AND step_id = ? ORDER BY seq", (run_id, step_id))
        out = []
        for r in cur.fetchall():
            d = dict(zip(_COLUMNS, r, strict=True))
            d["tool_calls"] = json.loads(d["tool_calls"]) if d["tool_calls"] else []
            d["arguments"] = json.loads(d["arguments"]) if d["arguments"] else None
            d["truncated"] = bool(d["truncated"])
            for k in ("input_tokens", "output_tokens"):
                d[k] = d[k] or 0
            d["cost"] = d["cost"] or 0.0
            d["speaker"] = d["speaker"] or ""
            d["content"] = d["content"] or ""
            out.append(AgentEntry(**d))
        return out

    def transcript_steps(self, run_id: str) -> set[str]:
        """The steps of a run that have a transcript."""
        rows = self.conn.execute("SELECT DISTINCT step_id FROM agent_messages WHERE "
                                 "run_id = ?", (run_id,)).fetchall()
        return {r[0] for r in rows}
