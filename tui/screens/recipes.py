"""The recipes found (./recipes, your recipes folder, the shipped ones): the source, the
problems at their lines, and launch with a form made from `[inputs]`."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich.syntax import Syntax
from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import DataTable, Static

from podium.core.errors import RecipeError, RecipeErrors
from podium.core.recipe.schema import Recipe
from podium.tui.screens.base import (
    Cells,
    PodiumFooter,
    PodiumHeader,
    alive,
    sync_table,
    under_cursor,
)


@dataclass(frozen=True)
class Found:
    """One recipe file and what checking it said."""

    name: str
    where: str
    path: Path
    source: str
    recipe: Recipe | None
    problems: list[RecipeError]


def find_all() -> list[Found]:
    """Every recipe in the folders names are looked up in, checked (a thread's work)."""
    from podium.core import paths
    from podium.core.config import load_settings
    from podium.core.recipe.load import check_models, loads
    from podium.tui.cli_common import recipe_folders

    shipped = paths.shipped_recipes_dir().resolve()
    mine = paths.recipes_dir().resolve()
    catalog = list(load_settings().catalog())
    out: list[Found] = []
    seen: set[str] = set()
    for folder in recipe_folders():
        where = "shipped" if folder == shipped else "yours" if folder == mine else "./recipes"
        for path in sorted(folder.glob("*.toml")):
            if path.stem in seen:  # the first folder wins, as for `podium run NAME`
                continue
            seen.add(path.stem)
            source = path.read_text(encoding="utf-8", errors="replace")
            try:
                recipe = loads(source, str(path))
                check_models(recipe, catalog)
                out.append(Found(path.stem, where, path, source, recipe, []))
            except RecipeError as e:
                errors = e.errors if isinstance(e, RecipeErrors) else [e]
                out.append(Found(path.stem, where, path, source, None, errors))
    return out


class RecipesScreen(Screen[None]):
    """The recipe list and the selected recipe's source and problems."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("enter", "launch", "Run", priority=True)]

    def __init__(self) -> None:
        super().__init__()
        self.found: list[Found] = []

    def compose(self) -> ComposeResult:
        yield PodiumHeader()
        with Horizontal():
            yield DataTable(id="recipes", cursor_type="row")
            with VerticalScroll(id="detail-box"):
                yield Static(id="problems")
                yield Static(id="detail")
        yield PodiumFooter()

    def on_mount(self) -> None:
        if not alive(self):  # popped before it mounted: nothing to set up
            return
        self.title = "recipes"
        table = self.query_one(DataTable)
        table.add_columns("recipe", "from", "steps")
        table.focus()
        self.load()

    def load(self) -> None:
        self.run_worker(self._load, thread=True, exclusive=True, group="recipes")

    def _load(self) -> None:
        found = find_all()
        self.app.call_from_thread(self.show, found)

    def show(self, found: list[Found]) -> None:
        self.found = found
        rows: dict[str, Cells] = {
            f.name: (f.name, f.where, str(len(f.recipe.steps)) if f.recipe else
                     Text(f"{len(f.problems)} problems", style="red")) for f in found}
        sync_table(self.query_one(DataTable), rows, {})  # a new list each time: rebuilt
        self.sub_title = f"{len(found)} recipes"
        self._detail()

    def selected(self) -> Found | None:
        return under_cursor(self.query_one(DataTable), self.found)

    @on(DataTable.RowHighlighted)
    def _detail(self) -> None:
        f = self.selected()
        problems = self.query_one("#problems", Static)
        if f is None:
            problems.update("")
            self.query_one("#detail", Static).update("")
            return
        text = Text()
        for p in f.problems:
            text.append(f"{Path(p.file or f.path).name}:{p.line}: {p.field or ''}: "
                        f"{p.message}\n", style="red")
            if p.hint:
                text.append(f"  hint: {p.hint}\n")
        problems.update(text)
        problems.display = bool(f.problems)
        self.query_one("#detail", Static).update(
            Syntax(f.source, "toml", line_numbers=True, word_wrap=True,
                   highlight_lines={p.line for p in f.problems if p.line}))

    def action_launch(self) -> None:
        f = self.selected()
        if f is None:
            return
        if f.recipe is None:
            self.notify(f"{f.name} has {len(f.problems)} problems; fix them first",
                        severity="error")
            return
        from podium.tui.app import PodiumApp

        assert isinstance(self.app, PodiumApp)
        self.app.start_recipe(f.recipe)
