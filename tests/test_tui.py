"""The app's main flows through Textual's pilot, on a real database seeded by the test
and an engine with a scripted model (the flows are about the UI, not the model)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from textual.widgets import DataTable, Static, TextArea

from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.tui.app import PodiumApp, make_app
from podium.tui.screens.review import ReviewScreen
from podium.tui.screens.run import RunScreen
from podium.tui.screens.runs import RunsScreen
from tests.conftest import ScriptedProvider
from tests.test_engine import make_engine
from tests.test_review import CHAIN, DRAFT, SCHEMA, numbered

SIZE = (120, 40)


async def until(pilot: object, check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Let the app work (workers, polling) until `check` holds."""
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("timed out waiting for the app")


def app_on(engine: Engine, **kw: object) -> PodiumApp:
    return make_app(engine.store, engine, **kw)  # type: ignore[arg-type]


def run(engine: Engine, toml: str) -> str:
    return asyncio.run(engine.run(loads(toml), {})).run_id


def drive(app: PodiumApp, body: Callable[[PodiumApp, object], Awaitable[None]]) -> None:
    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await body(app, pilot)

    asyncio.run(main())


def test_runs_screen_lists_runs_and_opens_one_with_its_steps() -> None:
    engine = make_engine(ScriptedProvider(answer=lambda req, n: f"out{n}"))
    first = run(engine, CHAIN)

    async def body(app: PodiumApp, pilot: object) -> None:
        screen = app.screen
        assert isinstance(screen, RunsScreen)
        table = screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count == 1)
        await pilot.press("enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        steps = app.screen.query_one(DataTable)
        await until(pilot, lambda: steps.row_count == 6)
        detail = str(app.screen.query_one("#detail", Static).render())
        assert "s1" in detail and "out1" in detail
        await pilot.press("down")  # type: ignore[attr-defined]
        # s2's prompt as it was given: rendered with s1's stored output, off the UI thread
        pane = app.screen.query_one("#detail", Static)
        await until(pilot, lambda: "prompt: step 2: out1" in str(pane.render()))
        drawn = str(app.screen.query_one("#timeline", Static).render())
        assert drawn.startswith("timeline") and "s6" in drawn and "█" in drawn

    drive(app_on(engine), body)
    assert first


def test_a_run_started_elsewhere_appears_live() -> None:
    engine = make_engine(ScriptedProvider())

    async def body(app: PodiumApp, pilot: object) -> None:
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: app.screen.sub_title == "0 runs")
        other = make_engine(ScriptedProvider())  # its own connection: another writer
        await other.run(loads(CHAIN), {})
        await until(pilot, lambda: table.row_count == 1)

    drive(app_on(engine), body)


def test_approve_from_the_review_screen_and_the_run_finishes() -> None:
    engine = make_engine(ScriptedProvider(answer=numbered))
    run_id = run(engine, DRAFT)
    assert engine.store.get_run(run_id).status == "waiting"

    async def body(app: PodiumApp, pilot: object) -> None:
        screen = app.screen
        assert isinstance(screen, ReviewScreen)
        queue = screen.query_one(DataTable)
        await until(pilot, lambda: queue.row_count == 1)
        assert "Is the reply about order 1182?" in str(
            screen.query_one("#detail", Static).render())
        await pilot.press("a")  # type: ignore[attr-defined]
        await until(pilot, lambda: engine.store.get_run(run_id).status == "succeeded")
        await until(pilot, lambda: queue.row_count == 0)

    drive(app_on(engine, review=True), body)
    assert engine.store.get_run(run_id).outputs == {"send": "sent: draft 1",
                                                    "other": "independent"}


def test_an_edit_that_breaks_the_schema_is_refused_then_a_good_one_goes_through() -> None:
    engine = make_engine(ScriptedProvider(answer='{"name": "Ada", "age": 36}'))
    run_id = run(engine, SCHEMA)

    async def body(app: PodiumApp, pilot: object) -> None:
        queue = app.screen.query_one(DataTable)
        await until(pilot, lambda: queue.row_count == 1)
        await pilot.press("e")  # type: ignore[attr-defined]
        await until(pilot, lambda: bool(app.screen.query(TextArea)))
        app.screen.query_one(TextArea).text = '{"name": 7}'
        await until(pilot, lambda: "expected string" in str(
            app.screen.query_one("#problem", Static).render()))  # said as it was typed
        assert "+" in str(app.screen.query_one("#diff", Static).render())
        await pilot.press("ctrl+s")  # type: ignore[attr-defined]
        # Refused: the editor comes back with the text, and nothing was decided.
        await until(pilot, lambda: bool(app.screen.query(TextArea)) and
                    app.screen.query_one(TextArea).text == '{"name": 7}')
        assert engine.store.reviews()[0].status == "pending"
        app.screen.query_one(TextArea).text = '{"name": "Bo", "age": 2}'
        await pilot.press("ctrl+s")  # type: ignore[attr-defined]
        await until(pilot, lambda: engine.store.get_run(run_id).status == "succeeded")

    drive(app_on(engine, review=True), body)
    assert engine.store.get_run(run_id).outputs == {"use": "Bo"}


