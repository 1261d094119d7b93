"""Anthropic Messages API over httpx.

Structured output uses a forced tool call: the schema becomes the tool's input
schema, and the tool's input (streamed as JSON pieces) is the answer. A schema
that is not an object is wrapped in one, since tool inputs must be objects.
Real tools (`ModelRequest.tools`) become `tool_use` blocks and come back as
`ToolCall`s; their results go back as `tool_result` blocks in a user turn.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from podium.core.errors import BadResponse, ProviderError, RateLimited, Unavailable
from podium.core.models.provider import Chunk, Message, ModelRequest, ToolCall, Usage
from podium.providers.excerpt import excerpt
from podium.providers.http import RemoteProvider, read_error, status_error, transport_error
from podium.providers.sse import ODD_HINT, sse_events
from podium.providers.tools import tool_arguments

API_VERSION = "2023-06-01"


class AnthropicProvider(RemoteProvider):
    """One Claude model."""

    def __init__(self, name: str, *, model: str, client: httpx.AsyncClient,
                 base_url: str = "https://api.anthropic.com", key: str | None = None,
                 key_env_var: str | None = "ANTHROPIC_API_KEY",
                 tier: Literal["local", "remote"] = "remote", concurrency: int = 128) -> None:
        super().__init__(name, model=model, base_url=base_url, client=client, key=key,
                         key_env_var=key_env_var, tier=tier, concurrency=concurrency)

    models_path = "/v1/models"

    def headers(self) -> dict[str, str]:
        """The API version and the key."""
        return {"anthropic-version": API_VERSION, **({"x-api-key": self._key} if self._key
                                                      else {})}

    @staticmethod
    def _wrapped(schema: dict[str, Any]) -> bool:
        return schema.get("type") != "object"

    def body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body for `request`."""
        system = "\n\n".join(m.content for m in request.messages if m.role == "system")
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": request.max_tokens,
            "temperature": min(request.temperature, 1.0),
            "messages": _messages(request.messages),
            "stream": True,
        }
        if system:
            body["system"] = system
        if request.stop:
            body["stop_sequences"] = list(request.stop)
        if request.tools and request.schema is not None:
            raise ProviderError(f"{self.name}: a call cannot both offer tools and require a "
                                "schema here", "ask for the structured answer in a later call")
        if request.tools:
            body["tools"] = [{"name": t.name, "description": t.description,
                              "input_schema": t.parameters} for t in request.tools]
        if request.schema is not None:
            schema = request.schema
            if self._wrapped(schema):
                schema = {"type": "object", "properties": {"value": schema},
                          "required": ["value"]}
            body["tools"] = [{"name": "answer", "description": "Give the answer.",
                              "input_schema": schema}]
            body["tool_choice"] = {"type": "tool", "name": "answer"}
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        """Stream one message."""
        where = self.where
        headers = self.headers()
        wrapped = request.schema is not None and self._wrapped(request.schema)
        buffered: list[str] = []
        read = _Reading(tools=bool(request.tools))
        self.check_url(where)
        async with self._gate:
            try:
                async with self._client.stream("POST", f"{self.base_url}/v1/messages",
                                               json=self.body(request),
                                               headers=headers) as response:
                    if response.status_code >= 400:
                        body = await read_error(response)
                        raise status_error(response, where, body, self._key)
                    async for event, data in sse_events(response, where, done_marker=False,
                                                        secret=self._key):
                        if not isinstance(data, dict):
                            raise BadResponse(f"{where}: an event of unexpected shape",
                                              ODD_HINT)
                        kind = data.get("type", event)
                        if kind == "error":
                            raise _stream_error(data, where, self._key)
                        try:
                            text = read.take(kind, data)
                        except (AttributeError, TypeError, ValueError, OverflowError):
                            raise BadResponse(f"{where}: an event of unexpected shape "
                                              f"({excerpt(str(kind), None, 40)})",
                                              ODD_HINT) from None
                        if text and wrapped:
                            buffered.append(text)
                        elif text:
                            yield Chunk(text=text)
                    if not read.stopped:
                        raise BadResponse(f"{where}: the stream ended before message_stop",
                                          "the connection was probably cut; it is retried")
            except httpx.HTTPError as e:
                raise transport_error(e, where) from None
        if wrapped:
            try:
                value = json.loads("".join(buffered))["value"]
            except (json.JSONDecodeError, KeyError, TypeError, RecursionError):
                raise BadResponse(f"{where}: the structured answer is not valid JSON",
                                  "retried; a simpler schema may help") from None
            yield Chunk(text=json.dumps(value))
        calls = read.calls
        if calls:
            yield Chunk(tool_calls=tuple(
                ToolCall(c["id"], c["name"],
                         tool_arguments(c["input"], f"{where}: tool call {c['name']}"))
                for _, c in sorted(calls.items())))
        yield Chunk(usage=Usage(read.input_tokens, read.output_tokens),
                    finish_reason="tool_calls" if calls else _finish(read.finish))


