"""One run: its steps in plan order (or, `g`, as the dependency graph) with their
state, and the selected step's output, model, routing reasons, tokens, latency, cost,
attempts, errors, versions and stale marks. A running step's text streams in. Edit an
output, rerun what became stale, resume."""

from __future__ import annotations

import json
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Static, Tree
from textual.widgets.tree import TreeNode

from podium.core.errors import PodiumError
from podium.core.events import StepNote, StepText
from podium.core.store import RunRecord, StepRecord
from podium.tui.data import RunView
from podium.tui.messages import EngineEvent
from podium.tui.screens.base import (
    Cells,
    LiveScreen,
    PodiumFooter,
    PodiumHeader,
    alive,
    sync_table,
    under_cursor,
)
from podium.tui.screens.graph import Node, fill, label, nest
from podium.tui.screens.runs import GLYPHS
from podium.tui.transcript import transcript_lines


def _value(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2,
                                                          ensure_ascii=False)


def _clip(text: str, width: int = 60) -> str:
    line = " ".join(text.split())
    return line if len(line) <= width else line[:width - 1] + "…"


def history(attempts: list[dict[str, Any]], versions: list[dict[str, Any]]) -> Text:
    """A step's attempts (status, error, duration, model, tokens) and its earlier
    versions (outputs before an edit), for the detail pane."""
    out = Text()
    if len(attempts) > 1 or any(a["status"] not in ("succeeded", "running")
                                for a in attempts):
        out.append("attempts\n", style="bold")
        for a in attempts:
            took = a["latency_ms"] / 1000 if a["latency_ms"] is not None else \
                (a["finished_at"] - a["started_at"]) if a["finished_at"] and \
                a["started_at"] else None
            tokens = (a["input_tokens"] or 0) + (a["output_tokens"] or 0)
            out.append(f"  #{a['number']} {a['status']}",
                       style="red" if a["status"] == "failed" else "")
            out.append(f" · {took:.2f}s" if took is not None else "")
            out.append(f" · {a['model']}" if a["model"] else "")
            out.append(f" · {tokens} tokens" if tokens else "")
            out.append("\n")
            if a["error"]:
                out.append(f"     {_clip(a['error'], 70)}\n", style="red")
    if versions:
        out.append("versions\n", style="bold")
        for v in versions:
            by = f" by {v['created_by']}" if v["created_by"] else ""
            out.append(f"  v{v['version']} {v['source']}{by}: ")
            out.append(_clip(_value(v["output"])) + "\n", style="dim")
    return out


def _clip_long(text: str, limit: int = 4000) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text) - limit:,} more characters)"


def conversation(entries: list[Any]) -> Text:
    """An agent's or a team's messages and tool calls, one line each, as `podium show`
    prints them."""
    calls = sum(len(e.tool_calls) for e in entries if e.role == "assistant")
    turns = sum(1 for e in entries if e.role == "assistant")
    out = Text()
    out.append(f"transcript: {turns} model turns, {calls} tool calls\n", style="bold")
    for line, colour in transcript_lines(entries):
        out.append(f"  {line}\n", style=colour or "")
    return out


def describe(step: StepRecord, streamed: str = "", attempts: list[dict[str, Any]] | None
             = None, versions: list[dict[str, Any]] | None = None,
             transcript: list[Any] | None = None,
             given: list[tuple[str, str]] | None = None) -> Text:
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
    past = history(attempts or [], versions or [])
    if past:
        out.append(past)
    if transcript:
        out.append(conversation(transcript))
    if given:
        out.append("input\n", style="bold")
        for name, text in given:
            out.append(f"  {name}: ", style="dim")
            out.append(_clip_long(text) + "\n")
    out.append("\n")
    if step.has_output:
        if given or past or transcript:  # among other sections, say which one this is
            out.append("output\n", style="bold")
        out.append(_value(step.output))
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


# How long after an engine event the screen reads the run again: one read (and one
# repaint) per burst of events, soon enough to look live.
CATCH_UP_S = 0.3