def test_reject_with_feedback_remakes_the_step_and_asks_again() -> None:
    model = ScriptedProvider(answer=numbered)
    engine = make_engine(model)
    run_id = run(engine, DRAFT)

    async def body(app: PodiumApp, pilot: object) -> None:
        queue = app.screen.query_one(DataTable)
        await until(pilot, lambda: queue.row_count == 1)
        await pilot.press("x")  # type: ignore[attr-defined]
        await until(pilot, lambda: app.screen.__class__.__name__ == "AskText")
        await pilot.press(*"mention the order", "enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: len(engine.store.reviews()) == 1 and
                    engine.store.reviews()[0].round == 2)

    drive(app_on(engine, review=True), body)
    assert "mention the order" in model.calls[-1].messages[-1].content
    assert engine.store.reviews()[0].original == "draft 2"
    assert engine.store.get_run(run_id).status == "waiting"


def test_edit_a_step_then_rerun_recomputes_only_what_became_stale() -> None:
    model = ScriptedProvider(answer=lambda req, n: f"out{n}")
    engine = make_engine(model)
    run_id = run(engine, CHAIN)

    async def body(app: PodiumApp, pilot: object) -> None:
        screen = app.screen
        assert isinstance(screen, RunScreen)
        steps = screen.query_one(DataTable)
        await until(pilot, lambda: steps.row_count == 6)
        await pilot.press("down", "e")  # type: ignore[attr-defined]
        await until(pilot, lambda: bool(app.screen.query(TextArea)))
        app.screen.query_one(TextArea).text = "hand-made"
        await pilot.press("ctrl+s")  # type: ignore[attr-defined]
        await until(pilot, lambda: engine.store.get_steps(run_id)[2].stale is not None)
        await pilot.press("r")  # type: ignore[attr-defined]
        await until(pilot, lambda: len(engine.store.list_runs()) == 2 and
                    engine.store.list_runs()[0].status == "succeeded")

    drive(app_on(engine, open_run=run_id), body)
    assert len(model.calls) == 6 + 4  # s3..s6 again, s1 and s2 kept


