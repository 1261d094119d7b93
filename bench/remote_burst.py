"""Bursts of concurrent chat-completion calls to a loopback OpenAI-style server.

A separate process serves `POST /v1/chat/completions` on 127.0.0.1: each request is
answered after 200 ms with a short SSE stream (a content delta "ok", a finish chunk, a
usage chunk, `data: [DONE]`). The client side fires N calls at once (N = 100, then
500), five bursts in a row through ONE client per case, so bursts 2..5 run on whatever
keep-alive connections the client kept. Cases:

* Podium's `OpenAIProvider` on `providers.http.make_client()` (its DEFAULT_LIMITS, on
  `podium.providers.pool.PoolTransport`), through `podium.core.models.provider.collect`, with
  `concurrency=N` (so its semaphore is not what is measured) and with 16;
* the same provider on httpx's own pool (`httpx.AsyncHTTPTransport`, httpcore 1.0's
  `AsyncConnectionPool`) with the limits Podium shipped before its pool (1024
  connections, 20 kept alive): the "before" row;
* plain httpx with max_connections=200, max_keepalive_connections=200 (encode/httpx#3215);
* plain httpx with its default limits (100 connections, 20 keep-alive);
* plain aiohttp (`TCPConnector(limit=N)`), the peer.

The plain clients do the same streaming POST and read the stream line by line to its
end, parsing each `data:` line. The server counts the TCP connections it accepts, so
the table shows how many each burst had to open (0 = full keep-alive reuse). One
untimed call warms the server before the first case, so that case does not pay the
server's first-request costs; each client's own first-call costs stay in its burst 1.

`--explore` adds a grid for Podium's provider alone: `make_client(limits=...)`
(max_connections / max_keepalive_connections, keepalive_expiry) x provider concurrency;
Podium's pool on httpcore's default network backend (anyio) instead of its asyncio one
("pool+anyio"); and the same provider on other pools: httpx's own ("httpx-pool"),
httpx2 (pydantic's fork, whose pool reserves the idle connection it hands out), and
httpx's API over an aiohttp pool ("aiohttp-transport").
`--tls` serves HTTPS (a self-signed certificate made with `openssl`), so a new
connection costs a real handshake; `--connect-ms` adds a simulated round-trip cost to
each new connection. Nothing outside this script is changed: the experiments build
their own clients.

Run: `.venv/bin/python bench/remote_burst.py [--json] [--ns 100,500] [--bursts 5]
[--explore] [--only TEXT] [--tls] [--connect-ms MS] [--check]`. About 2.5 minutes
without --explore (about 6 more with it). Loopback only; every loop is bounded.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
from common import load_note, mark, table

DELAY_S = 0.2  # the server's answer time: the floor of one burst
NS = (100, 500)
BURSTS = 5
GAP_S = 0.05  # pause between bursts (untimed), so one burst's tail does not overlap the next
TARGET_N100_S = 0.3  # Podium: every burst under this at N=100
SERVER_BACKLOG = 2048  # listen backlog: above N, so no SYN is dropped and retried after 1 s
CASE_TIMEOUT_S = 60.0  # a whole case (five bursts) gives up after this
CONTENT = "ok"


# --- the server (a separate process) -------------------------------------------------------


def _sse_events() -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0,
            "model": "bench"}
    events = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": CONTENT},
                              "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**base, "choices": [], "usage": {"prompt_tokens": 10, "completion_tokens": 1,
                                          "total_tokens": 11}},
    ]
    out = [f"data: {json.dumps(e, separators=(',', ':'))}\n\n".encode() for e in events]
    return [*out, b"data: [DONE]\n\n"]


def serve(delay: float, connect_penalty: float = 0.0, certdir: str = "") -> None:
    """Run the loopback server until killed; print `PORT <api> <stats>` once listening.
    With `connect_penalty`, the first request of each new connection waits that much
    longer (a stand-in for the handshake round trips of a real remote API). With
    `certdir`, the API is served over TLS (the stats port stays plain HTTP)."""
    import ssl

    from aiohttp import web

    events = _sse_events()
    stats = {"requests": 0, "new_connections": 0}
    seen: weakref.WeakSet[Any] = weakref.WeakSet()  # transports: one per TCP connection

    async def completions(request: web.Request) -> web.StreamResponse:
        if request.transport not in seen:  # (ports get reused on loopback: count objects)
            seen.add(request.transport)
            stats["new_connections"] += 1
            extra = connect_penalty
        else:
            extra = 0.0
        stats["requests"] += 1
        await request.read()
        await asyncio.sleep(delay + extra)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream",
                                               "Cache-Control": "no-cache"})
        await response.prepare(request)
        for event in events:  # one write per event, as a token-streaming server does
            await response.write(event)
        await response.write_eof()
        return response

    async def read_stats(request: web.Request) -> web.Response:
        server = runner.server
        out = {**stats, "open": len(server.connections) - 1 if server else -1}
        stats["requests"] = stats["new_connections"] = 0
        return web.json_response(out, headers={"Connection": "close"})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", completions)
    app.router.add_get("/stats", read_stats)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)

    async def main() -> None:
        await runner.setup()
        tls = None
        if certdir:
            tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            tls.load_cert_chain(os.path.join(certdir, "cert.pem"),
                                os.path.join(certdir, "key.pem"))
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=SERVER_BACKLOG, ssl_context=tls)
        await site.start()
        stats_site = site
        if tls is not None:
            stats_site = web.TCPSite(runner, "127.0.0.1", 0)
            await stats_site.start()
        ports = [x._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
                 for x in (site, stats_site)]
        print(f"PORT {ports[0]} {ports[1]}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


@dataclass(frozen=True)
class Server:
    """Where the bench server listens. `tls`: the client-side context trusting its
    self-signed certificate (None: plain HTTP)."""

    port: int
    stats_port: int
    tls: Any = None

    @property
    def base_url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}/v1"


def _self_signed(certdir: str) -> None:
    """An EC P-256 certificate for 127.0.0.1, made with the openssl command."""
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", os.path.join(certdir, "key.pem"),
                    "-out", os.path.join(certdir, "cert.pem")],
                   check=True, capture_output=True, timeout=30)


@contextlib.contextmanager
def server_process(delay: float = DELAY_S, connect_penalty: float = 0.0,
                   tls: bool = False) -> Iterator[Server]:
    """Start the server in its own process; yield where it listens; stop it."""
    import ssl
    import tempfile

    with tempfile.TemporaryDirectory(prefix="podium-bench-tls-") as certdir:
        context = None
        if tls:
            _self_signed(certdir)
            context = ssl.create_default_context(cafile=os.path.join(certdir, "cert.pem"))
            # make_client() takes no `verify`: httpx reads SSL_CERT_FILE (trust_env).
            os.environ["SSL_CERT_FILE"] = os.path.join(certdir, "cert.pem")
        proc = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--serve",
                                 "--delay", str(delay), "--connect-ms",
                                 str(connect_penalty * 1000),
                                 "--certdir", certdir if tls else ""],
                                stdout=subprocess.PIPE, text=True)
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()
            if not line.startswith("PORT "):
                raise RuntimeError(f"the bench server did not start: {line!r}")
            _, port, stats_port = line.split()
            server = Server(int(port), int(stats_port), context)
            warm_up(server)
            yield server
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def warm_up(server: Server) -> None:
    """One untimed call before any case, so that the first case to run does not pay the
    server process's own first-request costs (measured: ~45 ms on aiohttp's burst 1)."""
    request = urllib.request.Request(f"{server.base_url}/chat/completions",
                                     data=json.dumps(BODY).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10, context=server.tls) as r:
        r.read()


def server_stats(port: int) -> dict[str, int]:
    """Requests and new connections since the last call, and connections open now."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats", timeout=10) as r:
        return json.loads(r.read())  # type: ignore[no-any-return]


