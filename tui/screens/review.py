"""The review queue: what waits for a person, oldest first. Approve, edit, reject with
feedback or regenerate in one key; the run carries on in the background."""

from __future__ import annotations

import json
import time
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.widgets import DataTable, Static

from podium.core.store import ReviewRecord
from podium.tui.screens.base import (
    Cells,
    LiveScreen,
    PodiumFooter,
    PodiumHeader,
    alive,
    sync_table,
    under_cursor,
)


def age(ts: float) -> str:
    s = max(0, int(time.time() - ts))
    return f"{s}s" if s < 60 else f"{s // 60}m" if s < 3600 else f"{s // 3600}h"


def shown(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, indent=2,
                                                          ensure_ascii=False)


def describe(r: ReviewRecord) -> Text:
    """The detail pane's text for one review item."""
    out = Text()
    what = "budget review" if r.kind == "budget" else f"review of '{r.of_step}'" + (
        f", item {r.item}" if r.item is not None else "")
    out.append(f"#{r.id} {what}", style="bold")
    out.append(f"  run {r.run_id} · round {r.round}\n\n")
    if r.instructions:
        out.append(r.instructions + "\n\n", style="italic")
    out.append(shown(r.original))
    return out


class ReviewScreen(LiveScreen):
    """The queue and the selected item."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("a", "decide('approve')", "Approve"),
                Binding("e", "edit", "Edit"),
                Binding("x", "reject", "Reject"),
                Binding("g", "decide('regenerate')", "Regenerate")]

    def __init__(self) -> None:
        super().__init__()
        self.items: list[ReviewRecord] = []
        self.shown: dict[str, Cells] = {}

    def compose(self) -> ComposeResult:
        yield PodiumHeader()
        with Horizontal():
            yield DataTable(id="queue", cursor_type="row")
            with VerticalScroll(id="detail-box"):
                yield Static(id="detail")
        yield PodiumFooter()

    def on_mount(self) -> None:
        if not alive(self):  # popped before it mounted: nothing to set up
            return
        self.title = "review queue"
        table = self.query_one(DataTable)
        table.add_columns("id", "run", "step", "kind", "age")
        table.focus()
        super().on_mount()

    def fetch(self) -> list[ReviewRecord]:
        return self.podium.reader.queue()

    def show(self, data: Any) -> None:
        self.items = data
        rows: dict[str, Cells] = {
            str(r.id): (str(r.id), r.run_id, r.of_step if r.item is None else
                        f"{r.of_step}[{r.item}]", r.kind, age(r.created_at)) for r in data}
        self.shown = sync_table(self.query_one(DataTable), rows, self.shown)
        self.sub_title = f"{len(data)} waiting" if data else "nothing waits for you"
        self._detail()

    def selected(self) -> ReviewRecord | None:
        """The item under the cursor."""
        return under_cursor(self.query_one(DataTable), self.items)

    def _detail(self) -> None:
        item = self.selected()
        self.query_one("#detail", Static).update(describe(item) if item else "")

    @on(DataTable.RowHighlighted)
    def _moved(self) -> None:
        self._detail()

    def action_decide(self, action: str) -> None:
        item = self.selected()
        if item is not None:
            self.podium.decide(item.id, action)

    def action_edit(self) -> None:
        item = self.selected()
        if item is not None:
            self.podium.edit_review(item)

    def action_reject(self) -> None:
        item = self.selected()
        if item is not None:
            self.podium.reject(item)
