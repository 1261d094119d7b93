"""Small modal dialogs: edit a value, give feedback."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Footer, Input, Label, TextArea


class EditValue(ModalScreen[str | None]):
    """Edit a text or JSON value; ctrl+s saves, escape cancels."""

    BINDINGS = [Binding("ctrl+s", "save", "Save", priority=True),
                Binding("escape", "cancel", "Cancel")]

    def __init__(self, title: str, text: str, *, json: bool = False) -> None:
        super().__init__()
        self.title_text = title
        self.text = text
        self.json = json

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Label(self.title_text, id="dialog-title")
            yield TextArea(self.text, language="json" if self.json else None,
                           id="value", show_line_numbers=self.json)
            yield Footer()

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
