"""Real HTTP servers on 127.0.0.1 for the remote-provider tests.

`ScriptServer` answers each request from a script (a list of behaviours, used in
order, the last repeating): an OpenAI- or Anthropic-format stream, or a fault (429
with Retry-After, 500, a slow body, a cut connection, malformed JSON, silence before
or after the headers, a byte at a time, an HTML page, a body of many megabytes). It records
every request and the client port it came from (one port, one TCP connection), so a
test can prove what reached the network, and on how many connections. `tls_server`
serves the same over HTTPS with a throw-away certificate.
"""

from __future__ import annotations

import contextlib
import json
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


@dataclass
class Behaviour:
    """What the server does with one request."""

    # openai | anthropic | status | slow | cut | malformed | hang | hang_after_headers
    # | drip | html | huge
    kind: str = "openai"
    text: str = "hello from the server"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    usage: tuple[int, int] | None = (11, 5)  # None: the stream reports no usage
    keep_alive: bool = False  # streams: chunked, connection kept (else closed after)
    drop: bool = False  # close the connection after answering, without saying so
    body: str | None = None  # status: this body instead of a JSON error
    content_type: str = "application/json"  # status: the body's type
    size: int = 50 << 20  # huge: bytes in the one event's line


# What a web server answers at a wrong base_url: a page, with status 200.
HTML_PAGE = ("<!DOCTYPE html><html><head><title>Welcome</title></head>"
             "<body><h1>It works!</h1></body></html>")


def openai_events(text: str, usage: tuple[int, int] | None, model: str = "m") -> list[str]:
    """The SSE lines of an OpenAI chat-completions stream."""
    words = text.split(" ")
    out = []
    for i, w in enumerate(words):
        piece = w if i == 0 else " " + w
        out.append(json.dumps({"id": "x", "object": "chat.completion.chunk", "model": model,
                               "choices": [{"index": 0, "delta": {"content": piece},
                                            "finish_reason": None}]}))
    out.append(json.dumps({"id": "x", "choices": [{"index": 0, "delta": {},
                                                   "finish_reason": "stop"}]}))
    if usage:
        out.append(json.dumps({"id": "x", "choices": [], "usage": {
            "prompt_tokens": usage[0], "completion_tokens": usage[1]}}))
    return [f"data: {e}\n\n" for e in out] + ["data: [DONE]\n\n"]


