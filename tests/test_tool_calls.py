"""Tool calls in each wire format, over real HTTP on 127.0.0.1: tools offered in the
request, streamed tool calls assembled from their pieces, and tool results sent back
in the shape each API expects."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from podium.core.errors import BadResponse
from podium.core.models.provider import Message, ModelRequest, Tool, ToolCall, collect
from podium.providers.anthropic import AnthropicProvider
from podium.providers.http import make_client
from podium.providers.openai import OpenAIProvider
from tests.agent_wire import SseServer

WEATHER = Tool("weather", "The weather in a city now.",
               {"type": "object", "properties": {"city": {"type": "string"}},
                "required": ["city"]})


class Replay(SseServer):
    """A server that answers every POST with the same SSE events and keeps the bodies."""

    def __init__(self, events: list[str]) -> None:
        super().__init__(lambda n: "".join(events))


def sse(events: list[tuple[str | None, dict[str, Any] | str]]) -> list[str]:
    out = []
    for name, data in events:
        text = data if isinstance(data, str) else json.dumps(data)
        out.append((f"event: {name}\n" if name else "") + f"data: {text}\n\n")
    return out


def openai_tool_stream(arguments: str = '{"city": "Oslo"}') -> list[str]:
    half = len(arguments) // 2
    pieces = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None,
                                            "tool_calls": [{"index": 0, "id": "call_1",
                                                            "type": "function",
                                                            "function": {"name": "weather",
                                                                         "arguments": ""}}]},
                      "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
            "arguments": arguments[:half]}}]}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
            "arguments": arguments[half:]}}]}, "finish_reason": None}]},
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 30, "completion_tokens": 9}},
    ]
    return sse([(None, p) for p in pieces]) + ["data: [DONE]\n\n"]


def anthropic_tool_stream(arguments: str = '{"city": "Oslo"}') -> list[str]:
    half = len(arguments) // 2
    return sse([
        ("message_start", {"type": "message_start", "message": {
            "usage": {"input_tokens": 40, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                 "delta": {"type": "text_delta", "text": "Let me check."}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("content_block_start", {"type": "content_block_start", "index": 1,
                                 "content_block": {"type": "tool_use", "id": "toolu_1",
                                                   "name": "weather", "input": {}}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": arguments[:half]}}),
        ("content_block_delta", {"type": "content_block_delta", "index": 1, "delta": {
            "type": "input_json_delta", "partial_json": arguments[half:]}}),
        ("content_block_stop", {"type": "content_block_stop", "index": 1}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                           "usage": {"output_tokens": 12}}),
        ("message_stop", {"type": "message_stop"}),
    ])


@pytest.fixture
def replay() -> Iterator[Any]:
    servers: list[Replay] = []

    def start(events: list[str]) -> Replay:
        servers.append(Replay(events))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def ask(provider_for: Any, request: ModelRequest) -> Any:
    async def go() -> Any:
        client = make_client()
        try:
            return await collect(provider_for(client), request)
        finally:
            await client.aclose()

    return asyncio.run(go())


CONVERSATION = (
    Message("system", "Use tools."),
    Message("user", "Weather in Oslo and Bergen?"),
    Message("assistant", "", tool_calls=(ToolCall("c1", "weather", {"city": "Oslo"}),
                                         ToolCall("c2", "weather", {"city": "Bergen"}))),
    Message("tool", "4 C, snow", tool_call_id="c1"),
    Message("tool", "7 C, rain", tool_call_id="c2"),
)


def test_openai_tool_calls_both_ways(replay: Any) -> None:
    server = replay(openai_tool_stream())
    answer = ask(lambda c: OpenAIProvider("gpt", model="gpt", base_url=server.url + "/v1",
                                          client=c),
                 ModelRequest(messages=CONVERSATION, tools=(WEATHER,)))
    assert answer.tool_calls == (ToolCall("call_1", "weather", {"city": "Oslo"}),)
    assert answer.finish_reason == "tool_calls" and answer.text == ""
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (30, 9)
    body = server.bodies[0]
    assert body["tools"] == [{"type": "function", "function": {
        "name": "weather", "description": WEATHER.description,
        "parameters": WEATHER.parameters}}]
    sent = body["messages"]
    assert sent[2] == {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "weather",
                                                      "arguments": '{"city": "Oslo"}'}},
        {"id": "c2", "type": "function", "function": {"name": "weather",
                                                      "arguments": '{"city": "Bergen"}'}}]}
    assert sent[3:] == [{"role": "tool", "tool_call_id": "c1", "content": "4 C, snow"},
                        {"role": "tool", "tool_call_id": "c2", "content": "7 C, rain"}]


def test_anthropic_tool_calls_both_ways(replay: Any) -> None:
    server = replay(anthropic_tool_stream())
    answer = ask(lambda c: AnthropicProvider("claude", model="claude", base_url=server.url,
                                             client=c),
                 ModelRequest(messages=CONVERSATION, tools=(WEATHER,)))
    assert answer.text == "Let me check."
    assert answer.tool_calls == (ToolCall("toolu_1", "weather", {"city": "Oslo"}),)
    assert answer.finish_reason == "tool_calls"
    body = server.bodies[0]
    assert body["tools"] == [{"name": "weather", "description": WEATHER.description,
                              "input_schema": WEATHER.parameters}]
    assert body["system"] == "Use tools."
    assert body["messages"][1] == {"role": "assistant", "content": [
        {"type": "tool_use", "id": "c1", "name": "weather", "input": {"city": "Oslo"}},
        {"type": "tool_use", "id": "c2", "name": "weather", "input": {"city": "Bergen"}}]}
    # Both results in one user turn: the API wants turns to alternate.
    assert body["messages"][2:] == [{"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": "c1", "content": "4 C, snow"},
        {"type": "tool_result", "tool_use_id": "c2", "content": "7 C, rain"}]}]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_broken_tool_arguments_are_a_retryable_bad_response(replay: Any, wire: str) -> None:
    stream = openai_tool_stream if wire == "openai" else anthropic_tool_stream
    server = replay(stream('{"city": "Os'))

    def make(client: Any) -> Any:
        if wire == "openai":
            return OpenAIProvider("gpt", model="gpt", base_url=server.url + "/v1",
                                  client=client)
        return AnthropicProvider("claude", model="claude", base_url=server.url,
                                 client=client)

    with pytest.raises(BadResponse, match="tool call weather: the arguments are not valid "
                       "JSON") as e:
        ask(make, ModelRequest(messages=(Message("user", "hi"),), tools=(WEATHER,)))
    assert e.value.retryable
