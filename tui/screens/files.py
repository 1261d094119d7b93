"""Choosing a file for a recipe's `file` input, by keyboard: a path typed with
completion (the rest of a name offered as you type, `right` takes it), or a picker
(`ctrl+f`) over a directory tree."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterable
from pathlib import Path

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.suggester import Suggester
from textual.widgets import DirectoryTree, Label

from podium.tui.screens.base import PodiumFooter


def complete(typed: str, cwd: Path | None = None) -> str | None:
    """`typed` with the rest of the first path that starts with it (a folder gets
    its `/`), or None. `~` is the home folder; a relative path is from `cwd`."""
    if not typed:
        return None
    folder, _, stem = typed.rpartition("/")
    base = Path(os.path.expanduser(folder or ".")) if folder or not typed.startswith("/") \
        else Path("/")
    if not base.is_absolute():
        base = (cwd or Path.cwd()) / base
    try:
        names = sorted(e.name for e in os.scandir(base) if e.name.startswith(stem) and
                       (stem.startswith(".") or not e.name.startswith(".")))
    except OSError:
        return None
    for name in names:
        if name != stem or (base / name).is_dir():
            tail = "/" if (base / name).is_dir() else ""
            return f"{folder}/{name}{tail}" if folder or typed.startswith("/") else \
                f"{name}{tail}"
    return None


class PathSuggester(Suggester):
    """Offers the rest of a path as it is typed (the folder read off the UI thread)."""

    def __init__(self) -> None:
        super().__init__(use_cache=False, case_sensitive=True)

    async def get_suggestion(self, value: str) -> str | None:
        return await asyncio.to_thread(complete, value)


class Files(DirectoryTree):
    """A directory tree without hidden files."""

    def filter_paths(self, paths: Iterable[Path]) -> Iterable[Path]:
        return [p for p in paths if not p.name.startswith(".")]


class PickFile(ModalScreen[str | None]):
    """A directory tree from a folder: enter on a file picks it, on a folder opens it;
    backspace goes up a folder; escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("backspace", "up", "Up a folder")]

    def __init__(self, title: str, start: Path) -> None:
        super().__init__()
        self.title_text = title
        self.start = start if start.is_dir() else Path.cwd()

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(f"{self.title_text}: {self.start}", id="dialog-title")
            yield Files(self.start, id="files")
            yield PodiumFooter()

    def on_mount(self) -> None:
        self.query_one(Files).focus()

    @on(DirectoryTree.FileSelected)
    def _pick(self, event: DirectoryTree.FileSelected) -> None:
        self.dismiss(str(event.path))

    def action_up(self) -> None:
        tree = self.query_one(Files)
        tree.path = Path(tree.path).resolve().parent
        self.query_one("#dialog-title", Label).update(f"{self.title_text}: {tree.path}")

    def action_cancel(self) -> None:
        self.dismiss(None)