class Pane(Static):
    """A `Static` that repaints only when its text changed: every update lays the
    screen out again, which during a fan-out's flood of events was most of the app's
    work and held key presses back. With `unwrapped` (its lines never wider than the
    pane, as the timeline's), a new text of as many lines repaints without a layout."""

    shown: Text | str = ""

    def __init__(self, *, id: str, unwrapped: bool = False) -> None:  # noqa: A002
        super().__init__(id=id)
        self.unwrapped = unwrapped

    def paint(self, text: Text | str) -> None:
        """Show `text`, unless it is what is shown."""
        if text != self.shown:
            same = str(text).count("\n") == str(self.shown).count("\n") and bool(self.shown)
            self.shown = text
            self.update(text, layout=not (self.unwrapped and same))


class RunScreen(LiveScreen):
    """The steps of one run (a table in plan order, or the dependency graph) and the
    selected step's detail."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("g", "graph", "Graph"),
                Binding("e", "edit", "Edit"),
                Binding("r", "rerun", "Rerun"),
                Binding("u", "resume", "Resume"),
                Binding("o", "compare", "Other tier"),
                Binding("x", "cancel_run", "Cancel")]

    def __init__(self, run_id: str) -> None:
        super().__init__()
        self.run_id = run_id
        self.view: RunView | None = None
        self.streamed: dict[str, str] = {}
        self.shown: dict[str, Cells] = {}
        self.graph_on = False
        self.deps: dict[str, list[str]] | None = None  # read when the graph is first shown
        self.drawn: dict[str, tuple[Node, TreeNode[str]]] = {}
        self._due = False  # a read is scheduled after engine events
        self.given: dict[tuple[str, int, str | None], list[tuple[str, str]]] = {}

    def compose(self) -> ComposeResult:
        yield PodiumHeader()
        with Horizontal():
            with Vertical(id="left"):
                yield DataTable(id="steps", cursor_type="row")
                tree: Tree[str] = Tree("plan", id="graph")
                tree.show_root = False
                tree.guide_depth = 3
                tree.display = False
                yield tree
                yield Pane(id="timeline", unwrapped=True)
            with VerticalScroll(id="detail-box"):
                yield Pane(id="detail")
        yield PodiumFooter()

    def on_mount(self) -> None:
        if not alive(self):  # popped before it mounted: nothing to set up
            return
        table = self.query_one(DataTable)
        table.focus()
        super().on_mount()

    def fetch(self) -> tuple[RunView, dict[str, list[str]] | None]:
        view = self.podium.reader.run(self.run_id)
        deps = self.podium.reader.plan(view.run) if self.graph_on else None
        return view, deps

    def failed(self, error: PodiumError) -> None:
        """A run that cannot be read at all (no such id) closes its screen again."""
        super().failed(error)
        if self.view is None and self.is_current:
            self.dismiss()

    def show(self, data: Any) -> None:
        view, deps = data
        self.view = view
        run = view.run
        self.run_id = run.id
        self.title = f"run {run.id}"
        self.sub_title = f"{run.recipe_name} · {run.shown_status}" + (
            f" · rerun of {run.parent_run_id}" if run.parent_run_id else "")
        table = self.query_one(DataTable)
        if not table.columns:
            # Fixed widths, the step column as wide as the longest id: a table of
            # hundreds of steps is then not measured cell by cell each time it is
            # filled (most of the time of opening a long run).
            longest = max((len(s.step_id) for s in view.steps), default=4)
            for name, width in (("", 1), ("step", min(max(longest, 4), 24)),
                                ("status", 9), ("model", 10), ("tokens", 6), ("took", 6)):
                table.add_column(name, width=width)
        rows: dict[str, Cells] = {
            s.step_id: (GLYPHS.get(s.status, "?"), s.step_id, s.status,
                        s.model or "-", str(s.input_tokens + s.output_tokens) if
                        s.input_tokens + s.output_tokens else "-",
                        f"{s.latency_ms / 1000:.2f}s" if s.latency_ms is not None else "-")
            for s in view.steps}
        self.shown = sync_table(table, rows, self.shown)
        if deps is not None:
            self._graph(view, deps)
        drawn = self.query_one("#timeline", Pane)
        drawn.paint(timeline(view.steps, drawn.content_size.width or 40))
        self._detail()

    def _graph(self, view: RunView, deps: dict[str, list[str]]) -> None:
        """Draw the dependency graph once, then relabel the steps whose state moved."""
        steps = {s.step_id: s for s in view.steps}
        tree = self.query_one("#graph", Tree)
        if self.deps is None:
            self.deps = deps
            self.drawn = fill(tree, nest([s.step_id for s in view.steps], deps), steps)
            row = self.query_one(DataTable).cursor_row
            at = view.steps[row].step_id if 0 <= row < len(view.steps) else None
            if at in self.drawn:
                tree.move_cursor(self.drawn[at][1])
            return
        for step_id, (node, drawn) in self.drawn.items():
            text = label(node, steps.get(step_id))
            if text != drawn.label:
                drawn.set_label(text)

    def action_graph(self) -> None:
        """Switch between the steps in plan order and the dependency graph."""
        step = self.selected()  # the same step stays selected in the other view
        self.graph_on = not self.graph_on
        table, tree = self.query_one(DataTable), self.query_one("#graph", Tree)
        table.display, tree.display = not self.graph_on, self.graph_on
        (tree if self.graph_on else table).focus()
        if self.graph_on and self.deps is None:
            self.refresh_data(force=True)
        elif step is not None:
            self._select(step.step_id)

    def _select(self, step_id: str) -> None:
        """Put the visible list's cursor on `step_id`."""
        if self.graph_on and step_id in self.drawn:
            self.query_one("#graph", Tree).move_cursor(self.drawn[step_id][1])
        elif not self.graph_on and self.view:
            ids = [s.step_id for s in self.view.steps]
            if step_id in ids:
                self.query_one(DataTable).move_cursor(row=ids.index(step_id))

    def selected(self) -> StepRecord | None:
        """The step under the cursor (of the table, or of the graph when shown)."""
        steps = self.view.steps if self.view else []
        if self.graph_on:
            node = self.query_one("#graph", Tree).cursor_node
            chosen = node.data if node is not None else None
            if chosen is not None:
                return next((s for s in steps if s.step_id == chosen), None)
        return under_cursor(self.query_one(DataTable), steps)

    def _given_key(self, step: StepRecord) -> tuple[str, int, str | None]:
        # What a step was given changes only when outputs before it do: then more
        # steps have outputs, or it became stale.
        done = sum(1 for s in self.view.steps if s.has_output) if self.view else 0
        return step.step_id, done, step.stale

    def _detail(self) -> None:
        step = self.selected()
        view = self.view
        given = None
        if step is not None and view is not None:
            key = self._given_key(step)
            given = self.given.get(key)
            if given is None and step.status != "pending":
                self._read_input(view.run, step, key)
        self.query_one("#detail", Pane).paint(
            describe(step, self.streamed.get(step.step_id, ""),
                     view.attempts.get(step.step_id) if view else None,
                     view.versions.get(step.step_id) if view else None,
                     view.transcripts.get(step.step_id) if view else None,
                     given) if step else "")

    @work(thread=True, exclusive=True, group="input", exit_on_error=False)
    def _read_input(self, run: RunRecord, step: StepRecord,
                    key: tuple[str, int, str | None]) -> None:
        """Render the selected step's templates off the UI thread (a recipe may have
        to be parsed), then repaint the detail if that step is still selected."""
        try:
            given = self.podium.reader.step_input(run, step)
        except PodiumError as e:
            given = [("input", f"(cannot be shown: {e.message})")]
        self.app.call_from_thread(self._got_input, key, given)

    def _got_input(self, key: tuple[str, int, str | None],
                   given: list[tuple[str, str]]) -> None:
        self.given[key] = given
        step = self.selected()
        if alive(self) and self.is_mounted and step is not None \
                and self._given_key(step) == key:
            self._detail()

    @on(DataTable.RowHighlighted)
    @on(Tree.NodeHighlighted)
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
            self.set_timer(CATCH_UP_S, self._catch_up)

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
