"""`http_get` against a real HTTP server on 127.0.0.1: text, HTML as its visible text,
JSON; size and time limits; redirects checked like the first request; schemes, hosts
and private addresses refused (loopback only with the explicit `allow_private`)."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from podium.core.errors import ConfigError
from podium.core.tools.base import ToolDef, ToolOutcome, call_tool
from podium.providers.http_get import host_allowed, http_get_tool

PAGE = ("<html><head><title>Docs</title><script>var x = 1;</script></head>"
        "<body><h1>Install</h1><p>Run <code>make demo</code>.</p></body></html>")


class Handler(BaseHTTPRequestHandler):
    routes: dict[str, tuple[int, dict[str, str], bytes]] = {
        "/text": (200, {"Content-Type": "text/plain; charset=utf-8"}, "héllo".encode()),
        "/page": (200, {"Content-Type": "text/html"}, PAGE.encode()),
        "/json": (200, {"Content-Type": "application/json"}, b'{"ok": true}'),
        "/big": (200, {"Content-Type": "text/plain"}, b"x" * 100_000),
        "/png": (200, {"Content-Type": "image/png"}, b"\x89PNG" + b"\x00" * 100),
        "/missing": (404, {"Content-Type": "text/plain"}, b"no such page"),
        "/gzip": (200, {"Content-Type": "text/plain", "Content-Encoding": "gzip"}, b"\x1f\x8b"),
        "/redirect-in": (302, {"Location": "/text"}, b""),
        "/redirect-out": (302, {"Location": "http://example.com/x"}, b""),
        "/redirect-file": (302, {"Location": "file:///etc/passwd"}, b""),
        "/redirect-loop": (302, {"Location": "/redirect-loop"}, b""),
    }

    def do_GET(self) -> None:  # noqa: N802
        if self.path == "/slow":
            time.sleep(3)
        status, headers, body = self.routes.get(self.path, (200, {}, b"slow"))
        self.send_response(status)
        for key, value in headers.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        try:
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def base() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def get(tool: ToolDef, url: str) -> ToolOutcome:
    return asyncio.run(call_tool(tool, {"url": url}))


@pytest.fixture
def tool() -> ToolDef:
    return http_get_tool(["127.0.0.1"], allow_private=True, max_bytes=5_000, timeout_s=1.0)


def test_text_html_and_json_come_back_with_their_type(tool: ToolDef, base: str) -> None:
    text = get(tool, f"{base}/text")
    assert text.result == f"HTTP 200 · text/plain; charset=utf-8 · {base}/text\n\nhéllo"
    page = get(tool, f"{base}/page").result
    assert page.endswith("# Docs\nInstall\nRun make demo.") and "var x" not in page
    assert get(tool, f"{base}/json").result.endswith('{"ok": true}')


def test_size_and_time_limits(tool: ToolDef, base: str) -> None:
    big = get(tool, f"{base}/big").result
    assert big.endswith("x" * 10 + "\n[… cut at 5,000 bytes]") and len(big) < 5_200
    started = time.perf_counter()
    slow = get(tool, f"{base}/slow")
    assert slow.error == f"no complete answer from {base}/slow within 1 s"
    assert time.perf_counter() - started < 2.5


def test_other_content_errors_and_compression_are_refused(tool: ToolDef, base: str) -> None:
    assert "is image/png (104 bytes), not text" in (get(tool, f"{base}/png").error or "")
    assert get(tool, f"{base}/missing").error == f"{base}/missing answered HTTP 404: no such page"
    assert "gzip-compressed" in (get(tool, f"{base}/gzip").error or "")


def test_redirects_are_checked_like_the_first_request(tool: ToolDef, base: str) -> None:
    assert get(tool, f"{base}/redirect-in").result.endswith(f"{base}/text\n\nhéllo")
    out = get(tool, f"{base}/redirect-out").error or ""
    assert out.startswith(f"{base}/redirect-out redirects to http://example.com/x, which is "
                          "refused: host 'example.com' is not allowed")
    assert "only http and https" in (get(tool, f"{base}/redirect-file").error or "")
    assert "more than 5 redirects" in (get(tool, f"{base}/redirect-loop").error or "")


@pytest.mark.parametrize(("url", "said"), [
    ("file:///etc/passwd", "only http and https URLs"),
    ("ftp://127.0.0.1/x", "only http and https URLs"),
    ("javascript:alert(1)", "only http and https URLs"),
    ("http://127.0.0.2:1/", "host '127.0.0.2' is not allowed"),
    ("http://example.com.127.0.0.1.nip.io/", "is not allowed"),
    ("http:///nohost", "names no host"),
    ("http://[::1", "not a URL"),
])
def test_schemes_and_hosts_not_allowed(tool: ToolDef, url: str, said: str) -> None:
    outcome = get(tool, url)
    assert outcome.error and said in outcome.error


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "10.1.2.3", "169.254.169.254",
                                  "192.168.0.1", "::1", "0.0.0.0"])
def test_private_and_loopback_addresses_need_allow_private(host: str) -> None:
    tool = http_get_tool([host], timeout_s=1.0)  # allow_private is off by default
    shown = f"[{host}]" if ":" in host else host
    outcome = get(tool, f"http://{shown}:9/")
    assert outcome.error and "a private or local address" in outcome.error


def test_off_unless_hosts_are_listed_and_wildcards() -> None:
    with pytest.raises(ConfigError, match="http_get is off"):
        http_get_tool([])
    assert host_allowed("docs.example.com", ["*.example.com"])
    assert not host_allowed("example.com", ["*.example.com"])
    assert not host_allowed("badexample.com", ["*.example.com"])
    assert host_allowed("Example.COM.", ["example.com"])