# --- clients -------------------------------------------------------------------------------


BODY = {"model": "bench", "messages": [{"role": "user", "content": "say ok"}],
        "max_tokens": 4, "stream": True, "stream_options": {"include_usage": True}}


def _parse_data_line(line: str, parts: list[str]) -> None:
    if line.startswith("data: ") and line != "data: [DONE]":
        data = json.loads(line[6:])
        for choice in data.get("choices") or ():
            text = (choice.get("delta") or {}).get("content")
            if text:
                parts.append(text)


LimitsSpec = tuple[int | None, int | None, float]  # max_connections, max_keepalive, expiry s


@dataclass(frozen=True)
class Case:
    """One client configuration. `limits` for httpx clients (None: the client's own
    defaults for "httpx", `make_client()`'s DEFAULT_LIMITS for "podium"); `lib` is
    where the provider's client comes from: "podium" (`make_client`), "pool+anyio"
    (Podium's pool on httpcore's anyio network backend), "httpx-pool" (httpx's own
    transport and pool), "httpx2" (pydantic's fork, whose pool reserves the idle
    connection it hands out) or "aiohttp-transport" (httpx's API on an aiohttp pool);
    `concurrency` is the provider's semaphore (None: N)."""

    label: str
    kind: str  # "podium" | "httpx" | "aiohttp"
    limits: LimitsSpec | None = None
    concurrency: int | None = None
    lib: str = "podium"


