"""More of the app through the pilot: the run as a dependency graph with attempts and
versions, the palette deciding reviews and reaching every screen key, the file picker
of the launch form, and a screen popped before it was ever painted."""

from __future__ import annotations

import asyncio
from pathlib import Path

from textual.widgets import DataTable, Input, Static, TextArea, Tree

from podium.core.errors import Timeout
from podium.core.recipe.load import loads
from podium.tui.app import PodiumApp
from podium.tui.screens.files import complete
from podium.tui.screens.run import RunScreen
from tests.conftest import ScriptedProvider
from tests.test_engine import make_engine
from tests.test_review import DRAFT, numbered
from tests.test_tui import app_on, drive, run, until

FAN = '''
[steps.split]
kind = "template"
template = "x"
[steps.a]
kind = "llm"
backoff = 0
prompt = "a {{ steps.split }}"
[steps.b]
kind = "template"
template = "b {{ steps.split }}"
[steps.join]
kind = "template"
template = "{{ steps.a }} {{ steps.b }}"
'''


def detail(app: PodiumApp) -> str:
    return str(app.screen.query_one("#detail", Static).render())


def test_the_graph_view_draws_fan_out_and_joins_with_attempts_and_versions() -> None:
    # `a`'s first attempt fails (its model times out on each of the call's own three
    # tries) and the second succeeds; then `b` is edited by hand.
    engine = make_engine(ScriptedProvider(answer=lambda req, n: Timeout("too slow")
                                          if n <= 3 else f"out{n}"))
    run_id = run(engine, FAN)

    async def body(app: PodiumApp, pilot: object) -> None:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 4)
        await pilot.press("g")  # type: ignore[attr-defined]
        await until(pilot, lambda: bool(screen.drawn))
        tree = screen.query_one(Tree)
        assert tree.has_focus and not screen.query_one(DataTable).display
        split = screen.drawn["split"][1]
        assert [str(n.label) for n in split.children][:2] == ["✓ a llm", "✓ b template"]
        join = str(screen.drawn["join"][0].also)
        assert "a" in join  # hangs under b, and says it joins a too
        tree.move_cursor(screen.drawn["a"][1])
        await until(pilot, lambda: "attempts" in detail(app))
        shown = detail(app)
        assert "#1 failed" in shown and "too slow" in shown and "#2 succeeded" in shown
        tree.move_cursor(screen.drawn["b"][1])
        await pilot.press("e")  # type: ignore[attr-defined]
        await until(pilot, lambda: bool(app.screen.query(TextArea)))
        app.screen.query_one(TextArea).text = "by hand"
        await pilot.press("ctrl+s")  # type: ignore[attr-defined]
        await until(pilot, lambda: "versions" in detail(app))
        assert "v1 run" in detail(app) and "v2 edit" in detail(app)
        await until(pilot, lambda: "stale" in str(screen.drawn["join"][1].label))
        await pilot.press("g")  # type: ignore[attr-defined]  # back to the table, on b
        assert screen.query_one(DataTable).has_focus and screen.selected().step_id == "b"  # type: ignore[union-attr]

    drive(app_on(engine, open_run=run_id), body)


async def palette(pilot: object, text: str) -> None:
    await pilot.press("ctrl+p", *text)  # type: ignore[attr-defined]
    await asyncio.sleep(0.6)  # the palette searches in the background
    await pilot.press("enter")  # type: ignore[attr-defined]


def test_the_palette_rejects_with_feedback_and_edits_a_review() -> None:
    model = ScriptedProvider(answer=numbered)
    engine = make_engine(model)
    run_id = run(engine, DRAFT)

    async def body(app: PodiumApp, pilot: object) -> None:
        item = engine.store.reviews()[0]
        await palette(pilot, f"reject review {item.id}")
        await until(pilot, lambda: app.screen.__class__.__name__ == "AskText")
        await pilot.press(*"shorter", "enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: engine.store.reviews() != [] and
                    engine.store.reviews()[0].round == 2)
        assert "shorter" in model.calls[-1].messages[-1].content
        again = engine.store.reviews()[0]
        await palette(pilot, f"edit review {again.id}")
        await until(pilot, lambda: bool(app.screen.query(TextArea)))
        app.screen.query_one(TextArea).text = "my own reply"
        await pilot.press("ctrl+s")  # type: ignore[attr-defined]
        await until(pilot, lambda: engine.store.get_run(run_id).status == "succeeded")

    drive(app_on(engine), body)
    assert engine.store.get_run(run_id).outputs["send"] == "sent: my own reply"


def test_every_screen_key_is_in_the_palette() -> None:
    engine = make_engine(ScriptedProvider())
    run_id = run(engine, FAN)

    async def body(app: PodiumApp, pilot: object) -> None:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        titles = [c.title for c in app.get_system_commands(screen)]
        for key in ("Graph (g)", "Rerun (r)", "Resume (u)", "Other tier (o)",
                    "Cancel (x)", "Edit (e)"):
            assert key in titles, titles
        await until(pilot, lambda: screen.query_one(DataTable).row_count == 4)
        await palette(pilot, "graph (g)")
        await until(pilot, lambda: screen.graph_on and bool(screen.drawn))

    drive(app_on(engine, open_run=run_id), body)


def test_path_completion_offers_the_rest_of_a_name(tmp_path: Path) -> None:
    (tmp_path / "letters").mkdir()
    (tmp_path / "letters" / "complaint.txt").write_text("x")
    (tmp_path / "notes.md").write_text("x")
    assert complete("let", tmp_path) == "letters/"
    assert complete("letters/co", tmp_path) == "letters/complaint.txt"
    assert complete(f"{tmp_path}/no", None) == f"{tmp_path}/notes.md"
    assert complete("zz", tmp_path) is None


def test_a_file_input_is_picked_from_a_folder_tree(tmp_path: Path) -> None:
    folder = tmp_path / "letters"
    folder.mkdir()
    (folder / "letter.txt").write_text("Dear Sir, my dishwasher broke.")
    engine = make_engine(ScriptedProvider())
    recipe = loads('[inputs.document]\ntype = "file"\n[steps.show]\nkind = "template"\n'
                   'template = "{{ inputs.document.text }}"\n')

    async def body(app: PodiumApp, pilot: object) -> None:
        app.start_recipe(recipe)
        await until(pilot, lambda: bool(app.screen.query(Input)))
        field = app.screen.query_one(Input)
        field.value = str(folder) + "/"
        await pilot.press("ctrl+f")  # type: ignore[attr-defined]
        await until(pilot, lambda: app.screen.__class__.__name__ == "PickFile")
        tree = app.screen.query_one(Tree)
        await until(pilot, lambda: len(tree.root.children) == 1)
        await pilot.press("down", "enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: app.screen.__class__.__name__ == "LaunchForm")
        assert field.value == str(folder / "letter.txt")
        await pilot.press("enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: bool(engine.store.list_runs()) and
                    engine.store.list_runs()[0].status == "succeeded")

    drive(app_on(engine), body)
    assert "dishwasher" in engine.store.list_runs()[0].outputs["show"]


def test_a_screen_popped_before_it_painted_does_not_bring_the_app_down() -> None:
    engine = make_engine(ScriptedProvider())
    run_id = run(engine, FAN)

    async def body(app: PodiumApp, pilot: object) -> None:
        for _ in range(10):  # its read arrives after it is gone, and sets no title
            app.open_run(run_id)
            app.pop_screen()
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)
        app.open_run(run_id)
        await until(pilot, lambda: isinstance(app.screen, RunScreen) and
                    app.screen.title == f"run {run_id}")

    drive(app_on(engine), body)
