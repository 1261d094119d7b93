"""What a step runner receives (`StepContext`) and returns (`StepResult`)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from podium.core.models.caller import ModelCaller
from podium.core.models.provider import Message
from podium.core.store import Status

if TYPE_CHECKING:
    from podium.core.events import Event
    from podium.core.recipe.schema import Recipe
    from podium.core.review.gate import Reviewed
    from podium.core.steps.durable import ItemJournal
    from podium.core.store import Store
    from podium.core.tools.catalog import ToolSource


@dataclass
class StepResult:
    """What one attempt of a step came to: its output, or `waiting` for a person
    (with the reason)."""

    output: Any
    status: str = Status.SUCCEEDED  # or Status.WAITING
    reason: str | None = None


class RunAccess(Protocol):
    """What a step may ask of the run it is part of (review gates use it): the store,
    a way to announce events, and the reviewed step's work made again."""

    store: Store
    recipe: Recipe  # the run's (pinned) recipe: its [tools] and where its file is
    tool_sources: ToolSource | None  # tools the front end provides (HTTP, MCP)

    def emit(self, event: Event) -> None:
        """Announce an event of this run."""

    def reviewed(self, ctx: StepContext) -> Reviewed:
        """How the gate running in `ctx` remakes the output it reviews."""


@dataclass
class StepContext:
    """Everything one attempt of one step may use. No global state, so steps can run
    anywhere (a thread, another process) given a context."""

    run_id: str
    step_id: str
    values: dict[str, Any]  # template context: inputs, steps
    caller: ModelCaller  # every model call of the attempt goes through it
    # What reviewers said of earlier outputs of this step: (output, feedback), oldest first.
    feedback: list[tuple[Any, str]] = field(default_factory=list)
    run: RunAccess | None = None
    # Where a map's or an ensemble's finished items are kept (None: nowhere, e.g. one
    # item made again for a review).
    items: ItemJournal | None = None

    def with_feedback(self, messages: list[Message]) -> list[Message]:
        """The conversation with each rejected answer and the reviewer's words appended,
        so the model revises its work instead of repeating it."""
        if not self.feedback:
            return messages
        out = list(messages)
        for previous, said in self.feedback:
            text = previous if isinstance(previous, str) else json.dumps(previous,
                                                                         ensure_ascii=False)
            out.append(Message("assistant", text))
            out.append(Message("user", "A reviewer rejected that answer"
                               + (f" and said: {said}" if said else ".")
                               + "\nWrite it again, following the feedback."))
        return out