Call = Callable[[], Awaitable[str]]


def _httpx_client(case: Case, server: Server) -> Any:
    """The case's httpx(2) client, with Podium's timeouts."""
    import importlib

    import httpcore

    from podium.providers.http import DEFAULT_TIMEOUT, make_client
    from podium.providers.pool import PoolTransport

    c, k, e = case.limits or (None, None, 5.0)
    limits = httpx.Limits(max_connections=c, max_keepalive_connections=k, keepalive_expiry=e)
    verify = server.tls or True
    if case.kind == "podium" and case.lib == "podium":
        if case.limits is None:
            return make_client()  # exactly what the registry builds (TLS: SSL_CERT_FILE)
        return make_client(limits=limits)
    if case.lib == "pool+anyio":
        transport = PoolTransport(limits, verify=verify, network_backend=httpcore.AnyIOBackend())
        return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False,
                                 transport=transport)
    if case.lib == "httpx-pool":
        return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False,
                                 limits=limits, verify=verify)
    if case.lib == "aiohttp-transport":
        return httpx.AsyncClient(timeout=DEFAULT_TIMEOUT, follow_redirects=False,
                                 transport=AiohttpTransport(c or 0, e, server.tls))
    lib = importlib.import_module("httpx" if case.lib == "podium" else case.lib)
    t = DEFAULT_TIMEOUT
    timeout = lib.Timeout(connect=t.connect, read=t.read, write=t.write, pool=t.pool)
    if case.limits is None:
        # No limits: the client's own defaults (100 connections, 20 keep-alive, 5 s). A
        # bare `httpx.Limits()` is NOT that: its fields default to None (unbounded).
        return lib.AsyncClient(timeout=timeout, verify=verify)
    return lib.AsyncClient(timeout=timeout, verify=verify, limits=lib.Limits(
        max_connections=c, max_keepalive_connections=k, keepalive_expiry=e))


class _AiohttpStream(httpx.AsyncByteStream):
    def __init__(self, response: Any) -> None:
        self._response = response

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk

    async def aclose(self) -> None:
        self._response.release()


class AiohttpTransport(httpx.AsyncBaseTransport):
    """Experiment: httpx's client API over an aiohttp connection pool (what the
    `httpx-aiohttp` package does, minus its error mapping). Success path only."""

    def __init__(self, limit: int, keepalive_expiry: float, tls: Any) -> None:
        self._limit, self._expiry, self._tls = limit, keepalive_expiry, tls
        self._session: Any = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        import aiohttp

        if self._session is None:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._limit,
                                               keepalive_timeout=self._expiry,
                                               ssl=self._tls if self._tls else True),
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60),
                auto_decompress=False)
        skip = {"host", "content-length", "transfer-encoding"}
        headers = [(k, v) for k, v in request.headers.multi_items() if k.lower() not in skip]
        response = await self._session.request(request.method, str(request.url),
                                               headers=headers, data=await request.aread())
        return httpx.Response(response.status, headers=list(response.raw_headers),
                              stream=_AiohttpStream(response), request=request)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@contextlib.asynccontextmanager
