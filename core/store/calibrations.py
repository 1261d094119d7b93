"""Calibrations: a local model's answers to the calibration suite, stored one by one so
a calibration killed half-way continues, the router fits made from them, and the
outcomes of its answers that runs see later."""

from __future__ import annotations

import json
import sqlite3
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any


class Calibrations:
    """The `Store`'s part for `podium calibrate`."""

    conn: sqlite3.Connection
    path: Path

    def _write(self, run_id: str | None = None) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the Store's

    def add_calibration_answer(self, fingerprint: str, model: str, answerer: str, prompt: str,
                               reply: str, right: bool, *, signals: dict[str, float] | None,
                               finish_reason: str | None, cost: float,
                               seconds: float) -> None:
        """Keep one answer to a suite prompt (`answerer`: "local", or a remote model's
        name) at once: resuming skips it."""
        with self._write() as c:
            c.execute("INSERT OR REPLACE INTO calibration_answers (fingerprint, model, "
                      "answerer, prompt, reply, right, signals, finish_reason, cost, "
                      "seconds, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                      (fingerprint, model, answerer, prompt, reply, int(right),
                       json.dumps(signals) if signals is not None else None, finish_reason,
                       cost, seconds, time.time()))

    def calibration_answers(self, fingerprint: str, answerer: str) -> dict[str, dict[str, Any]]:
        """Prompt -> the stored answer of `answerer` for the model file `fingerprint`."""
        cur = self.conn.execute("SELECT prompt, reply, right, signals, finish_reason, cost, "
                                "seconds FROM calibration_answers WHERE fingerprint = ? AND "
                                "answerer = ?", (fingerprint, answerer))
        return {p: {"reply": r, "right": bool(ok), "finish_reason": f, "cost": cost,
                    "seconds": s, "signals": json.loads(sig) if sig else None}
                for p, r, ok, sig, f, cost, s in cur.fetchall()}

    def save_router_fit(self, model: str, fingerprint: str, fit: dict[str, Any],
                        examples: list[tuple[str, bool]], summary: dict[str, Any]) -> None:
        """Store a fit made for `model` (its file's `fingerprint`)."""
        with self._write() as c:
            c.execute("INSERT INTO router_fits (model, fingerprint, created_at, fit, "
                      "examples, summary) VALUES (?, ?, ?, ?, ?, ?)",
                      (model, fingerprint, fit.get("created_at") or time.time(),
                       json.dumps(fit), json.dumps(examples, ensure_ascii=False),
                       json.dumps(summary)))

    def router_fit(self, *, fingerprint: str | None = None,
                   model: str | None = None) -> dict[str, Any] | None:
        """The newest stored fit for a model file (by fingerprint) or a model name:
        {model, fingerprint, created_at, fit, examples, summary}, or None."""
        where, arg = ("fingerprint", fingerprint) if fingerprint is not None else ("model", model)
        row = self.conn.execute(f"SELECT model, fingerprint, created_at, fit, examples, summary "
                                f"FROM router_fits WHERE {where} = ? ORDER BY id DESC LIMIT 1",
                                (arg,)).fetchone()
        if row is None:
            return None
        return {"model": row[0], "fingerprint": row[1], "created_at": row[2],
                "fit": json.loads(row[3]), "examples": json.loads(row[4]),
                "summary": json.loads(row[5])}

    def add_route_outcome(self, fingerprint: str, model: str, prompt: str, right: bool,
                          source: str, run_id: str | None, *, keep: int) -> None:
        """Keep an outcome of the local model's answer seen at run time, and only the
        newest `keep` of the model file's (the router loads fewer)."""
        with self._write() as c:
            c.execute("INSERT INTO route_outcomes (fingerprint, model, prompt, right, source, "
                      "run_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                      (fingerprint, model, prompt, int(right), source, run_id, time.time()))
            c.execute("DELETE FROM route_outcomes WHERE fingerprint = ? AND id <= (SELECT id "
                      "FROM route_outcomes WHERE fingerprint = ? ORDER BY id DESC LIMIT 1 "
                      "OFFSET ?)", (fingerprint, fingerprint, keep))

    def route_outcomes(self, fingerprint: str, limit: int) -> list[tuple[str, bool, str]]:
        """(prompt, right, source) of the model file's newest outcomes, at most `limit`,
        one per prompt: the latest (an ask asked again may have gone the other way)."""
        rows = self.conn.execute(
            "SELECT prompt, right, source FROM route_outcomes WHERE id IN (SELECT MAX(id) "
            "FROM route_outcomes WHERE fingerprint = ? GROUP BY prompt) ORDER BY id DESC "
            "LIMIT ?", (fingerprint, limit)).fetchall()
        return [(p, bool(r), s) for p, r, s in reversed(rows)]

    def calibrated(self) -> dict[str, tuple[str, float]]:
        """Model name -> (fingerprint, created_at) of its newest fit."""
        rows = self.conn.execute("SELECT model, fingerprint, created_at FROM router_fits "
                                 "ORDER BY id").fetchall()
        return {m: (f, t) for m, f, t in rows}
