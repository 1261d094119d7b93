"""Live progress of a run on the terminal, drawn from engine events.

On a terminal: a table redrawn in place (rich.live), one row per step with its
status, model, tokens, time and the latest streamed text. Elsewhere (pipes, CI):
one plain line per finished step.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from podium.core.events import Event


ICONS = {"pending": "·", "running": "▶", "succeeded": "✓", "failed": "✗", "skipped": "↷",
         "cancelled": "■", "retrying": "↻", "waiting": "⏸"}


@dataclass
class Row:
    """What is shown of one step."""

    status: str = "pending"
    kind: str = ""
    model: str = ""
    tokens: int = 0
    started: float | None = None
    seconds: float | None = None
    text: str = ""
    note: str = ""
    waiting_on: str = ""  # what a running step waits for (a turn, a retry, a fallback)
    fell_back: str = ""  # kept to the end: the answer came from another model


@dataclass
class Progress:
    """Collects events; draws them live or as lines."""

    stream: TextIO = field(default_factory=lambda: sys.stderr)
    live: bool | None = None
    quiet: bool = False  # record only (the run id, for a Ctrl-C message)
    run_id: str | None = None
    rows: dict[str, Row] = field(default_factory=dict)
    _live: Any = None
    _on_term: Callable[[], None] | None = None  # puts SIGTERM's handler back

    def __post_init__(self) -> None:
        if self.quiet:
            self.live = False
        elif self.live is None:
            self.live = self.stream.isatty()

    def __enter__(self) -> Progress:
        if self.live:
            from rich.console import Console
            from rich.live import Live

            console = Console(file=self.stream)
            self._live = Live(self._table(), console=console, refresh_per_second=8,
                              transient=False)
            self._live.__enter__()  # hides the cursor until __exit__
            self._on_term = _show_cursor_on_sigterm(self.stream)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._live is not None:
            self._live.update(self._table())
            self._live.__exit__(*exc)
        if self._on_term is not None:
            self._on_term()

    def __call__(self, event: Event) -> None:
        """The engine's `on_event` callback."""
        # Imported here, not at the top: `podium --help` reaches this module through the
        # CLI's views and should not pay for the engine's event classes.
        from podium.core.events import (
            RunFinished,
            RunStarted,
            StepFinished,
            StepNote,
            StepRetrying,
            StepStarted,
            StepText,
        )

        self.run_id = event.run_id
        if isinstance(event, RunStarted):
            for sid in event.steps:
                self.rows.setdefault(sid, Row(status=event.done.get(sid, "pending")))
            if not self.live:
                resumed = f", {len(event.done)} already done" if event.done else ""
                self._line(f"run {event.run_id} · {event.recipe} · "
                           f"{plural(len(event.steps), 'step')}{resumed}")
        elif isinstance(event, StepStarted):
            row = self.rows.setdefault(event.step_id, Row())
            row.status, row.kind, row.started, row.text = "running", event.kind, \
                time.monotonic(), ""
            row.waiting_on = ""
        elif isinstance(event, StepText):
            row = self.rows[event.step_id]
            row.text = (row.text + event.text)[-200:]
            row.waiting_on = ""  # it answers now
        elif isinstance(event, StepNote):
            row = self.rows.setdefault(event.step_id, Row())
            row.waiting_on = event.text
            if event.text.startswith("fell back"):
                row.fell_back = event.text
            if not self.live:
                self._line(f"  … {event.step_id}: {event.text}")
        elif isinstance(event, StepRetrying):
            row = self.rows[event.step_id]
            row.status, row.note = "retrying", f"retry in {event.delay:.1f}s: {event.error}"
            if not self.live:
                self._line(f"  ↻ {named(event.step_id, event.error)} "
                           f"(retry in {event.delay:.1f}s)")
        elif isinstance(event, StepFinished):
            self._finished(event)
        elif isinstance(event, RunFinished) and not self.live:
            pass
        if self._live is not None:
            self._live.update(self._table())

    def _finished(self, event: Any) -> None:
        row = self.rows.setdefault(event.step_id, Row())
        row.status = event.status
        row.model = event.model or ""
        row.tokens = event.input_tokens + event.output_tokens
        if event.latency_ms is not None:
            row.seconds = event.latency_ms / 1000
        elif row.started is not None:
            row.seconds = time.monotonic() - row.started
        row.note = event.error or event.reason or ""
        row.waiting_on = ""
        if event.status == "succeeded":
            row.text = preview(event.output)
            if row.fell_back and not row.note:
                row.note = row.fell_back
        if not self.live:
            bits = [f"  {ICONS.get(event.status, '?')} {event.step_id:<18} {event.status:<9}"]
            if row.model:
                bits.append(row.model)
            if row.tokens:
                bits.append(f"{row.tokens} tok")
            if event.latency_ms is not None:
                bits.append(f"{event.latency_ms / 1000:.2f}s")
            if row.note:
                bits.append(f"— {row.note}")
            self._line("  ".join(bits))

    def _line(self, text: str) -> None:
        if not self.quiet:
            print(text, file=self.stream, flush=True)

    def _table(self) -> Any:
        # Cells are Text, never markup: step output may contain "[/]" or "[bold]".
        from rich.table import Table
        from rich.text import Text

        table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
        for col in ("", "step", "status", "model", "tokens", "time", ""):
            table.add_column(col, no_wrap=col != "")
        now = time.monotonic()
        for sid, row in self.rows.items():
            seconds = row.seconds if row.seconds is not None else (
                now - row.started if row.started is not None and row.status == "running"
                else None)
            style = {"failed": "red", "succeeded": "green", "skipped": "dim",
                     "running": "cyan", "retrying": "yellow",
                     "waiting": "yellow"}.get(row.status, "")
            tail = row.note if row.status in ("failed", "skipped", "retrying", "waiting") \
                else row.waiting_on or (f"({row.fell_back}) " if row.fell_back else "") + row.text
            table.add_row(ICONS.get(row.status, "?"), Text(sid), Text(row.status, style=style),
                          Text(row.model), str(row.tokens or ""),
                          f"{seconds:.1f}s" if seconds is not None else "",
                          Text(_one_line(tail, 60)))
        return table


