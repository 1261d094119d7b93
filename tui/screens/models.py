"""The models: the catalog, which local model is loaded, each local model's router fit
(calibrated, stale, shipped; with the outcomes runs taught it), whether each remote
server answers (asked in the background), today's spend against the daily budget, and
tokens and cost per day for the last three weeks."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Sparkline, Static

from podium.core.config import Settings, load_settings
from podium.tui.screens.base import PodiumFooter, PodiumHeader, alive

DAYS = 21


# The file or server last: the longest and least needed at a glance.
COLUMNS = ("model", "provider", "tier", "state", "router", "where")


class ModelsScreen(Screen[None]):
    """The catalog table, the spend line and a sparkline of tokens per day."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("k", "check", "Check servers")]

    def __init__(self) -> None:
        super().__init__()
        self.settings: Settings | None = None
        self.shown: tuple[Settings, list[tuple[str, int, float]], float,
                          dict[str, str]] | None = None
        self.pinged: dict[str, str] = {}  # what each remote server answered to a check

    def compose(self) -> ComposeResult:
        yield PodiumHeader()
        with Vertical():
            yield DataTable(id="models", cursor_type="row")
            yield Static(id="spend")
            yield Sparkline([0], id="usage")
            yield Static(id="usage-label")
        yield PodiumFooter()

    def on_mount(self) -> None:
        if not alive(self):  # popped before it mounted: nothing to set up
            return
        self.title = "models"
        self.query_one(DataTable).focus()
        self.load()

    @work(thread=True, exclusive=True, group="models", exit_on_error=False)
    def load(self) -> None:
        from podium.tui.app import PodiumApp
        from podium.tui.cli_models import calibrations

        app = self.app
        assert isinstance(app, PodiumApp)
        settings = load_settings()
        usage = app.reader.usage(DAYS)
        spent = app.reader.spent_today()
        routers = calibrations(settings)  # hashes each model file's ends: off the UI
        app.call_from_thread(self.show, settings, usage, spent, routers)

    def show(self, settings: Settings, usage: list[tuple[str, int, float]],
             spent: float, routers: dict[str, str]) -> None:
        from podium.tui.app import PodiumApp

        assert isinstance(self.app, PodiumApp)
        self.settings = settings
        self.shown = (settings, usage, spent, routers)
        hub = self.app.engine.hub
        rows: list[tuple[str, ...]] = []
        for name, spec in settings.catalog().items():
            # A model file by its name (the folder is long and differs by machine).
            where = Path(str(spec.path)).name if spec.path else spec.base_url or "-"
            state = "ready" if name in hub.providers else hub.unavailable.get(
                name, "not available")
            if name in hub.providers and spec.provider == "llamacpp" and _loaded(spec.path):
                state = "loaded"
            state = self.pinged.get(name, state)
            rows.append((name, spec.provider, spec.resolved_tier, state,
                         routers.get(name, "-"), str(where)[:40]))
        # Columns as wide as their widest cell, set here: a table left to measure
        # itself was seen painted at its headers' widths for a frame.
        table = self.query_one(DataTable)
        table.clear(columns=True)
        for i, header in enumerate(COLUMNS):
            table.add_column(header, width=max([len(header)] + [len(r[i]) for r in rows]))
        for row in rows:
            table.add_row(*row, key=row[0])
        budget = settings.budget_per_day
        self.query_one("#spend", Static).update(
            f"spent today ${spent:.4f}" + (f" of ${budget:.2f} a day" if budget else
                                           " (no daily budget set)"))
        self.query_one(Sparkline).data = [tokens for _, tokens, _ in usage] or [0]
        total = sum(cost for _, _, cost in usage)
        self.query_one("#usage-label", Static).update(
            f"tokens per day, the last {len(usage)} days to today: "
            f"{sum(t for _, t, _ in usage):,} tokens, ${total:.4f}" if usage else "")

    @work(group="ping", exclusive=True, exit_on_error=False)
    async def action_check(self) -> None:
        """Ask every remote server whether it answers (in the background)."""
        import asyncio

        from podium.tui.app import PodiumApp

        assert isinstance(self.app, PodiumApp)
        remote = {name: p for name, p in self.app.engine.hub.providers.items()
                  if p.tier == "remote" and hasattr(p, "ping")}
        if not remote:
            self.notify("no remote model to check")
            return
        answers = await asyncio.gather(*(p.ping() for p in remote.values()))
        self.pinged.update(zip(remote, answers, strict=True))
        if self.shown is not None:
            self.show(*self.shown)  # the table again, its state column as wide as needed


def _loaded(path: Any) -> bool:
    """Whether the local model file is loaded in this process."""
    try:
        from podium.providers import llamacpp
    except ImportError:
        return False
    return str(path) in getattr(llamacpp, "_LOADED", {})
