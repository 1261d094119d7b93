"""The port between the engine and model backends.

Core builds a `ModelRequest` and calls a `Provider`; adapters in `providers/`
implement the protocol. Retries, routing, timing and cost live in core, so a
provider only turns a request into text and usage (httpx's client/transport split).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Role = Literal["system", "user", "assistant", "tool"]


@dataclass(frozen=True, slots=True)
class Tool:
    """A function a model may call: its name, what it does, and a JSON Schema (an
    object) of its arguments."""

    name: str
    description: str
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object",
                                                                "properties": {}})


@dataclass(frozen=True, slots=True)
class ToolCall:
    """A model's request to call a tool, with its arguments parsed from JSON."""

    id: str
    name: str
    arguments: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Message:
    """One chat message. An assistant message may carry the tool calls it made; a
    `tool` message carries one call's result, linked by `tool_call_id`."""

    role: Role
    content: str
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None


@dataclass(frozen=True, slots=True)
class ModelRequest:
    """What a step asks of a model.

    `schema` is a JSON Schema the answer must satisfy (a grammar locally,
    `response_format` remotely). `tools` are functions the model may call instead
    of answering (providers with `supports_tools`). `top_logprobs` asks for that
    many alternatives per generated token, where the backend can give them.
    """

    messages: tuple[Message, ...]
    temperature: float = 0.2
    max_tokens: int = 256
    schema: dict[str, Any] | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    top_logprobs: int = 0
    tools: tuple[Tool, ...] = ()


@dataclass(frozen=True, slots=True)
class Usage:
    """Tokens a call consumed."""

    input_tokens: int = 0
    output_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.input_tokens + other.input_tokens,
                     self.output_tokens + other.output_tokens)


@dataclass(frozen=True, slots=True)
class TokenLogprob:
    """A generated token, its log probability and the best alternatives."""

    token: str
    logprob: float
    top: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A piece of a streamed answer. The last chunk carries `usage` and `finish_reason`;
    tool calls come whole, once their arguments have all arrived. A `note` says what
    the backend is doing before it can answer (waiting for the machine's turn at the
    local model), for a person watching."""

    text: str = ""
    usage: Usage | None = None
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()
    note: str | None = None


@dataclass(frozen=True, slots=True)
class ModelResponse:
    """A whole answer: text, or tool calls (`finish_reason` "tool_calls"), or both."""

    text: str
    usage: Usage
    model: str
    finish_reason: str | None = None
    logprobs: tuple[TokenLogprob, ...] = ()
    tool_calls: tuple[ToolCall, ...] = ()


@runtime_checkable
class Provider(Protocol):
    """A model backend. One instance serves one model.

    Class attributes declare what it can do; `stream` is the one required call
    (`collect` turns it into a `ModelResponse`).
    """

    name: str  # the catalog name of the model it serves
    tier: Literal["local", "remote"]
    supports_schema: bool
    supports_tools: bool
    needs_key: bool
    key_env_var: str | None

    def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        """Yield the answer as it is generated; the last chunk has the usage."""
        ...


async def collect(provider: Provider, request: ModelRequest,
                  on_text: Any = None, on_note: Any = None) -> ModelResponse:
    """Run `provider.stream` to the end, calling `on_text(piece)` for each piece of text
    and `on_note(note)` for each note on what the backend is doing."""
    parts: list[str] = []
    usage = Usage()
    finish: str | None = None
    logprobs: list[TokenLogprob] = []
    calls: list[ToolCall] = []
    async for chunk in provider.stream(request):
        if chunk.note and on_note is not None:
            on_note(chunk.note)
        calls.extend(chunk.tool_calls)
        if chunk.text:
            parts.append(chunk.text)
            if on_text is not None:
                on_text(chunk.text)
        if chunk.logprobs:
            logprobs.extend(chunk.logprobs)
        if chunk.usage is not None:
            usage = chunk.usage
        if chunk.finish_reason is not None:
            finish = chunk.finish_reason
    return ModelResponse("".join(parts), usage, provider.name, finish, tuple(logprobs),
                         tuple(calls))


@runtime_checkable
class ChoiceScorer(Protocol):
    """Optional capability: the log-likelihood of each of several complete answers.

    Local models implement it, which makes `classify` exact and gives it a real
    confidence; backends without it get a constrained answer instead.
    """

    async def score_choices(self, request: ModelRequest,
                            choices: list[str]) -> tuple[list[float], Usage]:
        """Log-probability of each choice as the whole answer to `request`."""
        ...