async def open_client(case: Case, n: int, server: Server) -> AsyncIterator[Call]:
    """A zero-argument coroutine function that makes one call and returns its text."""
    url = f"{server.base_url}/chat/completions"
    if case.kind == "podium":
        from podium.core.models.provider import Message, ModelRequest, collect
        from podium.providers.openai import OpenAIProvider

        client = _httpx_client(case, server)  # httpx2 works too: the provider duck-types it
        provider = OpenAIProvider("bench", model="bench", base_url=server.base_url,
                                  client=client, key="sk-bench",
                                  concurrency=case.concurrency or n)
        request = ModelRequest(messages=(Message("user", "say ok"),), max_tokens=4)

        async def podium_call() -> str:
            return (await collect(provider, request)).text

        try:
            yield podium_call
        finally:
            await client.aclose()
    elif case.kind == "httpx":
        client = _httpx_client(case, server)

        async def httpx_call() -> str:
            parts: list[str] = []
            async with client.stream("POST", url, json=BODY) as response:
                response.raise_for_status()
                async for line in response.aiter_lines():
                    _parse_data_line(line, parts)
            return "".join(parts)

        try:
            yield httpx_call
        finally:
            await client.aclose()
    elif case.kind == "aiohttp":
        import aiohttp

        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(
                                            limit=n, ssl=server.tls if server.tls else True),
                                        timeout=aiohttp.ClientTimeout(total=60))

        async def aiohttp_call() -> str:
            parts: list[str] = []
            async with session.post(url, json=BODY) as response:
                response.raise_for_status()
                async for raw in response.content:
                    _parse_data_line(raw.decode().rstrip("\r\n"), parts)
            return "".join(parts)

        try:
            yield aiohttp_call
        finally:
            await session.close()
    else:
        raise ValueError(case.kind)


# httpcore assigns a request to an idle connection without reserving it: requests that
# arrive in the same event-loop tick all get the same idle connection, one wins and the
# rest get ConnectionNotAvailable and go round again. Count those retries (count only;
# the behaviour is unchanged).
RETRIES = [0]


def _count_pool_retries() -> None:
    import importlib

    for name in ("httpcore._async.connection_pool", "httpcore2._async.connection_pool"):
        try:
            pool_module = importlib.import_module(name)
        except ImportError:
            continue
        cls = pool_module.AsyncPoolRequest
        if getattr(cls.clear_connection, "_bench_counted", False):
            continue

        def counting(self: Any, _original: Any = cls.clear_connection) -> None:
            RETRIES[0] += 1
            _original(self)

        counting._bench_counted = True  # type: ignore[attr-defined]
        cls.clear_connection = counting


# --- measuring -----------------------------------------------------------------------------


@dataclass
class CaseResult:
    """Five bursts of one case at one N."""

    case: Case
    n: int
    times: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)  # client-process CPU seconds per burst
    errors: list[int] = field(default_factory=list)
    new_connections: list[int] = field(default_factory=list)
    open_after: list[int] = field(default_factory=list)
    pool_retries: list[int] = field(default_factory=list)
    first_error: str = ""

    @property
    def median(self) -> float:
        return statistics.median(self.times) if self.times else float("nan")

    @property
    def warm_median(self) -> float:
        warm = self.times[1:] or self.times
        return statistics.median(warm) if warm else float("nan")


async def _bursts(case: Case, n: int, server: Server, bursts: int) -> CaseResult:
    result = CaseResult(case, n)
    async with open_client(case, n, server) as call:
        await asyncio.to_thread(server_stats, server.stats_port)  # reset the counters
        for _ in range(bursts):
            RETRIES[0] = 0
            c0, t0 = time.process_time(), time.perf_counter()
            outs = await asyncio.gather(*(call() for _ in range(n)), return_exceptions=True)
            result.times.append(time.perf_counter() - t0)
            result.cpu.append(time.process_time() - c0)
            bad = [o for o in outs if isinstance(o, BaseException) or o != CONTENT]
            result.errors.append(len(bad))
            result.pool_retries.append(RETRIES[0])
            if bad and not result.first_error:
                result.first_error = repr(bad[0])[:200]
            await asyncio.sleep(GAP_S)
            stats = await asyncio.to_thread(server_stats, server.stats_port)
            result.new_connections.append(stats["new_connections"])
            result.open_after.append(stats["open"])
    return result


def run_case(case: Case, n: int, server: Server, bursts: int) -> CaseResult:
    """Five bursts in a fresh event loop (each case gets its own client and loop)."""
    async def bounded() -> CaseResult:
        return await asyncio.wait_for(_bursts(case, n, server, bursts), CASE_TIMEOUT_S)

    try:
        return asyncio.run(bounded())
    except TimeoutError:
        r = CaseResult(case, n)
        r.first_error = f"case took over {CASE_TIMEOUT_S:.0f} s"
        return r


