"""Which steps may start now: a ready queue over the plan's DAG.

Each step counts its unsettled dependencies; when one settles, its dependents'
counts drop, and a step whose count reaches zero joins the queue (in recipe order).
So deciding what to start costs work proportional to the edges, once, rather than
a rescan of every step after every finish.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from podium.core.recipe.plan import Plan
from podium.core.recipe.schema import Recipe
from podium.core.store import Status

SETTLED = frozenset({Status.SUCCEEDED, Status.FAILED, Status.SKIPPED})


@dataclass
class Schedule:
    """Step states of one run and the queue of steps whose dependencies are settled."""

    recipe: Recipe
    plan: Plan
    status: dict[str, str]
    reasons: dict[str, str] = field(default_factory=dict)
    chosen: dict[str, frozenset[str]] = field(default_factory=dict)
    _waiting: dict[str, int] = field(default_factory=dict)
    _ready: list[tuple[int, str]] = field(default_factory=list)
    _position: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._position = {s: i for i, s in enumerate(self.plan.order)}
        for sid in self.plan.order:
            self._waiting[sid] = sum(1 for d in self.plan.deps[sid]
                                     if self.status[d] not in SETTLED)
            if self.status[sid] == Status.PENDING and self._waiting[sid] == 0:
                heapq.heappush(self._ready, (self._position[sid], sid))

    def has_ready(self) -> bool:
        """Whether some step can be decided now."""
        return bool(self._ready)

    def pop(self) -> tuple[str, str]:
        """The next ready step and its verdict: "run", or the reason to skip it."""
        _, sid = heapq.heappop(self._ready)
        return sid, self._verdict(sid)

    def settle(self, sid: str, status: str, reason: str | None = None) -> None:
        """Record a final state and release the dependents it was holding."""
        self.status[sid] = status
        if reason:
            self.reasons[sid] = reason
        for dep in self.plan.dependents.get(sid, ()):
            self._waiting[dep] -= 1
            if self._waiting[dep] == 0 and self.status[dep] == Status.PENDING:
                heapq.heappush(self._ready, (self._position[dep], dep))

    def reopen(self, sid: str) -> None:
        """A step that waited (for a person) may be tried again: queue it."""
        self.status[sid] = Status.PENDING
        if self._waiting[sid] == 0:
            heapq.heappush(self._ready, (self._position[sid], sid))

    def _verdict(self, sid: str) -> str:
        governor = self.plan.governed_by.get(sid)
        if governor is not None:
            if self.status[governor] != Status.SUCCEEDED:  # no route was decided: do not guess
                return f"branch '{governor}' {self.status[governor]}"
            if sid not in self.chosen.get(governor, frozenset()):
                return f"not chosen by branch '{governor}'"
        deps = self.plan.deps[sid]
        bad = [d for d in sorted(deps) if self.status[d] != Status.SUCCEEDED]
        if not bad:
            return "run"
        if self.recipe.steps[sid].join == "any" and len(bad) < len(deps):
            return "run"
        d = bad[0]
        if self.status[d] == Status.SKIPPED:
            return f"'{d}' skipped" + (f" ({self.reasons[d]})" if d in self.reasons else "")
        return f"'{d}' failed"

    def failed(self) -> list[str]:
        """Steps that failed."""
        return [s for s in self.plan.order if self.status[s] == Status.FAILED]
