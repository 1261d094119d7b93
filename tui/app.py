"""The Textual app over the in-process engine: runs, one run, the review queue.

The app owns the engine; screens ask it to act (`decide`, `rerun`, ...) and read what
to show through a `Reader` in thread workers. Engine work runs in async workers on the
app's loop (the local model's calls run in their own thread, as everywhere), and its
events reach screens as messages, so the UI never waits on a model or the disk.
"""

from __future__ import annotations

import gc
import json
import time
from collections.abc import Awaitable, Callable, Iterable
from functools import partial
from typing import Any

from textual import events, work
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.command import Hit, Hits, Provider
from textual.dom import DOMNode
from textual.screen import Screen
from textual.widgets import Static
from textual.worker import Worker

from podium.core.errors import PodiumError
from podium.core.events import Event, RunFinished
from podium.core.recipe.schema import Recipe
from podium.core.run.engine import Engine
from podium.core.store import ReviewRecord, StepRecord, Store
from podium.tui.data import Reader
from podium.tui.messages import EngineEvent
from podium.tui.screens.dialogs import AskText, CompareView, EditValue, LaunchForm
from podium.tui.screens.recipes import RecipesScreen
from podium.tui.screens.review import ReviewScreen
from podium.tui.screens.run import RunScreen
from podium.tui.screens.runs import RunsScreen


def load_prefs() -> dict[str, Any]:
    """The app's remembered choices (the theme), from the config folder."""
    from podium.core import paths

    try:
        value = json.loads((paths.config_dir() / "tui.json").read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def save_prefs(prefs: dict[str, Any]) -> None:
    """Remember the app's choices; a folder that cannot be written is not an error."""
    from podium.core import paths

    try:
        paths.config_dir().mkdir(parents=True, exist_ok=True)
        (paths.config_dir() / "tui.json").write_text(json.dumps(prefs))
    except OSError:
        pass


# Python's full garbage collections stopped the app for 50 to 120 ms at a time during
# a fan-out (the engine and the repaints make tens of thousands of objects a second),
# which is what held key presses back. So while the app runs, full collections are
# not left to chance: once the app is up, what Python, Textual and the first screen
# made is frozen out of the collector's sight, and a full collection runs from a
# timer when no key came for a moment (or at least once a minute), then freezes what
# survived. The young generations are still collected as usual (a few ms each).
COLLECT_S = 5.0
COLLECT_IDLE_S = 1.0
COLLECT_AT_LEAST_S = 60.0


class TooSmall(Screen[None]):
    """Shown instead of a broken layout while the terminal is too small."""

    def __init__(self, width: int, height: int) -> None:
        super().__init__()
        self.need = (width, height)

    def compose(self) -> ComposeResult:
        yield Static(f"The terminal is too small for Podium: make it at least "
                     f"{self.need[0]}x{self.need[1]}.", id="too-small")


class PodiumCommands(Provider):
    """The command palette: go to a screen, open a run by id, run a recipe by name,
    approve, edit, reject or regenerate a waiting review. (Each screen's own keys are
    in the palette too, as system commands: see `PodiumApp.get_system_commands`.)"""

    async def search(self, query: str) -> Hits:
        app = self.app
        assert isinstance(app, PodiumApp)
        matcher = self.matcher(query)
        fixed: list[tuple[str, Callable[[], Any], str]] = [
            ("Runs", app.action_show_runs, "every run, newest first"),
            ("Review queue", app.action_show_review, "what waits for a person"),
            ("Recipes", app.action_show_recipes, "check and launch a recipe"),
            ("Chat", app.action_show_chat, "talk with routed models"),
            ("Models", app.action_show_models, "the catalog, servers, spend"),
        ]
        for name, action, help_text in fixed:
            if (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name), action, help=help_text)
        runs = await app.call_reader(app.reader.runs, 200)
        for run in runs:
            name = f"Open run {run.id} ({run.recipe_name}, {run.shown_status})"
            if (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name),
                          lambda rid=run.id: app.open_run(rid), help="show its steps")
        for item in await app.call_reader(app.reader.queue):
            what = f"review {item.id} ({item.of_step} of run {item.run_id})"
            choices: list[tuple[str, Callable[[], Any], str]] = [
                (f"Approve {what}", partial(app.decide, item.id, "approve"),
                 "pass its output on; the run continues"),
                (f"Edit {what}", partial(app.edit_review, item),
                 "change its output (checked against the step's schema), then pass it on"),
                (f"Reject {what}", partial(app.reject, item),
                 "say what should change; the step runs again with your feedback"),
                (f"Regenerate {what}", partial(app.decide, item.id, "regenerate"),
                 "run the reviewed step again as it was"),
            ]
            for name, action, help_text in choices:
                if (score := matcher.match(name)) > 0:
                    yield Hit(score, matcher.highlight(name), action, help=help_text)
        from podium.tui.screens.recipes import find_all

        for found in await app.call_reader(find_all):
            name = f"Run recipe {found.name}"
            if found.recipe is not None and (score := matcher.match(name)) > 0:
                yield Hit(score, matcher.highlight(name),
                          lambda f=found: app.start_recipe(f.recipe),
                          help=found.recipe.description or f"from {found.where}")