def main_cases() -> list[Case]:
    """Podium's provider as shipped (concurrency N and 16), the same provider on httpx's
    own pool with the limits shipped before (the "before" row), plain httpx twice, and
    aiohttp."""
    return [
        Case("podium (make_client, concurrency=N)", "podium"),
        Case("podium (make_client, concurrency=16)", "podium", concurrency=16),
        Case("podium on httpx's pool 1024/20 (before)", "podium", limits=(1024, 20, 5.0),
             lib="httpx-pool"),
        Case("httpx max_conn=200 keepalive=200", "httpx", limits=(200, 200, 5.0)),
        Case("httpx default limits (100/20)", "httpx"),
        Case("aiohttp TCPConnector(limit=N)", "aiohttp"),
    ]


def explore_cases() -> list[Case]:
    """Podium's provider under other limits of its pool (max_connections/max_keepalive,
    keepalive_expiry 5 s unless said), other concurrency bounds, and on other pools."""
    def podium(c: int | None, k: int | None, conc: int | None = None, *,
               e: float = 5.0, lib: str = "podium") -> Case:
        prefix = f"{lib} " if lib != "podium" else ""
        keep = "none" if k is None else str(k)
        label = (f"{prefix}{c or 'none'}/{keep}"
                 f"{f' exp {e:g}s' if e != 5.0 else ''}, conc={conc or 'N'}")
        return Case(label, "podium", (c, k, e), conc, lib)

    return [
        # Podium's pool: a bound below N (requests wait for a connection), keep-alive
        # bounds, a short expiry, no bound at all
        podium(100, 100),
        podium(200, 200),
        podium(1024, 20),
        podium(1024, 100),
        podium(1024, 256),
        podium(1024, 1024, e=0.1),
        podium(None, None),
        # concurrency bounds on a pool that never makes a request wait
        podium(1024, 1024, 16),
        podium(1024, 1024, 64),
        podium(1024, 1024, 256),
        # the network backend: httpcore's default (anyio) under Podium's pool
        podium(1024, 1024, lib="pool+anyio"),
        # the same provider on other pools
        podium(100, 20, lib="httpx-pool"),
        podium(1024, 20, lib="httpx-pool"),
        podium(100, 100, lib="httpx-pool"),
        podium(100, 100, lib="httpx2"),
        podium(500, 500, lib="httpx2"),
        podium(100, 100, lib="aiohttp-transport"),
        podium(1024, 1024, lib="aiohttp-transport"),
    ]


# --- report --------------------------------------------------------------------------------


def _cell(t: float) -> str:
    return f"{t:.3f}"


def _httpcore_pool(case: Case) -> bool:
    """Whether the case's requests go through an httpcore(2) connection pool."""
    return case.kind == "httpx" or case.lib in ("httpx-pool", "httpx2")


def render(results: list[CaseResult], title: str) -> str:
    bursts = max((len(r.times) for r in results), default=0)
    header = ["client", "N", *[f"b{i + 1} s" for i in range(bursts)], "median",
              "new conns/burst", "pool retries/burst", "cpu s/burst", "errors"]
    rows = []
    for r in results:
        times = [_cell(t) for t in r.times] + ["-"] * (bursts - len(r.times))
        rows.append([r.case.label, str(r.n), *times,
                     _cell(r.median) if r.times else r.first_error or "-",
                     "/".join(str(c) for c in r.new_connections),
                     "/".join(str(c) for c in r.pool_retries) if _httpcore_pool(r.case) else "-",
                     f"{statistics.median(r.cpu):.3f}" if r.cpu else "-",
                     str(sum(r.errors))])
    return f"{title}\n\n{table(header, rows)}"


