"""A screen that shows what the store holds and stays current by itself."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from rich.text import Text
from textual import events, work
from textual.css.query import NoMatches
from textual.dom import NoScreen
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import DataTable, Footer, Header
from textual.widgets._header import HeaderTitle

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


def plain(cell: str | Text) -> Text:
    """A cell as `Text`: DataTable reads a `str` as markup, which costs a parse per
    cell each time the table is drawn and misreads a name with brackets in it."""
    return cell if isinstance(cell, Text) else Text(cell)


def sync_table(table: DataTable[Any], rows: dict[str, Cells],
               shown: dict[str, Cells]) -> dict[str, Cells]:
    """Make `table` show `rows` (key -> cells), given that it shows `shown`. When the
    same keys are shown in the same order (the common case while work progresses),
    only the cells that changed are updated, so a busy database does not redraw a
    table of thousands of rows. Returns what the table now shows.

    A table whose columns the screen left to measure themselves gets fixed widths
    here, from its cells: Textual measures new rows only when the table's queue is
    next idle, and a table was seen painted (and snapshotted) at its headers' widths."""
    fitted = _fitted(table)
    columns = list(table.columns.values())
    if list(rows) == list(shown):
        changed = [(key, i, plain(value)) for key, cells in rows.items()
                   if cells != shown[key]
                   for i, (value, before) in enumerate(zip(cells, shown[key], strict=True))
                   if value != before]
        if not fitted or all(text.cell_len <= columns[i].width for _, i, text in changed):
            for key, i, text in changed:
                table.update_cell(key, columns[i].key, text)
            return rows
    keep = table.cursor_row
    if fitted:
        widths = [max([c.label.cell_len] + [plain(cells[i]).cell_len for cells in rows.values()])
                  for i, c in enumerate(columns)]
        table.clear(columns=True)
        for column, width in zip(columns, widths, strict=True):
            table.add_column(column.label, width=width, key=column.key.value)
    else:
        table.clear()
    for key, cells in rows.items():
        table.add_row(*map(plain, cells), key=key)
    if table.row_count:
        table.move_cursor(row=min(max(keep, 0), table.row_count - 1))
    return rows


def _fitted(table: DataTable[Any]) -> bool:
    """Whether `sync_table` sizes this table's columns: those the screen made without
    widths (decided once, before the first sizing makes them all fixed)."""
    fitted = getattr(table, "_podium_fitted", None)
    if fitted is None:
        fitted = all(c.auto_width for c in table.columns.values())
        table._podium_fitted = fitted  # type: ignore[attr-defined]
    return bool(fitted)


class PodiumHeader(Header):
    """Textual's header, except that a title change reaching it while its screen is
    torn down (a screen popped before it finished mounting, then given a title by a
    late worker) is ignored: Textual's own raises `NoMatches` there, and the app dies."""

    def _on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # instead of Header's handler, which has no guard
        Widget._on_mount(self, event)

        async def set_title() -> None:
            try:
                self.query_one(HeaderTitle).update(self.format_title())
            except (NoMatches, NoScreen):
                pass

        self.watch(self.app, "title", set_title)
        self.watch(self.app, "sub_title", set_title)
        self.watch(self.screen, "title", set_title)
        self.watch(self.screen, "sub_title", set_title)


class PodiumFooter(Footer):
    """Textual's footer, recomposed once for a burst of binding changes. Opening a
    screen changes its bindings two or three times (pushed, then focused), and each
    change made Textual's footer rebuild all its keys, 40 to 100 ms on a busy machine:
    a key pressed as a screen opened waited for all of them."""

    _pending = False

    def bindings_changed(self, screen: Screen[Any]) -> None:
        self._bindings_ready = True
        if not screen.app.app_focus or not self.is_attached or screen is not self.screen:
            return
        if not self._pending:
            self._pending = True
            self.call_after_refresh(self._recompose_once)

    async def _recompose_once(self) -> None:
        self._pending = False
        await self.recompose()


def alive(screen: Screen[Any]) -> bool:
    """Whether `screen` is still on the app's stack (not popped while a worker read)."""
    try:
        return screen.is_attached and screen in screen.app.screen_stack
    except Exception:  # no app any more: the app is closing
        return False


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
        if not alive(self):  # popped before it mounted: nothing to set up
            return
        self.refresh_data(force=True)
        self.set_interval(POLL_S, self._poll)

    def _poll(self) -> None:
        if self.is_current:  # a screen under another one waits until it is shown again
            self.refresh_data()

    def on_screen_resume(self) -> None:
        if self.is_mounted:  # (a first showing reads from `on_mount`)
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
            self.app.call_from_thread(self.failed, e)
            return
        self._seen = version
        self.app.call_from_thread(self._show, data)

    def failed(self, error: PodiumError) -> None:
        """Reading failed in an expected way (a run that is not there, a database
        that cannot be read): say so; the screen stays as it was."""
        self.notify(error.message + (f"\n{error.hint}" if error.hint else ""),
                    title="Cannot show that", severity="error", timeout=8)

    def _show(self, data: Any) -> None:
        if not alive(self):  # popped meanwhile: nothing to paint
            return
        if not self.is_mounted:  # read before its widgets are in: read again soon
            self._seen = None
            return
        self.show(data)
