"""Bad input and faults in the app: each becomes a notification, never a traceback or
a dead screen (a run id that is not there, a database locked by another process for
a moment, a model file that is missing, a remote model that does not answer)."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
from textual.widgets import DataTable

from podium.core.config import ModelSpec, Settings
from podium.core.recipe.load import loads
from podium.core.store import Store
from podium.tui.app import PodiumApp, make_app
from podium.tui.factory import make_engine as factory_engine
from podium.tui.screens.run import RunScreen
from podium.tui.screens.runs import RunsScreen
from tests.conftest import ScriptedProvider
from tests.servers import Behaviour, ScriptServer
from tests.test_engine import make_engine
from tests.test_review import DRAFT, numbered
from tests.test_tui import app_on, drive, run, until


def said(app: PodiumApp) -> str:
    """Every notification shown so far, as one text."""
    return "\n".join(f"{n.title}: {n.message}" for n in app._notifications)


def test_a_run_id_that_does_not_exist_is_a_notification() -> None:
    engine = make_engine(ScriptedProvider())

    async def body(app: PodiumApp, pilot: object) -> None:
        await until(pilot, lambda: "no run" in said(app).lower() or "nope" in said(app))
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        await pilot.press("down")  # type: ignore[attr-defined]  # still answering

    drive(app_on(engine, open_run="nope0000000"), body)


def test_a_database_locked_for_a_moment_holds_the_decision_back_then_it_goes_through(
) -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    run_id = run(engine, DRAFT)
    other = sqlite3.connect(engine.store.path, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")  # another process writing, for a moment
    threading.Timer(0.5, other.commit).start()

    async def body(app: PodiumApp, pilot: object) -> None:
        queue = app.screen.query_one(DataTable)
        await until(pilot, lambda: queue.row_count == 1)
        await pilot.press("a")  # type: ignore[attr-defined]
        await until(pilot, lambda: engine.store.get_run(run_id).status == "succeeded")
        assert "failed" not in said(app)

    drive(app_on(engine, review=True), body)
    other.close()


def test_a_missing_model_file_is_said_and_the_app_goes_on(tmp_path: Path) -> None:
    store = Store(tmp_path / "p.db")
    settings = Settings(models={"gone": ModelSpec(path=str(tmp_path / "missing.gguf"))},
                        default_model="gone")
    engine = factory_engine(store, settings)
    recipe = loads('[steps.ask]\nkind = "llm"\nmodel = "gone"\nprompt = "hi"\n')

    async def body(app: PodiumApp, pilot: object) -> None:
        app.launch(recipe, {})
        await until(pilot, lambda: "failed" in said(app))
        assert isinstance(app.screen, RunScreen)
        await until(pilot, lambda: "model file not found" in str(
            app.screen.query_one("#detail").render()))
        await pilot.press("escape", "down")  # type: ignore[attr-defined]
        assert isinstance(app.screen, RunsScreen)

    drive(make_app(store, engine), body)


def test_a_remote_model_that_times_out_fails_its_run_with_a_notification(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_KEY", "k")
    with ScriptServer([Behaviour(kind="hang")]) as silent:
        store = Store.open()
        settings = Settings(models={"far": ModelSpec(
            provider="openai", model="m", base_url=silent.url + "/v1",
            key_env="PODIUM_TEST_KEY", timeout=0.5)})
        engine = factory_engine(store, settings)
        recipe = loads('[steps.ask]\nkind = "llm"\nmodel = "far"\nretries = 0\n'
                       'prompt = "hi"\n')

        async def body(app: PodiumApp, pilot: object) -> None:
            started = time.monotonic()
            app.launch(recipe, {})
            await until(pilot, lambda: "failed" in said(app), seconds=15)
            assert time.monotonic() - started < 15
            assert isinstance(app.screen, RunScreen)
            await until(pilot, lambda: "error" in str(app.screen.query_one("#detail")
                                                      .render()))

        drive(make_app(store, engine), body)


def test_checking_servers_shows_each_answer_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    from podium.tui.screens.models import ModelsScreen

    monkeypatch.setenv("PODIUM_TEST_KEY", "k")
    with ScriptServer([Behaviour()]) as answering:
        store = Store.open()
        settings = Settings(models={
            "near": ModelSpec(provider="openai", model="m", base_url=answering.url + "/v1",
                              key_env="PODIUM_TEST_KEY"),
            "gone": ModelSpec(provider="openai", model="m", base_url="http://127.0.0.1:9/v1",
                              key_env="PODIUM_TEST_KEY")})
        engine = factory_engine(store, settings)
        monkeypatch.setattr("podium.tui.screens.models.load_settings", lambda: settings)

        def states(app: PodiumApp) -> dict[str, str]:
            table = app.screen.query_one(DataTable)
            return {str(k.value): str(table.get_row(k)[3]) for k in table.rows}

        async def body(app: PodiumApp, pilot: object) -> None:
            await pilot.press("M")  # type: ignore[attr-defined]
            await until(pilot, lambda: isinstance(app.screen, ModelsScreen)
                        and app.screen.shown is not None)
            await pilot.press("k")  # type: ignore[attr-defined]
            await until(pilot, lambda: states(app).get("gone", "").startswith("unreachable"))
            # Wider than the column was ("ready"), shown whole.
            shown = states(app)
            assert shown["near"] == "reachable" and shown["gone"] == "unreachable (cannot connect)"
            column = list(app.screen.query_one(DataTable).columns.values())[3]
            assert column.width == len("unreachable (cannot connect)")

        drive(make_app(store, engine), body)