@dataclass
class _Reading:
    """What a Messages stream has said so far. `take` raises AttributeError,
    TypeError or ValueError on an event of a shape the API does not send."""

    tools: bool
    input_tokens: int = 0
    output_tokens: int = 0
    finish: str | None = None
    stopped: bool = False
    calls: dict[int, dict[str, str]] = field(default_factory=dict)  # index -> id, name, input

    def take(self, kind: str, data: dict[str, Any]) -> str:
        """Take in one event; the text it adds to the answer ("" if none)."""
        if kind == "message_start":
            usage = (data.get("message") or {}).get("usage") or {}
            self.input_tokens = int(usage.get("input_tokens") or 0)
            self.output_tokens = int(usage.get("output_tokens") or 0)
        elif kind == "content_block_start" and self.tools:
            block = data.get("content_block") or {}
            if block.get("type") == "tool_use":
                self.calls[int(data.get("index") or 0)] = {
                    "id": str(block.get("id") or ""), "name": str(block.get("name") or ""),
                    "input": ""}
        elif kind == "content_block_delta":
            delta = data.get("delta") or {}
            index = int(data.get("index") or 0)
            if index in self.calls:
                self.calls[index]["input"] += _text(delta.get("partial_json"))
                return ""
            return _text(delta.get("text") or delta.get("partial_json"))
        elif kind == "message_delta":
            self.finish = _text((data.get("delta") or {}).get("stop_reason")) or self.finish
            self.output_tokens = int((data.get("usage") or {}).get("output_tokens")
                                     or self.output_tokens)
        elif kind == "message_stop":
            self.stopped = True
        return ""


def _text(value: Any) -> str:
    """A text field's value: a string, or nothing."""
    if value is None:
        return ""
    if not isinstance(value, str):
        raise TypeError(f"expected text, got {type(value).__name__}")
    return value


def _finish(reason: str | None) -> str:
    return {"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop",
            "tool_use": "stop"}.get(reason or "", reason or "stop")


def _messages(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    """The conversation in the Messages format: no system turns (they go apart), tool
    calls as `tool_use` blocks, and tool results as `tool_result` blocks of one user
    turn (consecutive results share it: the API wants turns to alternate)."""
    out: list[dict[str, Any]] = []
    for m in messages:
        if m.role == "system":
            continue
        if m.role == "tool":
            block = {"type": "tool_result", "tool_use_id": m.tool_call_id,
                     "content": m.content}
            if out and out[-1]["role"] == "user" and isinstance(out[-1]["content"], list):
                out[-1]["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif m.tool_calls:
            blocks: list[dict[str, Any]] = [{"type": "text", "text": m.content}] \
                if m.content else []
            blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments}
                       for c in m.tool_calls]
            out.append({"role": m.role, "content": blocks})
        else:
            out.append({"role": m.role, "content": m.content})
    return out


def _stream_error(data: dict[str, Any], where: str, secret: str | None) -> Exception:
    """An `error` event as the provider error it stands for; its text as an excerpt."""
    error = data.get("error")
    error = error if isinstance(error, dict) else {}
    kind = str(error.get("type", ""))
    said = excerpt(str(error.get("message") or kind or "error in stream"), secret)
    message = f"{where}: {said}"
    if kind == "rate_limit_error":
        return RateLimited(message)
    if kind in ("overloaded_error", "api_error"):
        return Unavailable(message, "retried automatically")
    return BadResponse(message, ODD_HINT)
