"""Chat with routed models: every reply says which model answered, why it was chosen,
and what it cost. Pin the route (auto, local, remote); reopen earlier chats."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from podium.core.errors import PodiumError
from podium.core.models.chat import ChatSession, Turn
from podium.core.recipe.schema import ModelOptions
from podium.tui.screens.base import PodiumFooter, PodiumHeader, alive

ROUTES = ("auto", "local", "remote")


class ChatText(Message):
    """A piece of a reply as it streams."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ChatScreen(Screen[None]):
    """Earlier chats on the left; the conversation and the prompt on the right."""

    BINDINGS = [Binding("escape", "app.pop_screen", "Back"),
                Binding("ctrl+o", "cycle_route", "Route"),
                Binding("ctrl+n", "new_chat", "New chat")]

    def __init__(self) -> None:
        super().__init__()
        self.session: ChatSession | None = None
        self.route = "auto"
        self.transcript = Text()
        self.live = ""

    def compose(self) -> ComposeResult:
        yield PodiumHeader()
        with Horizontal():
            yield OptionList(id="chats")
            with Vertical(id="conversation"):
                with VerticalScroll(id="transcript-box"):
                    yield Static(id="transcript")
                yield Input(placeholder="ask; enter sends", id="prompt")
        yield PodiumFooter()

    def on_mount(self) -> None:
        if not alive(self):  # popped before it mounted: nothing to set up
            return
        self.title = "chat"
        self._subtitle()
        self.query_one("#prompt").focus()
        self.load_chats()

    def _subtitle(self) -> None:
        chat = self.session.chat_id if self.session else "new"
        self.sub_title = f"chat {chat} · route {self.route} (ctrl+o)"

    @work(thread=True, group="chats", exclusive=True)
    def load_chats(self) -> None:
        from podium.tui.app import PodiumApp

        assert isinstance(self.app, PodiumApp)
        chats = self.app.reader.chats()
        self.app.call_from_thread(self._show_chats, chats)

    def _show_chats(self, chats: list[dict[str, Any]]) -> None:
        box = self.query_one(OptionList)
        box.clear_options()
        for c in chats:
            box.add_option(Option(f"{c['title'] or c['id']} ({c['messages']})", id=c["id"]))

    def _paint(self) -> None:
        shown = self.transcript.copy()
        if self.live:
            shown.append(self.live)
        self.query_one("#transcript", Static).update(shown)
        self.query_one("#transcript-box", VerticalScroll).scroll_end(animate=False)

    def action_cycle_route(self) -> None:
        self.route = ROUTES[(ROUTES.index(self.route) + 1) % len(ROUTES)]
        self._subtitle()

    def action_new_chat(self) -> None:
        self.session, self.transcript, self.live = None, Text(), ""
        self._subtitle()
        self._paint()

    @on(OptionList.OptionSelected)
    def _open(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.reopen(event.option.id)

    @work(group="chat", exclusive=True, exit_on_error=False)
    async def reopen(self, chat_id: str) -> None:
        from podium.tui.app import PodiumApp

        assert isinstance(self.app, PodiumApp)
        engine = self.app.engine
        try:
            self.session = ChatSession.open(engine.store, engine.hub, chat_id, self._options())
        except PodiumError as e:
            self.notify(e.message, severity="error")
            return
        self.transcript = Text()
        for m in self.session.history:
            self._add(m.role, m.content)
        self._subtitle()
        self._paint()

    def _options(self) -> ModelOptions:
        return ModelOptions(route=self.route, max_tokens=512, temperature=0.7)

    def _add(self, role: str, text: str, turn: Turn | None = None) -> None:
        self.transcript.append(("you: " if role == "user" else "") + text + "\n",
                               style="bold" if role == "user" else "")
        if turn is not None:
            reason = turn.reasons[0] if turn.reasons else ""
            self.transcript.append(
                f"  {turn.model} ({turn.tier}) · {turn.input_tokens}+{turn.output_tokens} "
                f"tokens · ${turn.cost:.5f} · {turn.seconds:.1f}s · {reason}\n", style="dim")
        self.transcript.append("\n")

    @on(Input.Submitted, "#prompt")
    def _send(self, event: Input.Submitted) -> None:
        text = event.value.strip()
        if text:
            event.input.value = ""
            self._add("user", text)
            self._paint()
            self.ask(text)

    @work(group="chat", exclusive=False, exit_on_error=False)
    async def ask(self, text: str) -> None:
        from podium.tui.app import PodiumApp

        assert isinstance(self.app, PodiumApp)
        engine = self.app.engine
        try:
            if self.session is None:
                self.session = ChatSession.start(engine.store, engine.hub,
                                                 options=self._options(), title=text[:40])
                self._subtitle()
                self.load_chats()
            self.session.options = self._options()
            turn = await self.session.ask(text, self._piece)
        except PodiumError as e:
            self.live = ""
            self.notify(e.message + (f"\n{e.hint}" if e.hint else ""), title="No answer",
                        severity="error", timeout=8)
            return
        self.live = ""
        self._add("assistant", turn.text, turn)
        self._paint()

    def _piece(self, piece: str) -> None:
        self.post_message(ChatText(piece))

    @on(ChatText)
    def _stream(self, message: ChatText) -> None:
        self.live += message.text
        self._paint()
