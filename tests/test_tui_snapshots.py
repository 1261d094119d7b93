"""Snapshots of the screens at 80x24 and 120x40, on a database seeded here with fixed
ids and times (update with `make snapshot-update` after a deliberate change). The
recipes screen is left to its pilot test: its SVG's style-class names changed from run
to run with the same picture, and a flaky snapshot is worse than none."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import DataTable

from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.tui.app import PodiumApp, make_app
from tests.conftest import ScriptedProvider
from tests.test_engine import make_engine
from tests.test_review import CHAIN, DRAFT

SIZES = [(80, 24), (120, 40)]
T0 = 1_780_000_000.0  # a fixed moment, so times on screen do not move


def seeded() -> Engine:
    """Two runs (a finished chain, a draft waiting for review) with fixed ids and
    times, and its review one minute and a half old."""
    engine = make_engine(ScriptedProvider(answer=lambda req, n: f"answer {n}"))
    chain = asyncio.run(engine.run(loads(CHAIN), {})).run_id
    draft = asyncio.run(engine.run(loads(DRAFT), {})).run_id
    conn = sqlite3.connect(engine.store.path)
    conn.execute("PRAGMA foreign_keys = OFF")
    for old, new, start in ((chain, "chain0000001", T0), (draft, "draft0000002", T0 + 60)):
        for table in ("steps", "attempts", "events", "reviews", "step_versions"):
            conn.execute(f"UPDATE {table} SET run_id = ? WHERE run_id = ?", (new, old))
        conn.execute("UPDATE runs SET id = ?, created_at = ?, started_at = ?, finished_at = "
                     "? WHERE id = ?", (new, start, start, start + 4.2, old))
        conn.execute("UPDATE steps SET started_at = ? + position * 0.6, finished_at = ? + "
                     "position * 0.6 + 0.5, latency_ms = 500 WHERE run_id = ?",
                     (start, start, new))
    conn.execute("UPDATE reviews SET created_at = ?", (time.time() - 90,))
    conn.commit()
    conn.close()
    return engine


def settled(check: Callable[[PodiumApp], bool], *keys: str) -> Callable[[Pilot[None]], object]:
    """Press `keys`, then wait until the screen shows what `check` wants (the data
    arrives from a worker), so the snapshot is of a settled screen."""
    async def wait(pilot: Pilot[None]) -> None:
        app = pilot.app
        assert isinstance(app, PodiumApp)
        await pilot.press(*keys)
        for _ in range(100):
            if check(app):
                break
            await asyncio.sleep(0.05)
        # A table measures its columns when its own message queue is next idle, after
        # the rows arrive: under load a picture was seen taken between the two (the
        # columns at their headers' widths). Wait for every table to have measured.
        for _ in range(100):
            await pilot.pause(0.02)
            if all(not t._require_update_dimensions and not t._updated_cells
                   for t in app.screen.query(DataTable)):
                break
        await pilot.pause()

    return wait


def rows(app: PodiumApp) -> int:
    tables = app.screen.query(DataTable)
    return tables.first().row_count if tables else 0


def input_shown(app: PodiumApp) -> bool:
    """The selected step's input, read by a worker, is in its detail."""
    return bool(getattr(app.screen, "given", None))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_runs_screen(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    engine = seeded()
    assert snap_compare(make_app(engine.store, engine), terminal_size=size,
                        run_before=settled(lambda app: rows(app) == 2))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_screen(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    engine = seeded()
    assert snap_compare(make_app(engine.store, engine, open_run="chain0000001"),
                        terminal_size=size, run_before=settled(
                            lambda app: rows(app) == 6 and input_shown(app)))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_review_screen(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    engine = seeded()
    assert snap_compare(make_app(engine.store, engine, review=True), terminal_size=size,
                        run_before=settled(lambda app: rows(app) == 1))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_chat_screen(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    engine = seeded()
    assert snap_compare(make_app(engine.store, engine), terminal_size=size,
                        run_before=settled(lambda app: app.screen.title == "chat", "c"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_run_screen_graph(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    engine = seeded()
    assert snap_compare(make_app(engine.store, engine, open_run="draft0000002"),
                        terminal_size=size, run_before=settled(
                            lambda app: bool(getattr(app.screen, "drawn", None))
                            and input_shown(app), "g"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_models_screen(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    engine = seeded()
    assert snap_compare(make_app(engine.store, engine), terminal_size=size,
                        run_before=settled(lambda app: app.screen.title == "models" and
                                           rows(app) > 0, "M"))


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_recipes_screen(snap_compare: Callable[..., bool], size: tuple[int, int]) -> None:
    engine = seeded()
    assert snap_compare(make_app(engine.store, engine), terminal_size=size,
                        run_before=settled(lambda app: app.screen.title == "recipes" and
                                           rows(app) > 0, "n"))
