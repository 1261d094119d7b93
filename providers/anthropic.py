"""Anthropic Messages API over httpx.

Structured output uses a forced tool call: the schema becomes the tool's input
schema, and the tool's input (streamed as JSON pieces) is the answer. A schema
that is not an object is wrapped in one, since tool inputs must be objects.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx

from core.errors import BadResponse, RateLimited, Unavailable
from core.provider import Chunk, ModelRequest, Usage
from providers.http import RemoteProvider, sse_events, status_error, transport_error

API_VERSION = "2023-06-01"


class AnthropicProvider(RemoteProvider):
    """One Claude model."""

    def __init__(self, name: str, *, model: str, client: httpx.AsyncClient,
                 base_url: str = "https://api.anthropic.com", key: str | None = None,
                 key_env_var: str | None = "ANTHROPIC_API_KEY",
                 tier: Literal["local", "remote"] = "remote", concurrency: int = 128) -> None:
        super().__init__(name, model=model, base_url=base_url, client=client, key=key,
                         key_env_var=key_env_var, tier=tier, concurrency=concurrency)

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
            "messages": [{"role": m.role, "content": m.content} for m in request.messages
                         if m.role != "system"],
            "stream": True,
        }
        if system:
            body["system"] = system
        if request.stop:
            body["stop_sequences"] = list(request.stop)
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
        where = f"{self.name} ({self.base_url})"
        headers = {"anthropic-version": API_VERSION}
        if self._key:
            headers["x-api-key"] = self._key
        input_tokens = output_tokens = 0
        finish: str | None = None
        wrapped = request.schema is not None and self._wrapped(request.schema)
        buffered: list[str] = []
        async with self._gate:
            try:
                async with self._client.stream("POST", f"{self.base_url}/v1/messages",
                                               json=self.body(request),
                                               headers=headers) as response:
                    if response.status_code >= 400:
                        body = (await response.aread()).decode(errors="replace")
                        raise status_error(response, where, body, self._key)
                    stopped = False
                    async for event, data in sse_events(response, where, done_marker=False):
                        if not isinstance(data, dict):
                            raise BadResponse(f"{where}: an event of unexpected shape")
                        kind = data.get("type", event)
                        if kind == "message_start":
                            usage = (data.get("message") or {}).get("usage") or {}
                            input_tokens = int(usage.get("input_tokens") or 0)
                            output_tokens = int(usage.get("output_tokens") or 0)
                        elif kind == "content_block_delta":
                            delta = data.get("delta") or {}
                            text = delta.get("text") or delta.get("partial_json") or ""
                            if text and wrapped:
                                buffered.append(text)
                            elif text:
                                yield Chunk(text=text)
                        elif kind == "message_delta":
                            finish = (data.get("delta") or {}).get("stop_reason") or finish
                            output_tokens = int((data.get("usage") or {}).get("output_tokens")
                                                or output_tokens)
                        elif kind == "message_stop":
                            stopped = True
                        elif kind == "error":
                            raise _stream_error(data, where)
                    if not stopped:
                        raise BadResponse(f"{where}: the stream ended before message_stop",
                                          "the connection was probably cut; it is retried")
            except httpx.HTTPError as e:
                raise transport_error(e, where) from None
        if wrapped:
            try:
                value = json.loads("".join(buffered))["value"]
            except (json.JSONDecodeError, KeyError, TypeError):
                raise BadResponse(f"{where}: the structured answer is not valid JSON") from None
            yield Chunk(text=json.dumps(value))
        yield Chunk(usage=Usage(input_tokens, output_tokens),
                    finish_reason=_finish(finish))


def _finish(reason: str | None) -> str:
    return {"end_turn": "stop", "max_tokens": "length", "stop_sequence": "stop",
            "tool_use": "stop"}.get(reason or "", reason or "stop")


def _stream_error(data: dict[str, Any], where: str) -> Exception:
    error = data.get("error", {})
    kind = error.get("type", "")
    message = f"{where}: {error.get('message', kind or 'error in stream')}"
    if kind == "rate_limit_error":
        return RateLimited(message)
    if kind in ("overloaded_error", "api_error"):
        return Unavailable(message, "retried automatically")
    return BadResponse(message)
