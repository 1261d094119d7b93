"""Every run, newest first, live: runs started here and by other processes appear as
they are made and change status as they go."""

from __future__ import annotations

import datetime as dt
from typing import Any

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import DataTable, Input

from podium.core.store import RunRecord
from podium.tui.screens.base import Cells, LiveScreen, PodiumFooter, PodiumHeader, alive, sync_table

# Runs shown at first, and added by each `m`: a table redrawn whole when a new run
# appears costs about a millisecond a row.
PAGE = 100

# A status at a glance, for runs and steps alike.
GLYPHS = {"succeeded": "✓", "failed": "✗", "running": "▶", "waiting": "⏸",
          "cancelled": "■", "interrupted": "!", "pending": "·", "skipped": "↷",
          "in_doubt": "?"}


def when(ts: float | None) -> str:
    return dt.datetime.fromtimestamp(ts).strftime("%m-%d %H:%M:%S") if ts else "-"


def seconds(run: RunRecord) -> str:
    if run.started_at and run.finished_at:
        return f"{run.finished_at - run.started_at:.1f}s"
    return "…" if run.status == "running" else "-"


class RunsScreen(LiveScreen):
    """The runs table; enter opens a run, / filters."""

    BINDINGS = [Binding("enter", "open", "Open", show=True),
                Binding("slash", "filter", "Filter"),
                Binding("m", "more", "More"),
                Binding("escape", "clear_filter", "Clear", show=False)]

    def __init__(self) -> None:
        super().__init__()
        self.runs: list[RunRecord] = []
        self.text = ""
        self.page = PAGE
        self.shown: dict[str, Cells] = {}

    def compose(self) -> ComposeResult:
        yield PodiumHeader()
        yield Input(placeholder="filter: recipe, status or run id", id="filter")
        yield DataTable(id="runs", cursor_type="row", zebra_stripes=True)
        yield PodiumFooter()

    def on_mount(self) -> None:
        if not alive(self):  # popped before it mounted: nothing to set up
            return
        table = self.query_one(DataTable)
        table.add_columns("", "run", "recipe", "status", "started", "took", "tokens", "cost")
        self.query_one("#filter").display = False
        table.focus()
        super().on_mount()

    def fetch(self) -> list[RunRecord]:
        return self.podium.reader.runs(limit=self.page)

    def action_more(self) -> None:
        """Show the next page of older runs."""
        self.page += PAGE
        self.refresh_data(force=True)

    def show(self, data: Any) -> None:
        self.runs = data
        self._paint()

    def _paint(self) -> None:
        """Show the runs that match the filter."""
        table = self.query_one(DataTable)
        needle = self.text.lower()
        rows: dict[str, Cells] = {}
        for run in self.runs:
            status = run.shown_status
            if needle and needle not in f"{run.id} {run.recipe_name} {status}".lower():
                continue
            rows[run.id] = (GLYPHS.get(status, "?"), run.id, run.recipe_name, status,
                            when(run.created_at), seconds(run),
                            str(run.input_tokens + run.output_tokens),
                            f"${run.cost:.4f}" if run.cost else "-")
        self.shown = sync_table(table, rows, self.shown)
        more = " · m for older" if len(self.runs) >= self.page else ""
        count = table.row_count
        self.sub_title = f"{count} run{'' if count == 1 else 's'}{more}"

    def action_open(self) -> None:
        table = self.query_one(DataTable)
        if not table.row_count:
            return
        row = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        if row:
            self.podium.open_run(row)

    @on(DataTable.RowSelected)
    def _selected(self, event: DataTable.RowSelected) -> None:
        if event.row_key.value:
            self.podium.open_run(event.row_key.value)

    def action_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.display = True
        box.focus()

    def action_clear_filter(self) -> None:
        box = self.query_one("#filter", Input)
        box.value, box.display, self.text = "", False, ""
        self._paint()
        self.query_one(DataTable).focus()

    @on(Input.Changed, "#filter")
    def _filter(self, event: Input.Changed) -> None:
        self.text = event.value
        self._paint()

    @on(Input.Submitted, "#filter")
    def _done(self) -> None:
        self.query_one(DataTable).focus()