class PodiumApp(App[None]):
    """Podium's terminal UI."""

    CSS_PATH = "app.tcss"
    TITLE = "Podium"
    COMMANDS = App.COMMANDS | {PodiumCommands}
    # The footer shows what fits at 80 columns; `?` and the palette list the rest.
    BINDINGS = [Binding("R", "show_runs", "Runs", show=False),
                Binding("v", "show_review", "Review queue"),
                Binding("n", "show_recipes", "New run"),
                Binding("c", "show_chat", "Chat"),
                Binding("M", "show_models", "Models", show=False),
                Binding("question_mark", "keys", "Keys"),
                Binding("q", "quit", "Quit")]

    MIN_SIZE = (60, 16)

    def __init__(self, engine: Engine, reader: Reader, *, open_run: str | None = None,
                 review: bool = False) -> None:
        super().__init__()
        self.engine = engine
        self.reader = reader
        self.first_run = open_run
        self.first_review = review
        self.running: dict[str, Worker[Any]] = {}  # runs launched here, by id
        self.last_key = self.collected = 0.0
        self._thresholds = gc.get_threshold()
        engine.on_event = self.engine_event

    def on_mount(self) -> None:
        self.theme = load_prefs().get("theme", self.theme)
        self.push_screen(RunsScreen())
        if self.first_run:
            self.open_run(self.first_run)
        if self.first_review:
            self.action_show_review()
        self._thresholds = gc.get_threshold()
        gc.set_threshold(self._thresholds[0], self._thresholds[1], 1_000_000)
        self.call_after_refresh(gc.freeze)
        self.set_interval(COLLECT_S, self._collect)

    def _collect(self) -> None:
        now = time.monotonic()
        if now - self.last_key > COLLECT_IDLE_S or now - self.collected > COLLECT_AT_LEAST_S:
            gc.collect()
            gc.freeze()
            self.collected = now

    def on_key(self, event: events.Key) -> None:
        self.last_key = time.monotonic()

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        """Textual's commands, and every key of the screen the palette was opened
        on (edit, rerun, graph, filter, ...), so each action is in the palette."""
        yield from super().get_system_commands(screen)
        seen: set[str] = {"command_palette", "keys", "quit"}
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if not binding.description or binding.system or binding.action in seen or \
                    not active.enabled or active.node is self:
                continue
            seen.add(binding.action)
            yield SystemCommand(f"{binding.description} ({self.get_key_display(binding)})",
                                f"this screen's key {key}",
                                partial(self._run_key, active.node, binding.action))

    def _run_key(self, node: DOMNode, action: str) -> None:
        self.call_later(self.run_action, action, node)

    def watch_theme(self, theme: str) -> None:
        """Keep the person's choice of theme for next time."""
        prefs = load_prefs()
        if prefs.get("theme") != theme:
            save_prefs({**prefs, "theme": theme})

    def action_keys(self) -> None:
        """Show or hide the panel listing every key of the screen."""
        if self.screen.query("HelpPanel"):
            self.action_hide_help_panel()
        else:
            self.action_show_help_panel()

    def on_resize(self, event: events.Resize) -> None:
        width, height = self.MIN_SIZE
        small = event.size.width < width or event.size.height < height
        if small and not isinstance(self.screen, TooSmall):
            self.push_screen(TooSmall(width, height))
        elif not small and isinstance(self.screen, TooSmall):
            self.pop_screen()

    # --- engine events ----------------------------------------------------------------

    def engine_event(self, event: Event) -> None:
        """The engine's callback: hand each event to the screen on top as a message."""
        self.screen.post_message(EngineEvent(event))
        if isinstance(event, RunFinished) and event.status in ("failed", "waiting"):
            self.notify(f"run {event.run_id} {event.status}" +
                        (f": {event.error}" if event.error else ""),
                        severity="warning" if event.status == "waiting" else "error")

    async def call_reader(self, fn: Callable[..., Any], *args: Any) -> Any:
        """Run a reader call in a thread (for the command palette's search)."""
        import asyncio

        return await asyncio.to_thread(fn, *args)

    # --- navigation -------------------------------------------------------------------

    def open_run(self, run_id: str) -> None:
        """Show one run."""
        self.push_screen(RunScreen(run_id))

    def action_show_runs(self) -> None:
        while len(self.screen_stack) > 2:
            self.pop_screen()

    def action_show_review(self) -> None:
        if not isinstance(self.screen, ReviewScreen):
            self.push_screen(ReviewScreen())

    def action_show_recipes(self) -> None:
        if not isinstance(self.screen, RecipesScreen):
            self.push_screen(RecipesScreen())

    def action_show_chat(self) -> None:
        from podium.tui.screens.chat import ChatScreen

        if not isinstance(self.screen, ChatScreen):
            self.push_screen(ChatScreen())

    def action_show_models(self) -> None:
        from podium.tui.screens.models import ModelsScreen

        if not isinstance(self.screen, ModelsScreen):
            self.push_screen(ModelsScreen())

    def start_recipe(self, recipe: Recipe) -> None:
        """Launch `recipe`, asking for its inputs first when it has any."""
        if not recipe.inputs:
            self.launch(recipe, {})
            return

        def done(values: dict[str, Any] | None) -> None:
            if values is not None:
                self.launch(recipe, values)

        self.push_screen(LaunchForm(recipe), done)

    def launch(self, recipe: Recipe, inputs: dict[str, Any]) -> None:
        """Make a run of `recipe`, show it, and run it in the background."""
        try:
            run_id = self.engine.create(recipe, inputs)
        except PodiumError as e:
            self.notify(e.message + (f"\n{e.hint}" if e.hint else ""),
                        title="Cannot start", severity="error", timeout=8)
            return
        self.open_run(run_id)

        async def job() -> None:
            await self.engine.resume(run_id)
        self.running[run_id] = self.act(f"run {run_id}", job)

    # --- actions on the engine (async workers: the UI stays live while runs go on) ----

    @work(group="engine", exit_on_error=False)
    async def act(self, what: str, job: Callable[[], Awaitable[Any]]) -> Any:
        """Run engine work; an expected failure becomes a notification."""
        try:
            return await job()
        except PodiumError as e:
            self.notify(e.message + (f"\n{e.hint}" if e.hint else ""), title=f"{what} failed",
                        severity="error", timeout=8)
            return None
        except Exception as e:  # a bug: said, and the app goes on (the run stays stored)
            self.notify(f"{type(e).__name__}: {e}\nThis is a bug in Podium; the run is kept "
                        "and can be resumed.", title=f"{what} failed", severity="error",
                        timeout=12)
            raise

    def decide(self, review_id: int, action: str, *, retry: Callable[[str], None] | None
               = None, **details: Any) -> None:
        """Record a decision; the run continues in the background."""
        async def job() -> None:
            try:
                await self.engine.decide(review_id, action, **details)
            except PodiumError as e:
                if retry is None or "value" not in details:
                    raise
                self.notify(e.message, title="Not saved", severity="error", timeout=8)
                retry(details["value"])  # back to the editor, the text kept
        self.notify(f"review {review_id}: {action}")
        self.act(f"{action} review {review_id}", job)

    @work(group="edit", exclusive=True, exit_on_error=False)
    async def edit_review(self, item: ReviewRecord) -> None:
        """Edit an item's value, checked as it is typed, then decide `edit` with it."""
        import asyncio

        try:
            check = await asyncio.to_thread(self.reader.value_checker, item)
        except PodiumError as e:
            self.notify(e.message, severity="error")
            return
        original = item.original if isinstance(item.original, str) \
            else json.dumps(item.original, indent=2, ensure_ascii=False)

        def ask(text: str) -> None:
            self.push_screen(EditValue(f"Edit review {item.id} (ctrl+s saves)", text,
                                       json=not isinstance(item.original, str), check=check,
                                       original=original), done)

        def done(text: str | None) -> None:
            if text is not None:
                self.decide(item.id, "edit", value=text, retry=ask)

        ask(original)

    def reject(self, item: ReviewRecord) -> None:
        """Reject with feedback for the remake."""
        def done(text: str | None) -> None:
            if text is not None:
                self.decide(item.id, "reject", feedback=text)

        self.push_screen(AskText(f"Why is review {item.id} rejected?",
                                 "what should change"), done)

    def edit_step(self, run_id: str, step: StepRecord) -> None:
        """Edit a finished step's output by hand; what follows it becomes stale."""
        from podium.core.review.edits import edit_output

        def ask(text: str) -> None:
            self.push_screen(EditValue(f"Edit '{step.step_id}' of run {run_id} "
                                       "(ctrl+s saves)", text,
                                       json=not isinstance(step.output, str)), done)

        def done(text: str | None) -> None:
            if text is None:
                return
            try:
                edit = edit_output(self.engine.store, run_id, step.step_id, text)
            except PodiumError as e:
                self.notify(e.message, title="Not saved", severity="error", timeout=8)
                ask(text)
                return
            stale = ", ".join(edit.stale) or "nothing"
            self.notify(f"'{step.step_id}' edited; stale now: {stale}. Press r to rerun.")
            self.screen.post_message(EngineEvent(RunFinished(run_id, "edited", None)))

        ask(step.output if isinstance(step.output, str)
            else json.dumps(step.output, indent=2, ensure_ascii=False))

    def compare(self, run_id: str, step_id: str) -> None:
        """Run a finished model step on the other tier; show both; take a verdict."""
        from podium.core.models.compare import compare, judge

        async def job() -> None:
            original, fresh = await compare(self.engine.store, self.engine.hub, run_id,
                                            step_id)

            def done(verdict: str | None) -> None:
                if verdict is not None:
                    judge(self.engine.store, run_id, step_id, verdict)
                    self.notify(f"verdict kept: {verdict}; the router learns from it")

            self.push_screen(CompareView(step_id, original, fresh), done)
        self.notify(f"asking the other tier for '{step_id}'")
        self.act(f"compare {step_id}", job)

    def cancel(self, run_id: str) -> None:
        """Stop a run this app is executing (it stays resumable)."""
        running = self.running.get(run_id)
        if running is None or running.is_finished:
            self.notify(f"run {run_id} is not running in this app", severity="warning")
            return
        running.cancel()
        self.notify(f"run {run_id} cancelled; u resumes it")

    def rerun(self, run_id: str) -> None:
        """Recompute what is out of date, as a new run, and show it."""
        async def job() -> None:
            result = await self.engine.rerun(run_id)
            if result is None:
                self.notify("nothing is out of date: no step to run again")
            else:
                self.notify(f"rerun {result.run_id}: {result.status}")
        self.act(f"rerun {run_id}", job)

    def resume(self, run_id: str) -> None:
        """Continue a run from the store."""
        async def job() -> None:
            result = await self.engine.resume(run_id)
            self.notify(f"run {result.run_id}: {result.status}")
        self.act(f"resume {run_id}", job)

    def on_unmount(self) -> None:
        self.reader.close()
        gc.unfreeze()  # the collector as it was, for whatever runs in this process next
        gc.set_threshold(*self._thresholds)


def make_app(store: Store, engine: Engine | None = None, *, open_run: str | None = None,
             review: bool = False) -> PodiumApp:
    """The app on `store`, with `engine` (default: the one config.toml describes)."""
    if engine is None:
        from podium.tui.factory import make_engine

        engine = make_engine(store)
    return PodiumApp(engine, Reader(store.path), open_run=open_run, review=review)
