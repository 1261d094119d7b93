"""OpenAI-compatible chat completions over httpx (OpenAI, vLLM, Ollama, llama.cpp's
server, LM Studio, OpenRouter).

The client is handed in (one per process, shared); this module only turns a
`ModelRequest` into a request body and a server-sent-event stream into `Chunk`s.
Retries, fallbacks and routing live in core.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, Literal

import httpx

from podium.core.errors import BadResponse, Unavailable
from podium.core.models.provider import Chunk, Message, ModelRequest, ToolCall, Usage
from podium.providers.excerpt import excerpt
from podium.providers.http import RemoteProvider, read_error, status_error, transport_error
from podium.providers.sse import ODD_HINT, sse_events
from podium.providers.tools import tool_arguments

SchemaMode = Literal["json_schema", "json_object"]


def estimate_tokens(text: str) -> int:
    """About four characters a token, for servers that do not report usage."""
    return max(1, len(text) // 4)


class OpenAIProvider(RemoteProvider):
    """One model behind an OpenAI-compatible `/chat/completions` endpoint."""

    def __init__(self, name: str, *, model: str, base_url: str, client: httpx.AsyncClient,
                 key: str | None = None, key_env_var: str | None = None,
                 tier: Literal["local", "remote"] = "remote",
                 schema_mode: SchemaMode = "json_schema", concurrency: int = 128) -> None:
        super().__init__(name, model=model, base_url=base_url, client=client, key=key,
                         key_env_var=key_env_var, tier=tier, concurrency=concurrency)
        self.schema_mode = schema_mode

    def body(self, request: ModelRequest) -> dict[str, Any]:
        """The JSON body for `request`."""
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [_message(m) for m in request.messages],
            "temperature": request.temperature,
            "max_tokens": request.max_tokens,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        if request.seed is not None:
            body["seed"] = request.seed
        if request.stop:
            body["stop"] = list(request.stop)
        if request.tools:
            body["tools"] = [{"type": "function", "function": {
                "name": t.name, "description": t.description, "parameters": t.parameters}}
                for t in request.tools]
        if request.schema is not None:
            if self.schema_mode == "json_object":
                body["response_format"] = {"type": "json_object", "schema": request.schema}
            else:
                body["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": "answer", "schema": request.schema, "strict": False}}
        return body

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        """Stream one chat completion."""
        where = self.where
        headers = self.headers()
        usage: Usage | None = None
        finish: str | None = None
        pieces = 0
        calls: dict[int, dict[str, str]] = {}  # index -> id, name, arguments so far
        self.check_url(where)
        async with self._gate:
            try:
                async with self._client.stream("POST", f"{self.base_url}/chat/completions",
                                               json=self.body(request),
                                               headers=headers) as response:
                    if response.status_code >= 400:
                        body = await read_error(response)
                        raise status_error(response, where, body, self._key)
                    async for _, data in sse_events(response, where, secret=self._key):
                        if not isinstance(data, dict):
                            raise BadResponse(f"{where}: unexpected event "
                                              f"{excerpt(str(data), self._key, 80)}", ODD_HINT)
                        if data.get("error"):  # some servers report failures mid-stream
                            raise Unavailable(f"{where}: the server reported an error in "
                                              "the stream", "retried automatically")
                        try:
                            if data.get("usage"):
                                u = data["usage"]
                                usage = Usage(int(u.get("prompt_tokens") or 0),
                                              int(u.get("completion_tokens") or 0))
                            choices = list(data.get("choices") or ())
                            texts = [(c.get("delta") or {}).get("content") for c in choices]
                            finishes = [str(c["finish_reason"]) for c in choices
                                        if c.get("finish_reason")]
                            for c in choices:
                                for piece in (c.get("delta") or {}).get("tool_calls") or ():
                                    _add_call_piece(calls, piece)
                        except (AttributeError, TypeError, ValueError, OverflowError):
                            raise BadResponse(f"{where}: an event of unexpected shape",
                                              ODD_HINT) \
                                from None
                        for text in texts:
                            if text:
                                pieces += 1
                                yield Chunk(text=str(text))
                        finish = finishes[0] if finishes else finish
            except httpx.HTTPError as e:
                raise transport_error(e, where) from None
        if calls:
            yield Chunk(tool_calls=tuple(
                ToolCall(c["id"] or f"call_{i}", c["name"],
                         tool_arguments(c["arguments"], f"{where}: tool call {c['name']}"))
                for i, c in sorted(calls.items())))
        if usage is None:  # the server did not report usage: estimate, never zero
            prompt = " ".join(m.content for m in request.messages)
            usage = Usage(estimate_tokens(prompt), pieces)
        yield Chunk(usage=usage, finish_reason=finish or "stop")


def _message(m: Message) -> dict[str, Any]:
    """One message in the chat-completions wire format."""
    if m.role == "tool":
        return {"role": "tool", "tool_call_id": m.tool_call_id, "content": m.content}
    out: dict[str, Any] = {"role": m.role, "content": m.content}
    if m.tool_calls:
        out["content"] = m.content or None
        out["tool_calls"] = [{"id": c.id, "type": "function", "function": {
            "name": c.name, "arguments": json.dumps(c.arguments)}} for c in m.tool_calls]
    return out


def _add_call_piece(calls: dict[int, dict[str, str]], piece: dict[str, Any]) -> None:
    """Streamed tool calls come in pieces by index: the id and name first, then the
    arguments a few characters at a time."""
    call = calls.setdefault(int(piece.get("index") or 0),
                            {"id": "", "name": "", "arguments": ""})
    function = piece.get("function") or {}
    call["id"] = piece.get("id") or call["id"]
    call["name"] = function.get("name") or call["name"]
    call["arguments"] += function.get("arguments") or ""
