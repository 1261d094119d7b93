"""A multi-turn chat in which every turn is routed on its own and stored.

The front end reads lines and prints; this module keeps the history, routes and
calls the model through the same `ModelCaller` steps use (so retries, fallbacks
and privacy hold here too), and stores each message with its model,
reasons, tokens and cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from podium.core.models.caller import ModelCaller
from podium.core.models.hub import ModelHub
from podium.core.models.provider import Message
from podium.core.recipe.schema import ModelOptions
from podium.core.store import Store


@dataclass
class Turn:
    """One answered turn, for the front end to show."""

    text: str
    model: str
    tier: str
    reasons: tuple[str, ...]
    input_tokens: int
    output_tokens: int
    cost: float
    seconds: float


class ChatSession:
    """A stored conversation. `ChatSession.open(store, hub, chat_id)` continues one."""

    def __init__(self, store: Store, hub: ModelHub, chat_id: str,
                 options: ModelOptions | None = None) -> None:
        self.store = store
        self.hub = hub
        self.chat_id = chat_id
        self.options = options or ModelOptions(max_tokens=512, temperature=0.7)
        self.history: list[Message] = []

    @classmethod
    def start(cls, store: Store, hub: ModelHub, *, options: ModelOptions | None = None,
              system: str | None = None, title: str = "chat") -> ChatSession:
        """A new chat, stored at once."""
        session = cls(store, hub, store.create_chat(title), options)
        if system:
            session.history.append(Message("system", system))
            store.add_message(session.chat_id, "system", system)
        return session

    @classmethod
    def open(cls, store: Store, hub: ModelHub, chat_id: str,
             options: ModelOptions | None = None) -> ChatSession:
        """Continue a stored chat (raises `StoreError` when unknown)."""
        session = cls(store, hub, chat_id, options)
        for m in store.chat_messages(chat_id):
            session.history.append(Message(m["role"], m["content"]))
        return session

    async def ask(self, text: str, on_text: Callable[[str], None] | None = None) -> Turn:
        """Route, answer and store one user turn."""
        self.history.append(Message("user", text))
        self.store.add_message(self.chat_id, "user", text)
        ctx = ModelCaller(self.hub, f"chat:{self.chat_id}", on_text=on_text)
        started = time.perf_counter()
        response = await ctx.generate(self.options, list(self.history))
        seconds = time.perf_counter() - started
        decision = ctx.decisions[-1]
        answer = response.text.strip()
        self.history.append(Message("assistant", answer))
        self.store.add_message(self.chat_id, "assistant", answer, model=response.model,
                               tier=decision.tier, route=decision.to_dict(),
                               input_tokens=ctx.usage.input_tokens,
                               output_tokens=ctx.usage.output_tokens, cost=ctx.cost,
                               latency_ms=seconds * 1000)
        return Turn(answer, response.model, decision.tier, decision.reasons,
                    ctx.usage.input_tokens, ctx.usage.output_tokens, ctx.cost, seconds)
