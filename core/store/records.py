"""What the store holds, as Python values: runs, steps, results to commit, review
items; and the small helpers every part of the store shares."""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import socket
import sqlite3
import time
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Status(StrEnum):
    """The states a run, a step or an attempt is stored in (equal to their strings)."""

    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"
    WAITING = "waiting"  # for a person: a review or a budget review
    CANCELLED = "cancelled"
    IN_DOUBT = "in_doubt"  # an attempt a killed process left running


TERMINAL_RUN = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)
HOST = socket.gethostname()


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
        if self.status != "running" or self.host != HOST or not self.pid:
            return False
        return not pid_alive(self.pid)

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
    _artifact: tuple[str, str] | None = field(default=None, repr=False, compare=False)

    def artifact(self) -> tuple[str, str]:
        """(content hash, canonical JSON) of the output, computed once: the store keeps
        the content under the hash, and cache keys of later steps use the hash."""
        if self._artifact is None:
            content = dumps(self.output)
            self._artifact = (hashlib.sha256(content.encode()).hexdigest(), content)
        return self._artifact


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
RUN_FIELDS = frozenset(RunRecord.__dataclass_fields__)
STEP_FIELDS = frozenset(StepRecord.__dataclass_fields__)


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is alive (a zombie is not)."""
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


def artifact_row(value: Any, now: float) -> tuple[str, str, int, float]:
    """(hash, content, size, created_at) of a value stored as a content-addressed
    artifact: canonical JSON, named by its SHA-256."""
    content = dumps(value)
    return hashlib.sha256(content.encode()).hexdigest(), content, len(content), now


def put_artifact(c: sqlite3.Connection, value: Any, now: float) -> str:
    """Store `value` once, whoever else stored the same content; return its hash."""
    row = artifact_row(value, now)
    c.execute("INSERT OR IGNORE INTO artifacts (hash, content, size, created_at) "
              "VALUES (?, ?, ?, ?)", row)
    return row[0]

