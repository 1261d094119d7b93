"""Small modal dialogs: edit a value, give feedback."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from podium.core.recipe.schema import Recipe
from podium.tui.screens.base import PodiumFooter
from podium.tui.screens.files import PathSuggester, PickFile


class EditValue(ModalScreen[str | None]):
    """Edit a text or JSON value; ctrl+s saves, escape cancels. With `check`, what is
    typed is checked as it changes (against the step's schema) and the problem shown;
    below, the change against the original as a diff."""

    BINDINGS = [Binding("ctrl+s", "save", "Save", priority=True),
                Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, text: str, *, json: bool = False,
                 check: Callable[[str], str | None] | None = None,
                 original: str | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.json = json
        self.check = check
        self.original = text if original is None else original

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield TextArea(self.text, language="json" if self.json else None,
                           id="value", show_line_numbers=self.json)
            yield Static(id="problem")
            yield Static(id="diff")
            yield PodiumFooter()

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()
        self._changed()

    @on(TextArea.Changed)
    def _changed(self) -> None:
        text = self.query_one(TextArea).text
        problem = self.check(text) if self.check else None
        shown = self.query_one("#problem", Static)
        shown.update(Text(problem, style="red") if problem else
                     Text("fits the step's schema" if self.check else "", style="green"))
        lines = list(difflib.unified_diff(self.original.splitlines(), text.splitlines(),
                                          "original", "edited", lineterm="", n=1))[2:]
        diff = Text()
        for line in lines[:12]:
            diff.append(line + "\n", style="green" if line.startswith("+") else
                        "red" if line.startswith("-") else "dim")
        self.query_one("#diff", Static).update(diff)

    def action_save(self) -> None:
        self.dismiss(self.query_one("#value", TextArea).text)

    def action_cancel(self) -> None:
        self.dismiss(None)


class AskText(ModalScreen[str | None]):
    """One line of text (a reviewer's feedback); enter gives it, escape cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, question: str, placeholder: str = "") -> None:
        super().__init__()
        self.question = question
        self.placeholder = placeholder

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog", classes="small"):
            yield Label(self.question, id="dialog-title")
            yield Input(placeholder=self.placeholder, id="answer")

    @on(Input.Submitted)
    def _give(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class LaunchForm(ModalScreen[dict[str, Any] | None]):
    """A form made from a recipe's `[inputs]`: one field each, with its type,
    description and default; a `file` input takes a path, completed as it is typed
    (`right` takes the rest) or picked from a folder tree (`ctrl+f`). Enter on the
    last field (or the Run button) launches; escape cancels. Values are checked by
    the engine when the run is made, with the same messages as on the command line."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"),
                Binding("ctrl+s", "launch", "Run", priority=True),
                Binding("ctrl+f", "pick_file", "Pick a file")]

    def __init__(self, recipe: Recipe) -> None:
        super().__init__()
        self.recipe = recipe

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="dialog"):
            yield Label(f"Run {self.recipe.name}", id="dialog-title")
            for name, spec in self.recipe.inputs.items():
                need = "required" if spec.is_required else "optional"
                yield Label(f"{name} ({spec.type}, {need})" +
                            (f": {spec.description}" if spec.description else ""))
                default = spec.default if isinstance(spec.default, str) else \
                    "" if spec.default is None else str(spec.default)
                if spec.type == "file":
                    yield Input(value=default, id=f"in-{name}", classes="file",
                                placeholder="a path (ctrl+f picks one)",
                                suggester=PathSuggester())
                else:
                    yield Input(value=default, placeholder=spec.type, id=f"in-{name}")
            yield Button("Run", variant="primary", id="run")
            yield PodiumFooter()

    def on_mount(self) -> None:
        first = self.query(Input)
        (first.first() if first else self.query_one("#run", Button)).focus()

    def values(self) -> dict[str, Any]:
        """What was typed; empty optional fields are left out (their defaults hold)."""
        out: dict[str, Any] = {}
        for name in self.recipe.inputs:
            value = self.query_one(f"#in-{name}", Input).value
            if value != "":
                out[name] = value
        return out

    @on(Input.Submitted)
    def _next(self, event: Input.Submitted) -> None:
        fields = list(self.query(Input))
        if event.input is fields[-1]:
            self.action_launch()
        else:
            self.focus_next()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "pick_file":  # only offered on a `file` input
            return isinstance(self.focused, Input) and self.focused.has_class("file")
        return True

    def action_pick_file(self) -> None:
        """Choose the focused `file` input's path from a folder tree."""
        field = self.focused
        if not isinstance(field, Input) or not field.has_class("file"):
            return
        typed = Path(field.value).expanduser() if field.value else Path.cwd()
        start = typed if typed.is_dir() else typed.parent

        def done(path: str | None) -> None:
            if path is not None:
                field.value = path
            field.focus()

        self.app.push_screen(PickFile(f"Choose {field.id.removeprefix('in-')}"
                                      if field.id else "Choose a file", start), done)

    @on(Button.Pressed, "#run")
    def action_launch(self) -> None:
        self.dismiss(self.values())

    def action_cancel(self) -> None:
        self.dismiss(None)


class CompareView(ModalScreen[str | None]):
    """A step's stored answer beside a fresh one from the other tier; l, r, b or n says
    which was right (local, remote, both, neither); escape leaves it unjudged."""

    BINDINGS = [Binding("l", "verdict('local')", "Local right"),
                Binding("r", "verdict('remote')", "Remote right"),
                Binding("b", "verdict('both')", "Both"),
                Binding("n", "verdict('neither')", "Neither"),
                Binding("escape", "cancel", "Later")]

    def __init__(self, step: str, original: Any, fresh: Any) -> None:
        super().__init__()
        self.step = step
        self.sides = (original, fresh)

    def compose(self) -> ComposeResult:
        import json

        def text(side: Any) -> str:
            value = side.output
            shown = value if isinstance(value, str) else json.dumps(value, indent=2)
            return (f"{side.model} ({side.tier}) · {side.input_tokens}+{side.output_tokens} "
                    f"tokens · ${side.cost:.5f}\n\n{shown}")

        with Vertical(id="dialog"):
            yield Label(f"'{self.step}' on both tiers: which answer is right?",
                        id="dialog-title")
            with Horizontal(id="sides"):
                yield Static(text(self.sides[0]), classes="side")
                yield Static(text(self.sides[1]), classes="side")
            yield PodiumFooter()

    def action_verdict(self, verdict: str) -> None:
        self.dismiss(verdict)

    def action_cancel(self) -> None:
        self.dismiss(None)