def test_the_palette_opens_a_run_by_id() -> None:
    engine = make_engine(ScriptedProvider())
    run_id = run(engine, CHAIN)

    async def body(app: PodiumApp, pilot: object) -> None:
        await pilot.press("ctrl+p")  # type: ignore[attr-defined]
        await pilot.press(*f"open run {run_id}")  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)  # the palette searches in the background
        await pilot.press("enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        assert app.screen.run_id == run_id  # type: ignore[attr-defined]

    drive(app_on(engine), body)


GREET = '''
[inputs.who]
description = "who to greet"

[steps.hello]
kind = "template"
template = "hello {{ inputs.who }}"
'''


def test_recipes_screen_shows_problems_and_launches_with_a_form(tmp_path: object) -> None:
    from podium.core import paths
    from podium.tui.screens.recipes import RecipesScreen

    mine = paths.recipes_dir()
    mine.mkdir(parents=True, exist_ok=True)
    (mine / "aa-greet.toml").write_text(GREET)
    (mine / "aa-broken.toml").write_text(GREET.replace("{{ inputs.who }}", "{{ inputs.whom }}"))
    engine = make_engine(ScriptedProvider())

    async def body(app: PodiumApp, pilot: object) -> None:
        await pilot.press("n")  # type: ignore[attr-defined]
        await until(pilot, lambda: isinstance(app.screen, RecipesScreen))
        screen = app.screen
        assert isinstance(screen, RecipesScreen)
        await until(pilot, lambda: len(screen.found) >= 3)
        names = [f.name for f in screen.found]
        assert {"aa-broken", "aa-greet", "triage"} <= set(names)
        table = screen.query_one(DataTable)
        table.move_cursor(row=names.index("aa-broken"))
        await pilot.pause()  # type: ignore[attr-defined]
        problems = str(screen.query_one("#problems", Static).render())
        assert screen.selected().name == "aa-broken", screen.selected()  # type: ignore[union-attr]
        assert "aa-broken.toml:7" in problems and "did you mean 'inputs.who'?" in problems
        await pilot.press("enter")  # type: ignore[attr-defined]
        assert isinstance(app.screen, RecipesScreen)  # refused: it has problems
        table.move_cursor(row=names.index("aa-greet"))
        await pilot.press("enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: app.screen.__class__.__name__ == "LaunchForm")
        await pilot.press(*"Ada", "enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await until(pilot, lambda: bool(engine.store.list_runs()) and
                    engine.store.list_runs()[0].status == "succeeded")

    drive(app_on(engine), body)
    assert engine.store.list_runs()[0].outputs == {"hello": "hello Ada"}


def test_a_chat_turn_is_answered_labelled_and_stored() -> None:
    from podium.tui.screens.chat import ChatScreen

    engine = make_engine(ScriptedProvider(answer="Paris, of course."))

    async def body(app: PodiumApp, pilot: object) -> None:
        await pilot.press("c")  # type: ignore[attr-defined]
        await until(pilot, lambda: isinstance(app.screen, ChatScreen))
        await pilot.press(*"capital of France?", "enter")  # type: ignore[attr-defined]
        shown = app.screen.query_one("#transcript", Static)
        await until(pilot, lambda: "tokens" in str(shown.render()))
        text = str(shown.render())
        assert "you: capital of France?" in text and "Paris, of course." in text
        assert "scripted (local)" in text

    drive(app_on(engine), body)
    (chat,) = engine.store.list_chats()
    roles = [m["role"] for m in engine.store.chat_messages(chat["id"])]
    assert roles == ["user", "assistant"]


def test_keys_panel_theme_memory_and_a_small_terminal() -> None:
    from podium.tui.app import TooSmall, load_prefs

    engine = make_engine(ScriptedProvider())

    async def body(app: PodiumApp, pilot: object) -> None:
        await pilot.press("question_mark")  # type: ignore[attr-defined]
        await until(pilot, lambda: bool(app.screen.query("HelpPanel")))
        app.theme = "nord"
        await pilot.resize_terminal(40, 10)  # type: ignore[attr-defined]
        await until(pilot, lambda: isinstance(app.screen, TooSmall))
        await pilot.resize_terminal(120, 40)  # type: ignore[attr-defined]
        await until(pilot, lambda: not isinstance(app.screen, TooSmall))

    drive(app_on(engine), body)
    assert load_prefs()["theme"] == "nord"

    async def again(app: PodiumApp, pilot: object) -> None:
        assert app.theme == "nord"

    drive(app_on(engine), again)


def test_models_screen_shows_the_catalog_spend_and_usage() -> None:
    from textual.widgets import Sparkline

    from podium.tui.screens.models import ModelsScreen

    engine = make_engine(ScriptedProvider(), price=2.0)
    run(engine, CHAIN)  # six priced calls today

    async def body(app: PodiumApp, pilot: object) -> None:
        await pilot.press("M")  # type: ignore[attr-defined]
        await until(pilot, lambda: isinstance(app.screen, ModelsScreen))
        table = app.screen.query_one(DataTable)
        await until(pilot, lambda: table.row_count >= 1)
        assert "smollm2" in str(table.get_row_at(0))
        # Its router fit, as `podium models` says it: never calibrated here.
        assert str(table.get_row_at(0)[4]) == "shipped fit"
        spend = str(app.screen.query_one("#spend", Static).render())
        assert spend.startswith("spent today $") and "no daily budget" in spend
        assert app.screen.query_one(Sparkline).data[-1] > 0  # today's tokens
        await pilot.press("k")  # type: ignore[attr-defined]  # nothing remote: says so

    drive(app_on(engine), body)


def test_compare_a_step_on_the_other_tier_and_keep_a_verdict() -> None:
    from tests.test_engine import RemoteScripted, two_tier_engine

    engine = two_tier_engine(ScriptedProvider("small", answer="local says 4"),
                             RemoteScripted("big", answer="remote says 4"))
    run_id = run(engine, '[steps.sum]\nkind = "llm"\nroute = "local"\nprompt = "2+2?"\n')

    async def body(app: PodiumApp, pilot: object) -> None:
        steps = app.screen.query_one(DataTable)
        await until(pilot, lambda: steps.row_count == 1)
        await pilot.press("o")  # type: ignore[attr-defined]
        await until(pilot, lambda: app.screen.__class__.__name__ == "CompareView")
        shown = " ".join(str(s.render()) for s in app.screen.query(".side"))
        assert "local says 4" in shown and "remote says 4" in shown and "big (remote)" in shown
        await pilot.press("b")  # type: ignore[attr-defined]
        await until(pilot, lambda: bool(engine.store.judged_pairs()))

    drive(app_on(engine, open_run=run_id), body)
    (pair,) = engine.store.judged_pairs()
    assert pair["verdict"] == "both"


def test_cancel_a_run_launched_here_and_it_stays_resumable() -> None:
    engine = make_engine(ScriptedProvider(delay=30))
    recipe = loads('[steps.slow]\nkind = "llm"\nprompt = "take your time"\n')

    async def body(app: PodiumApp, pilot: object) -> None:
        app.launch(recipe, {})
        await until(pilot, lambda: isinstance(app.screen, RunScreen))
        await until(pilot, lambda: bool(engine.store.list_runs()) and
                    engine.store.get_steps(engine.store.list_runs()[0].id)[0].status
                    == "running")
        await pilot.press("x")  # type: ignore[attr-defined]
        await until(pilot, lambda: engine.store.list_runs()[0].status == "cancelled")

    drive(app_on(engine), body)


def test_the_palette_runs_a_recipe_by_name_and_approves_a_review() -> None:
    from podium.core import paths

    mine = paths.recipes_dir()
    mine.mkdir(parents=True, exist_ok=True)
    (mine / "zz-hello.toml").write_text('[steps.hi]\nkind = "template"\ntemplate = "hi"\n')
    engine = make_engine(ScriptedProvider(answer=numbered))
    waiting = run(engine, DRAFT)

    async def body(app: PodiumApp, pilot: object) -> None:
        await pilot.press("ctrl+p", *"run recipe zz-hello")  # type: ignore[attr-defined]
        await asyncio.sleep(0.8)  # the palette reads the recipes in a thread
        await pilot.press("enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: any(r.recipe_name == "zz-hello" and r.status ==
                                       "succeeded" for r in engine.store.list_runs()))
        item = engine.store.reviews()[0]
        await pilot.press("escape")  # type: ignore[attr-defined]
        await pilot.press("ctrl+p", *f"approve review {item.id}")  # type: ignore[attr-defined]
        await asyncio.sleep(0.5)
        await pilot.press("enter")  # type: ignore[attr-defined]
        await until(pilot, lambda: engine.store.get_run(waiting).status == "succeeded")

    drive(app_on(engine), body)


def test_the_run_screen_shows_an_agents_messages_and_tool_calls() -> None:
    from podium.core.store.agents import AgentEntry

    engine = make_engine(ScriptedProvider(answer=lambda req, n: f"out{n}"))
    run_id = run(engine, CHAIN)
    engine.store.add_messages(run_id, "s1", [
        AgentEntry(role="user", content="What is 17 + 25?"),
        AgentEntry(role="assistant", tool_calls=[
            {"id": "c1", "name": "calculator", "arguments": {"expression": "17 + 25"}}],
            input_tokens=40, output_tokens=9),
        AgentEntry(role="tool", content="42", tool_call_id="c1", tool_name="calculator",
                   duration_ms=0.4),
        AgentEntry(role="stop", content="final answer given", tool_name="final_answer"),
    ])

    async def body(app: PodiumApp, pilot: object) -> None:
        await until(pilot, lambda: isinstance(app.screen, RunsScreen))
        def detail() -> str:
            panes = app.screen.query("#detail") if isinstance(app.screen, RunScreen) else []
            return str(panes[0].render()) if panes else ""

        app.open_run(run_id)
        await until(pilot, lambda: "transcript" in detail())
        shown = detail()
        assert "transcript: 1 model turns, 1 tool calls" in shown
        assert '→ calculator {"expression": "17 + 25"}  [40+9 tok]' in shown
        assert "← calculator 0 ms: 42" in shown and "■ final answer given" in shown

    drive(app_on(engine), body)
