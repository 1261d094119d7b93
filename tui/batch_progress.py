"""Progress of a batch: a bar with counts, rate and ETA on a terminal (rich); one
plain line per finished row in a pipe, so a log or a script can follow it."""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from podium.tui.progress import ICONS

if TYPE_CHECKING:  # the core classes load when the batch starts
    from podium.core.batch.executor import RowOutcome


@dataclass
class BatchProgress:
    """Counts rows as they land; the executor's `landed` callback."""

    total: int  # rows this pass will run
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    live: bool | None = None
    quiet: bool = False
    seen: Counter[str] = field(default_factory=Counter)
    started: float = field(default_factory=time.monotonic)
    _bar: Any = None
    _task: Any = None

    def __post_init__(self) -> None:
        if self.quiet:
            self.live = False
        elif self.live is None:
            self.live = self.stream.isatty()

    def __enter__(self) -> BatchProgress:
        if self.live:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(TextColumn("rows"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                 TextColumn("eta"), TimeRemainingColumn(),
                                 TextColumn("{task.fields[counts]}"),
                                 console=Console(file=self.stream), refresh_per_second=4)
            self._bar.__enter__()
            self._task = self._bar.add_task("batch", total=self.total, rate="", counts="")
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    @property
    def done(self) -> int:
        """Rows landed this pass."""
        return sum(self.seen.values())

    def rate(self) -> float:
        """Rows per second this pass."""
        return self.done / max(time.monotonic() - self.started, 1e-9)

    def __call__(self, outcome: RowOutcome) -> None:
        self.seen[outcome.status] += 1
        if self._bar is not None:
            counts = " ".join(f"{ICONS.get(s, '?')}{n}" for s, n in sorted(self.seen.items()))
            self._bar.update(self._task, advance=1, rate=f"{self.rate():.1f}/s", counts=counts)
            if outcome.status not in ("succeeded", "waiting"):
                self._bar.console.print(f"  {ICONS.get(outcome.status, '?')} row "
                                        f"{outcome.index} ({outcome.key}): {outcome.error}",
                                        markup=False, highlight=False)
        elif not self.quiet:
            extra = f"  — {outcome.error}" if outcome.error else ""
            run = f"run {outcome.run_id}" if outcome.run_id else "no run"
            self.stream.write(f"  {ICONS.get(outcome.status, '?')} row {outcome.index:<5} "
                              f"{outcome.key:<12} {outcome.status:<10} {run}  "
                              f"{outcome.seconds:.2f}s  [{self.done}/{self.total}]{extra}\n")
            self.stream.flush()