def targets(results: list[CaseResult]) -> list[list[str]]:
    rows = []
    for r in results:
        if r.case.label != main_cases()[0].label:
            continue
        if r.n == 100:
            worst = max(r.times) if r.times else float("inf")
            rows.append([f"Podium (concurrency=N) every burst under {TARGET_N100_S} s, N=100",
                         f"worst {worst:.3f} s", f"< {TARGET_N100_S} s",
                         mark(worst < TARGET_N100_S and not sum(r.errors))])
        else:
            from podium.providers.http import DEFAULT_LIMITS

            pool = DEFAULT_LIMITS.max_connections or r.n
            pool_floor = -(-r.n // pool) * DELAY_S  # ceil(N / pool) waves of 200 ms
            value = f"median {r.median:.3f} s" if r.times else r.first_error
            rows.append([f"Podium (concurrency=N) at N={r.n}: median vs the floors",
                         value, f"{r.median / DELAY_S:.1f}x the {DELAY_S} s server floor, "
                         f"{r.median / pool_floor:.1f}x the {pool_floor:.1f} s floor of a "
                         f"{pool}-connection pool", "(report)"])
    return rows


def summary(main: list[CaseResult], explore: list[CaseResult]) -> dict[str, Any]:
    def block(results: list[CaseResult]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for r in results:
            out.setdefault(r.case.label, {})[str(r.n)] = {
                "bursts_s": [round(t, 4) for t in r.times],
                "median_s": round(r.median, 4),
                "warm_median_s": round(r.warm_median, 4),
                "client_cpu_s": [round(c, 4) for c in r.cpu],
                "new_connections": r.new_connections,
                "open_connections_after": r.open_after,
                "errors": r.errors,
                "httpcore_pool_retries": r.pool_retries,
                **({"first_error": r.first_error} if r.first_error else {}),
            }
        return out

    data: dict[str, Any] = {"server_delay_s": DELAY_S, "clients": block(main),
                            "targets": {row[0]: row[3] for row in targets(main)},
                            "load_avg_1m": round(os.getloadavg()[0], 2)}
    if explore:
        data["explore"] = block(explore)
    return data


NOTES = """\
new conns/burst: TCP connections the server accepted during each burst (0 = every call
reused a keep-alive connection). pool retries/burst: httpcore ConnectionNotAvailable
retries (requests handed an idle connection another request took first; "-" where no
httpcore pool is involved: Podium's own pool, aiohttp). cpu s/burst:
the client process's CPU time for the burst (the server has its own process). A
burst's floor is the server's 200 ms; with a pool of C connections and N > C calls it
is ceil(N / C) x 200 ms, with a concurrency of G it is ceil(N / G) x 200 ms."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--ns", default=",".join(map(str, NS)), help="burst sizes, e.g. 100,500")
    parser.add_argument("--bursts", type=int, default=BURSTS, help="bursts per case")
    parser.add_argument("--explore", action="store_true",
                        help="also run the limits / concurrency grid for Podium's provider")
    parser.add_argument("--only", default="", help="run only cases whose label has this text")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--connect-ms", type=float, default=0.0,
                        help="simulated cost of a new connection: the server delays the "
                        "first request on each connection by this many ms (default 0)")
    parser.add_argument("--tls", action="store_true",
                        help="serve HTTPS with a throw-away self-signed certificate, so a "
                        "new connection costs a real TLS handshake")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--certdir", default="", help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=DELAY_S, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.delay, args.connect_ms / 1000, args.certdir)
        return 0
    ns = [int(x) for x in args.ns.split(",") if x]
    _count_pool_retries()
    main_results: list[CaseResult] = []
    explore_results: list[CaseResult] = []
    with server_process(connect_penalty=args.connect_ms / 1000, tls=args.tls) as server:
        for n in ns:
            for case in main_cases():
                if args.only in case.label:
                    main_results.append(run_case(case, n, server, args.bursts))
        if args.explore:
            for n in ns:
                for case in explore_cases():
                    if args.only in case.label:
                        explore_results.append(run_case(case, n, server, args.bursts))
    if args.json:
        print(json.dumps(summary(main_results, explore_results), indent=2))
    else:
        parts = []
        if main_results:
            parts.append(render(main_results, f"bursts of N calls, {args.bursts} in a row per "
                                f"client (server answers after {DELAY_S * 1000:.0f} ms)"))
        if targets(main_results):
            parts.append(table(["target", "value", "limit", "result"], targets(main_results)))
        if explore_results:
            parts.append(render(explore_results, "Podium's OpenAIProvider: its pool's limits "
                                "x concurrency (make_client(limits=...)), and other pools"))
        parts += [NOTES, load_note()]
        print("\n\n".join(parts))
    failed = any(row[3] == "FAIL" for row in targets(main_results))
    return 1 if args.check and failed else 0


if __name__ == "__main__":
    sys.exit(main())