def anthropic_events(text: str, usage: tuple[int, int], tool: bool = False) -> list[str]:
    """The SSE lines of an Anthropic Messages stream (text, or a forced tool call)."""
    events: list[tuple[str, dict[str, Any]]] = [
        ("message_start", {"type": "message_start", "message": {
            "id": "msg", "role": "assistant", "content": [],
            "usage": {"input_tokens": usage[0], "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0,
                                 "content_block": {"type": "tool_use" if tool else "text"}}),
        ("ping", {"type": "ping"}),
    ]
    step = max(1, len(text) // 3)
    for i in range(0, len(text), step):
        piece = text[i:i + step]
        delta = {"type": "input_json_delta", "partial_json": piece} if tool else {
            "type": "text_delta", "text": piece}
        events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": delta}))
    events += [
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        ("message_delta", {"type": "message_delta", "delta": {
            "stop_reason": "tool_use" if tool else "end_turn"},
            "usage": {"output_tokens": usage[1]}}),
        ("message_stop", {"type": "message_stop"}),
    ]
    return [f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events]


class ScriptServer:
    """A threaded HTTP server on a free loopback port, driven by a script."""

    def __init__(self, script: list[Behaviour], get: Behaviour | None = None) -> None:
        self.script = script
        self.get = get  # what a GET (the model list) meets; None: the list, or a 401
        self.requests: list[dict[str, Any]] = []
        self.gets: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self.stopping = threading.Event()  # ends the handlers that hang on purpose
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output clean
                pass

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    n = len(server.requests)
                    server.requests.append({"path": self.path, "body": body,
                                            "headers": dict(self.headers),
                                            "port": self.client_address[1]})
                    b = server.script[min(n, len(server.script) - 1)]
                try:
                    server.respond(self, b, body)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client hung up (on purpose, in some tests)
                if b.drop:
                    self.close_connection = True

            def do_GET(self) -> None:  # noqa: N802
                """The model list (`podium models --check`); the key 'refused' gets 401."""
                server.gets.append({"path": self.path, "headers": dict(self.headers)})
                if server.get is not None:
                    try:
                        server.respond(self, server.get, {})
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return
                key = self.headers.get("x-api-key") or self.headers.get(
                    "authorization", "").removeprefix("Bearer ")
                status = 401 if key == "refused" else 200
                payload = json.dumps({"data": [{"id": "m"}]}).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        # A short poll interval: shutdown() waits up to one, at the end of every test.
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True,
                                        kwargs={"poll_interval": 0.05})

    @property
    def connections(self) -> int:
        """TCP connections the requests so far came on."""
        return len({r["port"] for r in self.requests})

    def __enter__(self) -> ScriptServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stopping.set()
        self.httpd.shutdown()
        self.httpd.server_close()

    def respond(self, h: BaseHTTPRequestHandler, b: Behaviour, body: dict[str, Any]) -> None:
        """Act out one behaviour."""
        if b.delay and b.kind not in ("slow", "drip"):
            time.sleep(b.delay)
        if b.kind == "hang":  # read the request, never answer
            self.stopping.wait(60)
            return
        if b.kind in ("status", "html"):
            default = HTML_PAGE if b.kind == "html" else json.dumps(
                {"error": {"message": f"status {b.status}"}})
            payload = (default if b.body is None else b.body).encode()
            h.send_response(b.status)
            for k, v in b.headers.items():
                h.send_header(k, v)
            h.send_header("content-type", "text/html" if b.kind == "html" else b.content_type)
            h.send_header("content-length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            return
        if b.kind in ("hang_after_headers", "drip", "huge"):
            h.send_response(200)
            h.send_header("content-type", "text/event-stream")
            h.send_header("connection", "close")
            h.end_headers()
            h.wfile.flush()
            if b.kind == "hang_after_headers":
                self.stopping.wait(60)
            elif b.kind == "drip":  # a byte every `delay` s: never silent, never done
                for byte in openai_events(b.text, b.usage)[0].encode() * 100:
                    if self.stopping.wait(b.delay):
                        return
                    h.wfile.write(bytes([byte]))
                    h.wfile.flush()
            else:  # one event's line of `size` bytes, a megabyte at a time
                h.wfile.write(b"data: ")
                block = b"x" * (1 << 20)
                for _ in range(b.size >> 20):
                    h.wfile.write(block)
            return
        tool = "tools" in body
        text = b.text
        if b.kind == "anthropic":
            lines = anthropic_events(text, b.usage or (0, 0), tool=tool)
        else:
            lines = openai_events(text, b.usage)
        if b.kind == "malformed":
            lines = lines[:1] + ["data: {not json\n\n"] + lines[1:]
        h.send_response(200)
        h.send_header("content-type", "text/event-stream")
        h.send_header(*(("transfer-encoding", "chunked") if b.keep_alive
                        else ("connection", "close")))
        h.end_headers()
        for i, line in enumerate(lines):
            if b.kind == "cut" and i == 2:
                h.wfile.flush()
                h.connection.shutdown(2)  # hang up mid-stream
                return
            if b.kind == "slow":
                time.sleep(b.delay)
            data = line.encode()
            h.wfile.write(b"%x\r\n%s\r\n" % (len(data), data) if b.keep_alive else data)
            h.wfile.flush()
        if b.keep_alive:
            h.wfile.write(b"0\r\n\r\n")
            h.wfile.flush()


@contextlib.contextmanager
def tls_server(script: list[Behaviour], tmp: Path) -> Iterator[tuple[ScriptServer, str]]:
    """A `ScriptServer` on HTTPS, with a self-signed certificate for 127.0.0.1 made by
    the openssl command; yields it (its `url` says https) and the certificate's path."""
    cert, key = tmp / "cert.pem", tmp / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True, timeout=30)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server = ScriptServer(script)
    # The handshake happens in the handler's thread, not in accept() on the server's.
    server.httpd.socket = context.wrap_socket(server.httpd.socket, server_side=True,
                                              do_handshake_on_connect=False)
    server.url = server.url.replace("http://", "https://")
    with server:
        yield server, str(cert)