def _show_cursor_on_sigterm(stream: TextIO) -> Callable[[], None]:
    """While live progress hides the cursor, a SIGTERM (plain `kill`) shows it again
    before the process dies as it would have: the run is left for `podium resume`,
    exactly as without this. (kill -9 cannot be caught: the next command shows the
    cursor, see `podium.tui.cli.show_cursor`.) Returns what puts the old handler back."""
    import os
    import signal

    def term(signum: int, frame: Any) -> None:
        try:
            stream.write("\x1b[?25h")
            stream.flush()
        except (OSError, ValueError):
            pass
        restore()
        os.kill(os.getpid(), signal.SIGTERM)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if before is None else before)

    try:
        before = signal.signal(signal.SIGTERM, term)
    except ValueError:  # not the main thread: leave signals alone
        return lambda: None
    return restore


def _one_line(text: str, width: int) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= width else "…" + flat[-(width - 1):]


def plural(n: int, word: str, many: str | None = None) -> str:
    """`1 step`, `2 steps`: a count with its noun agreeing."""
    return f"{n} {word if n == 1 else many or word + 's'}"


def named(step_id: str, error: str | None) -> str:
    """`step: error`, unless the error already starts with the step's name (many do:
    `bug_report.template: ...`), which would show it twice."""
    text = error or ""
    if text.startswith((f"{step_id}:", f"{step_id}.", f"{step_id}[")):
        return text
    return f"{step_id}: {text}"


def preview(value: Any, width: int = 60) -> str:
    """A one-line view of an output."""
    if value is None:
        return ""
    if not isinstance(value, str):
        from podium.core.store import dumps

        value = dumps(value)
    flat = " ".join(value.split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"
