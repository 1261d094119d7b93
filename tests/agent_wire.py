"""A loopback server that answers each request with the next scripted model turn, in
the real OpenAI or Anthropic streaming format: text, or tool calls (streamed in pieces,
as the APIs do). It keeps every request body, so a test can check what was sent back."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Turn = list[tuple[str, dict[str, Any]]] | str  # tool calls (name, arguments), or text


def _sse(events: list[tuple[str | None, dict[str, Any]]]) -> str:
    return "".join((f"event: {name}\n" if name else "") + f"data: {json.dumps(data)}\n\n"
                   for name, data in events)


def openai_turn(turn: Turn, n: int) -> str:
    """One chat-completions stream."""
    def chunk(delta: dict[str, Any], finish: str | None = None) -> tuple[None, dict[str, Any]]:
        return None, {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    if isinstance(turn, str):
        events = [chunk({"role": "assistant", "content": turn}), chunk({}, "stop")]
    else:
        events = []
        for i, (name, args) in enumerate(turn):
            text = json.dumps(args)
            half = len(text) // 2
            events.append(chunk({"tool_calls": [{"index": i, "id": f"call_{n}_{i}",
                                                 "type": "function", "function": {
                                                     "name": name, "arguments": text[:half]}}]}))
            events.append(chunk({"tool_calls": [{"index": i, "function": {
                "arguments": text[half:]}}]}))
        events.append(chunk({}, "tool_calls"))
    events.append((None, {"choices": [], "usage": {"prompt_tokens": 30,
                                                   "completion_tokens": 9}}))
    return _sse(events) + "data: [DONE]\n\n"


def anthropic_turn(turn: Turn, n: int) -> str:
    """One messages stream."""
    events: list[tuple[str | None, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            "usage": {"input_tokens": 40, "output_tokens": 1}}})]
    if isinstance(turn, str):
        events += [("content_block_start", {"type": "content_block_start", "index": 0,
                                            "content_block": {"type": "text", "text": ""}}),
                   ("content_block_delta", {"type": "content_block_delta", "index": 0,
                                            "delta": {"type": "text_delta", "text": turn}}),
                   ("content_block_stop", {"type": "content_block_stop", "index": 0})]
        stop = "end_turn"
    else:
        for i, (name, args) in enumerate(turn):
            text = json.dumps(args)
            half = len(text) // 2
            events += [
                ("content_block_start", {"type": "content_block_start", "index": i,
                                         "content_block": {"type": "tool_use",
                                                           "id": f"toolu_{n}_{i}",
                                                           "name": name, "input": {}}}),
                ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                    "type": "input_json_delta", "partial_json": text[:half]}}),
                ("content_block_delta", {"type": "content_block_delta", "index": i, "delta": {
                    "type": "input_json_delta", "partial_json": text[half:]}}),
                ("content_block_stop", {"type": "content_block_stop", "index": i})]
        stop = "tool_use"
    events += [("message_delta", {"type": "message_delta", "delta": {"stop_reason": stop},
                                  "usage": {"output_tokens": 12}}),
               ("message_stop", {"type": "message_stop"})]
    return _sse(events)


class SseServer:
    """Answers the n-th request (from 1) with `answer(n)`, an event stream, and keeps
    every request body."""

    def __init__(self, answer: Callable[[int], str]) -> None:
        self.bodies: list[dict[str, Any]] = []
        owner = self
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                size = int(self.headers.get("Content-Length") or 0)
                with lock:
                    owner.bodies.append(json.loads(self.rfile.read(size)))
                    n = len(owner.bodies)
                data = answer(n).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def __enter__(self) -> SseServer:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class TurnServer(SseServer):
    """Answers request k with turn k of `script` (the last one repeats)."""

    def __init__(self, script: list[Turn], wire: str = "openai") -> None:
        make = openai_turn if wire == "openai" else anthropic_turn
        super().__init__(lambda n: make(script[min(n, len(script)) - 1], n))

    def __enter__(self) -> TurnServer:
        return self
