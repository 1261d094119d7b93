"""One run: its steps in plan order with their state, and the selected step's output,
model, routing reasons, tokens, latency, cost, attempts, errors and stale marks. A
running step's text streams in. Edit an output, rerun what became stale, resume."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from podium.core.events import StepNote, StepText
from podium.core.store import StepRecord
from podium.tui.data import RunView
from podium.tui.messages import EngineEvent
from podium.tui.screens.base import Cells, LiveScreen, sync_table, under_cursor
from podium.tui.screens.runs import GLYPHS


def describe(step: StepRecord, streamed: str = "") -> Text:
    """The detail pane's text for one step."""
    out = Text()
    out.append(f"{step.step_id}", style="bold")
    out.append(f"  {step.kind} · {step.status}")
    if step.version and step.version > 1:
        out.append(f" · edited (version {step.version})", style="yellow")
    out.append("\n")
    if step.stale:
        out.append(f"stale: {step.stale}\n", style="yellow")
    if step.model:
        out.append(f"model {step.model}" + (f" ({step.tier})" if step.tier else ""))
    tokens = step.input_tokens + step.output_tokens
    if tokens:
        out.append(f" · {step.input_tokens} in + {step.output_tokens} out tokens")
    if step.latency_ms is not None:
        out.append(f" · {step.latency_ms / 1000:.2f}s")
    if step.cost:
        out.append(f" · ${step.cost:.5f}")
    if step.attempts > 1:
        out.append(f" · {step.attempts} attempts")
    out.append("\n")
    for reason in (step.route or {}).get("reasons", []):
        out.append(f"  why: {reason}\n", style="dim")
    if step.reason:
        out.append(f"{step.reason}\n", style="dim")
    if step.error:
        out.append(f"error: {step.error}\n", style="red")
        if step.hint:
            out.append(f"hint: {step.hint}\n")
    out.append("\n")
    if step.has_output:
        value = step.output
        out.append(value if isinstance(value, str) else
                   json.dumps(value, indent=2, ensure_ascii=False))
    elif streamed or step.partial_output:
        out.append(streamed or step.partial_output or "", style="italic")
    return out


def timeline(steps: list[StepRecord], width: int) -> Text:
    """A small Gantt chart: one bar per step that ran, from its start to its end on a
    shared time axis, so a person sees where the time went."""
    ran = [s for s in steps if s.started_at]
    if not ran:
        return Text("")
    start = min(s.started_at or 0.0 for s in ran)
    end = max((s.finished_at or s.started_at or 0.0) for s in ran)
    span = max(end - start, 1e-3)
    label = min(max(len(s.step_id) for s in ran), 14)
    bars = max(width - label - 10, 10)
    out = Text(f"timeline · {span:.2f}s\n", style="bold")
    shown = ran if len(ran) <= 12 else sorted(
        ran, key=lambda s: (s.finished_at or end) - (s.started_at or 0.0))[-12:]
    for s in sorted(shown, key=lambda s: s.started_at or 0.0):
        a = int(((s.started_at or start) - start) / span * bars)
        b = max(a + 1, int(((s.finished_at or end) - start) / span * bars))
        style = {"succeeded": "green", "failed": "red", "running": "yellow"}.get(s.status,
                                                                                "dim")
        out.append(f"{s.step_id[:label]:<{label}} ")
        out.append(" " * a + "█" * (b - a), style=style)
        out.append(f" {(s.finished_at or end) - (s.started_at or start):.2f}s\n")
    if len(ran) > len(shown):
        out.append(f"(the {len(shown)} longest of {len(ran)} steps)\n", style="dim")
    return out


class RunScreen(LiveScreen):
    """The steps of one run and the selected step's detail."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("e", "edit", "Edit output"),
                Binding("r", "rerun", "Rerun stale"),
                Binding("u", "resume", "Resume"),
                Binding("o", "compare", "Other tier"),
                Binding("x", "cancel_run", "Cancel")]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.view: RunView | None = None
        self.streamed: dict[str, str] = {}
        self.shown: dict[str, Cells] = {}
        self._due = False  # a read is scheduled after engine events

    def compose(self) -> ComposeResult:
        yield Header()
        with Horizontal():
            with Vertical(id="left"):
                yield DataTable(id="steps", cursor_type="row")
                yield Static(id="timeline")
            with VerticalScroll(id="detail-box"):
                yield Static(id="detail")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.focus()
        super().on_mount()

    def fetch(self) -> RunView:
        return self.podium.reader.run(self.run_id)

    def show(self, data: Any) -> None:
        self.view = data
        run = data.run
        self.run_id = run.id
        self.title = f"run {run.id}"
        self.sub_title = f"{run.recipe_name} · {run.shown_status}"
        table = self.query_one(DataTable)
        if not table.columns:
            # Fixed widths, the step column as wide as the longest id: a table of
            # hundreds of steps is then not measured cell by cell each time it is
            # filled (most of the time of opening a long run).
            longest = max((len(s.step_id) for s in data.steps), default=4)
            for label, width in (("", 1), ("step", min(max(longest, 4), 24)),
                                 ("status", 9), ("kind", 8), ("model", 10), ("tokens", 6),
                                 ("took", 6)):
                table.add_column(label, width=width)
        rows: dict[str, Cells] = {
            s.step_id: (GLYPHS.get(s.status, "?"), s.step_id, s.status, s.kind,
                        s.model or "-", str(s.input_tokens + s.output_tokens) if
                        s.input_tokens + s.output_tokens else "-",
                        f"{s.latency_ms / 1000:.2f}s" if s.latency_ms is not None else "-")
            for s in data.steps}
        self.shown = sync_table(table, rows, self.shown)
        drawn = self.query_one("#timeline", Static)
        drawn.update(timeline(data.steps, drawn.content_size.width or 40))
        self._detail()

    def selected(self) -> StepRecord | None:
        """The step under the cursor."""
        return under_cursor(self.query_one(DataTable), self.view.steps if self.view else [])

    def _detail(self) -> None:
        step = self.selected()
        self.query_one("#detail", Static).update(
            describe(step, self.streamed.get(step.step_id, "")) if step else "")

    @on(DataTable.RowHighlighted)
    def _moved(self) -> None:
        self._detail()

    @on(EngineEvent)
    def _event(self, message: EngineEvent) -> None:
        event = message.event
        if getattr(event, "run_id", None) != self.run_id:
            return
        if isinstance(event, StepNote):
            self.streamed[event.step_id] = f"({event.text})\n"
            step = self.selected()
            if step is not None and step.step_id == event.step_id:
                self._detail()
            return
        if isinstance(event, StepText):
            self.streamed[event.step_id] = self.streamed.get(event.step_id, "") + event.text
            step = self.selected()
            if step is not None and step.step_id == event.step_id:
                self._detail()
            return
        if not self._due:  # a burst of events (a fan-out starting) is one read, soon
            self._due = True
            self.set_timer(0.1, self._catch_up)

    def _catch_up(self) -> None:
        self._due = False
        self.refresh_data(force=True)

    def action_edit(self) -> None:
        step = self.selected()
        if step is None:
            return
        if not step.has_output:
            self.notify(f"'{step.step_id}' has no output to edit ({step.status})",
                        severity="warning")
            return
        self.podium.edit_step(self.run_id, step)

    def action_rerun(self) -> None:
        self.podium.rerun(self.run_id)

    def action_resume(self) -> None:
        self.podium.resume(self.run_id)

    def action_compare(self) -> None:
        step = self.selected()
        if step is not None:
            self.podium.compare(self.run_id, step.step_id)

    def action_cancel_run(self) -> None:
        self.podium.cancel(self.run_id)
