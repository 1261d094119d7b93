"""What the app shows, read from the store off the UI thread.

Screens never touch the store: they ask a `Reader` from a thread worker and get plain
snapshots back (core records). The reader has its own SQLite connection, so reads in
a worker never share a transaction with the engine writing on the app's loop, and
`version()` answers from `PRAGMA data_version` whether anyone (this process or
another) wrote since a screen last looked: a refresh costs nothing when nothing happened.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.core.store import ReviewRecord, RunRecord, StepRecord, Store


@dataclass(frozen=True)
class RunView:
    """A run with its steps, for the run screen: each step's attempts (oldest first)
    and, for a step edited by hand, its earlier versions."""

    run: RunRecord
    steps: list[StepRecord]
    reviews: list[ReviewRecord]
    attempts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    versions: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    transcripts: dict[str, list[Any]] = field(default_factory=dict)  # agent/team messages


class Reader:
    """Read-only access to a database for one app, safe to call from worker threads."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._store: Store | None = None
        self._lock = threading.Lock()  # one read at a time on this connection
        self._plans: dict[str, dict[str, list[str]]] = {}  # recipe hash -> deps

    def _open(self) -> Store:
        if self._store is None:
            self._store = Store(self.path)
        return self._store

    def version(self) -> int:
        """A number that changes whenever anyone commits to the database (SQLite's
        `data_version`, with this connection's own reads never counting as changes)."""
        with self._lock:
            row = self._open().conn.execute("PRAGMA data_version").fetchone()
            return int(row[0])

    def runs(self, limit: int = 500, status: str | None = None) -> list[RunRecord]:
        """The newest runs first."""
        with self._lock:
            return self._open().list_runs(limit=limit, status=status or None)

    def run(self, run_id: str) -> RunView:
        """One run, its steps in plan order, its reviews, attempts, the versions of
        edited steps and the transcripts of agents and teams (raises `StoreError`)."""
        with self._lock:
            store = self._open()
            run = store.get_run(run_id)
            steps = store.get_steps(run.id)
            attempts: dict[str, list[dict[str, Any]]] = {}
            # The store has no reader for attempts; its table is read as views.py does.
            for row in store.db["attempts"].rows_where(
                    "run_id = ?", [run.id], order_by="step_id, number",
                    select="step_id, number, status, model, started_at, finished_at, "
                           "error, input_tokens, output_tokens, latency_ms"):
                attempts.setdefault(row["step_id"], []).append(row)
            versions = {s.step_id: store.step_versions(run.id, s.step_id)
                        for s in steps if (s.version or 1) > 1}
            transcripts = {step_id: store.messages(run.id, step_id)
                           for step_id in store.transcript_steps(run.id)}
            return RunView(run, steps, store.reviews(status=None, run_id=run.id),
                           attempts, versions, transcripts)

    def plan(self, run: RunRecord) -> dict[str, list[str]]:
        """The dependencies of the recipe version `run` ran (step -> the steps it
        needs), read and checked once per version."""
        from podium.core.recipe.load import pinned

        if run.recipe_hash not in self._plans:
            with self._lock:
                recipe = pinned(self._open(), run)
            where = {s: i for i, s in enumerate(recipe.plan.order)}
            self._plans[run.recipe_hash] = {
                s: sorted(recipe.plan.deps.get(s, ()), key=where.__getitem__)
                for s in recipe.plan.order}
        return self._plans[run.recipe_hash]

    def step_input(self, run: RunRecord, step: StepRecord) -> list[tuple[str, str]]:
        """What `step` was given: each of its templates rendered from what the run
        stored (`core.run.inputs.step_inputs`)."""
        from podium.core.run.inputs import step_inputs

        with self._lock:
            return step_inputs(self._open(), run, step.step_id)

    def queue(self) -> list[ReviewRecord]:
        """Pending reviews, oldest first."""
        with self._lock:
            return self._open().reviews()

    def chats(self, limit: int = 50) -> list[dict[str, Any]]:
        """Stored chats, newest first."""
        with self._lock:
            return self._open().list_chats(limit)

    def chat(self, chat_id: str) -> list[dict[str, Any]]:
        """One chat's messages in order (raises `StoreError`)."""
        with self._lock:
            return self._open().chat_messages(chat_id)

    def usage(self, days: int = 21) -> list[tuple[str, int, float]]:
        """Tokens and cost per day, oldest first."""
        with self._lock:
            return self._open().daily_usage(days)

    def spent_today(self) -> float:
        """USD spent since local midnight."""
        import datetime as dt

        midnight = dt.datetime.combine(dt.date.today(), dt.time()).timestamp()
        with self._lock:
            return self._open().cost_since(midnight)

    def value_checker(self, review: ReviewRecord) -> Callable[[str], str | None]:
        """A check of a value typed for `review`, usable on the UI thread: the reviewed
        step's shape is read here, once, so each keystroke costs no database read."""
        from podium.core.errors import PodiumError
        from podium.core.review.decisions import item_call, reviewed_step
        from podium.core.steps.values import parse_value

        with self._lock:
            _, step, _ = reviewed_step(self._open(), review)
        if step is None:
            return lambda text: None
        shaped = step if review.item is None else item_call(step)

        def check(text: str) -> str | None:
            try:
                parse_value(shaped, text, review.original, where=review.of_step)
            except PodiumError as e:
                return e.message
            return None

        return check

    def close(self) -> None:
        """Close the connection."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
