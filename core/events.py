"""Typed events the engine emits while a run goes on.

Front ends subscribe with a callback (`Engine(on_event=...)`); the CLI draws a live
table from them, the TUI turns them into messages. Events are for watching; the
store is the record.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Event:
    """Base of every event."""

    run_id: str


@dataclass(frozen=True, slots=True)
class RunStarted(Event):
    """A run (or a resume of one) begins; `steps` in plan order."""

    recipe: str
    steps: tuple[str, ...]
    done: dict[str, str] = field(default_factory=dict)  # step -> status, for a resume


@dataclass(frozen=True, slots=True)
class StepStarted(Event):
    """An attempt of a step begins."""

    step_id: str
    kind: str
    attempt: int


@dataclass(frozen=True, slots=True)
class StepText(Event):
    """A piece of streamed model text."""

    step_id: str
    text: str


@dataclass(frozen=True, slots=True)
class StepNote(Event):
    """What a running step is waiting on, for a person watching: the local model's turn,
    a retry of a model call, a fallback to another model."""

    step_id: str
    text: str


@dataclass(frozen=True, slots=True)
class StepRetrying(Event):
    """An attempt failed and another follows after `delay` seconds."""

    step_id: str
    attempt: int
    error: str
    delay: float


@dataclass(frozen=True, slots=True)
class StepFinished(Event):
    """A step reached a final state: succeeded, failed, skipped or cancelled."""

    step_id: str
    status: str
    output: Any = None
    model: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    latency_ms: float | None = None
    error: str | None = None
    reason: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewWaiting(Event):
    """A step waits for a person: a review gate (kind "review") or the run's spent
    budget (kind "budget"). Decide with `podium review`."""

    step_id: str
    of_step: str
    kind: str = "review"


@dataclass(frozen=True, slots=True)
class RunFinished(Event):
    """The run ended, or paused with status "waiting" for reviews."""

    status: str
    outputs: dict[str, Any] | None
    error: str | None = None
