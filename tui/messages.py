"""App-wide messages. They carry core objects, never widgets."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from podium.core.events import Event
from podium.core.run.loop import RunResult


class EngineEvent(Message):
    """Something happened in a run this app's engine executes."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


@dataclass
class RunEnded(Message):
    """A run this app started or continued came to rest (finished, failed, waiting)."""

    result: RunResult | None

    def __post_init__(self) -> None:
        super().__init__()


@dataclass
class Failed(Message):
    """Work in a worker failed in an expected way: say so in a notification."""

    message: str
    hint: str | None = None

    def __post_init__(self) -> None:
        super().__init__()
