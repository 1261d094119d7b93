"""A screen that shows what the store holds and stays current by itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rich.text import Text
from textual import work
from textual.screen import Screen
from textual.widgets import DataTable

from podium.core.errors import PodiumError

if TYPE_CHECKING:
    from podium.tui.app import PodiumApp

POLL_S = 0.4

Cells = tuple[str | Text, ...]
T = TypeVar("T")


def under_cursor(table: DataTable[Any], items: Sequence[T]) -> T | None:
    """The item of `items` (in the table's row order) under the table's cursor."""
    if not items:
        return None
    return items[min(max(table.cursor_row, 0), len(items) - 1)]


def sync_table(table: DataTable[Any], rows: dict[str, Cells],
               shown: dict[str, Cells]) -> dict[str, Cells]:
    """Make `table` show `rows` (key -> cells), given that it shows `shown`. When the
    same keys are shown in the same order (the common case while work progresses),
    only the cells that changed are updated, so a busy database does not redraw a
    table of thousands of rows. Returns what the table now shows."""
    if list(rows) == list(shown):
        columns = [c.key for c in table.columns.values()]
        for key, cells in rows.items():
            if cells != shown[key]:
                for column, value, before in zip(columns, cells, shown[key], strict=True):
                    if value != before:
                        table.update_cell(key, column, value)
        return rows
    keep = table.cursor_row
    table.clear()
    for key, cells in rows.items():
        table.add_row(*cells, key=key)
    if table.row_count:
        table.move_cursor(row=min(max(keep, 0), table.row_count - 1))
    return rows


class LiveScreen(Screen[None]):
    """Reads its data in a thread worker (`fetch`), paints it on the UI thread (`show`),
    and reads again whenever the database's version moves: writes by this app's
    engine and by other processes alike."""

    def __init__(self) -> None:
        super().__init__()
        self._seen: int | None = None

    @property
    def podium(self) -> PodiumApp:
        from podium.tui.app import PodiumApp

        assert isinstance(self.app, PodiumApp)
        return self.app

    def on_mount(self) -> None:
        self.refresh_data(force=True)
        self.set_interval(POLL_S, self._poll)

    def _poll(self) -> None:
        if self.is_current:  # a screen under another one waits until it is shown again
            self.refresh_data()

    def on_screen_resume(self) -> None:
        self.refresh_data()

    def fetch(self) -> Any:
        """Read what the screen shows (runs in a worker thread)."""
        raise NotImplementedError

    def show(self, data: Any) -> None:
        """Paint `data` (runs on the UI thread)."""
        raise NotImplementedError

    @work(thread=True, exclusive=True, group="fetch", exit_on_error=False)
    def refresh_data(self, force: bool = False) -> None:
        """Fetch and show, if anything changed since the last look (or `force`)."""
        try:
            version = self.podium.reader.version()
            if not force and version == self._seen:
                return
            data = self.fetch()
        except PodiumError as e:
            self.app.call_from_thread(self.notify, e.message, title="Cannot show that",
                                      severity="error")
            return
        self._seen = version
        self.app.call_from_thread(self.show, data)
