"""An httpx transport with a small HTTP/1.1 connection pool, on httpcore's public
`AsyncHTTPConnection`.

Why not httpcore's own `AsyncConnectionPool` (1.0.x): at every pool event it rescans
every connection for every queued request, and it hands one idle connection to all
the requests of an event-loop tick, so all but one retry (encode/httpx#3215). Here an
idle connection is popped by the one request that gets it:

    request -> the newest idle connection to its origin (spent ones are closed)
            -> else a new connection, while fewer than max_connections are open
            -> else wait (the pool timeout) for a connection or a slot to free up
    response closed -> the connection to the first waiter for its origin, else idle
                       (closed instead when it cannot be reused, when requests to
                       other origins wait for its slot, or when
                       max_keepalive_connections are idle already)
    idle for keepalive_expiry -> closed by a timer, or when next taken

asyncio only, HTTP/1.1 only, no proxies (behind one, `make_client` uses httpx's own
transport). Errors are httpx's, mapped from httpcore's the way httpx's
`AsyncHTTPTransport` maps them, so callers see one exception tree.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Iterator

import httpcore
import httpx

from podium.providers.netio import AsyncioBackend

# httpcore's public exceptions -> httpx's (the table of httpx's AsyncHTTPTransport).
# Looked up along the raised type's MRO, so the most specific class wins.
_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextlib.contextmanager
def _mapped(request: httpx.Request) -> Iterator[None]:
    try:
        yield
    except Exception as exc:
        target = next((_ERRORS[t] for t in type(exc).__mro__ if t in _ERRORS), None)
        if target is None:
            raise
        raise target(str(exc), request=request) from exc


Connection = httpcore.AsyncHTTPConnection
Key = tuple[bytes, bytes, int]  # an origin's scheme, host, port (httpcore.Origin is unhashable)
Slot = Connection | None  # what a waiter is handed: a connection, or room to open one


def _key(origin: httpcore.Origin) -> Key:
    return origin.scheme, origin.host, origin.port


class PoolTransport(httpx.AsyncBaseTransport):
    """An `httpx.AsyncBaseTransport` that pools HTTP/1.1 connections per origin.

    Args:
        limits: `max_connections` open at once (None: no bound),
            `max_keepalive_connections` kept idle (None: every one),
            `keepalive_expiry` seconds an idle connection is kept (None: for ever).
        verify: as httpx's (True, False, or an `ssl.SSLContext`); with
            `trust_env`, SSL_CERT_FILE and SSL_CERT_DIR are honoured, as by httpx.
        network_backend: how connections reach the network (default: asyncio's).
    """

    def __init__(self, limits: httpx.Limits, *, verify: ssl.SSLContext | bool = True,
                 trust_env: bool = True,
                 network_backend: httpcore.AsyncNetworkBackend | None = None) -> None:
        self._verify, self._trust_env = verify, trust_env
        self._ssl: ssl.SSLContext | None = None  # made at the first https connection
        self._max_open = limits.max_connections
        self._max_idle = limits.max_keepalive_connections
        self._expiry = limits.keepalive_expiry
        self._backend = network_backend or AsyncioBackend()
        self._open: dict[Connection, Key] = {}  # connecting, in use, or idle
        self._slots = 0  # len(_open), plus slots handed to waiters that have not used them
        self._idle: dict[Key, deque[Connection]] = {}  # per origin, the oldest on the left
        self._idle_count = 0
        self._waiters: deque[tuple[Key, asyncio.Future[Slot]]] = deque()
        self._timer: asyncio.TimerHandle | None = None
        self._closing: set[asyncio.Task[None]] = set()  # closes started by the timer
        self._closed = False

    @property
    def open_connections(self) -> int:
        """Connections open now (connecting, in use, or idle)."""
        return len(self._open)

    @property
    def idle_connections(self) -> int:
        """Connections waiting for their next request."""
        return self._idle_count

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request` on a pooled connection, which goes back to the pool when the
        response is closed."""
        if request.url.scheme not in ("http", "https"):
            raise httpx.UnsupportedProtocol(f"unsupported URL scheme {request.url.scheme!r}",
                                            request=request)
        req = httpcore.Request(
            method=request.method,
            url=httpcore.URL(scheme=request.url.raw_scheme, host=request.url.raw_host,
                             port=request.url.port, target=request.url.raw_path),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        pool_timeout = request.extensions.get("timeout", {}).get("pool")
        connection = await self._acquire(req.url.origin, pool_timeout, request)
        try:
            with _mapped(request):
                response = await connection.handle_async_request(req)
        except BaseException:
            await self._release(connection)
            raise
        return httpx.Response(status_code=response.status, headers=response.headers,
                              stream=_PooledStream(response, connection, self, request),
                              extensions=response.extensions)

    async def aclose(self) -> None:
        """Close every connection, idle or in use; requests still waiting fail."""
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        connections = list(self._open)
        self._open.clear()
        self._idle.clear()
        self._idle_count = 0
        for _, waiter in self._waiters:
            if not waiter.done():
                waiter.set_exception(RuntimeError("the HTTP client was closed"))
        self._waiters.clear()
        await _close(connections)

    # --- the pool: no await between reading its state and changing it -----------------
    # Connections to close are collected in `stale` and closed once the state is right.

    async def _acquire(self, origin: httpcore.Origin, timeout: float | None,
                       request: httpx.Request) -> Connection:
        if self._closed:
            raise RuntimeError("the HTTP client was closed")
        stale: list[Connection] = []
        connection = self._pop_idle(_key(origin), stale)
        if connection is None and self._full():
            self._evict_one_idle(stale)  # an idle connection to another origin makes room
        if connection is None and not self._full():
            self._slots += 1
            connection = self._new(origin)
        if stale:
            try:
                await _close(stale)
            except BaseException:  # cancelled meanwhile: `connection` is not used after all
                if connection is not None:
                    await self._release(connection)
                raise
        if connection is not None:
            return connection
        handed = await self._wait(origin, timeout, request)
        return handed if handed is not None else self._new(origin)

    def _full(self) -> bool:
        return self._max_open is not None and self._slots >= self._max_open

    def _new(self, origin: httpcore.Origin) -> Connection:
        connection = Connection(origin, ssl_context=self._ssl_context(origin),
                                keepalive_expiry=self._expiry, network_backend=self._backend)
        self._open[connection] = _key(origin)
        return connection

    def _ssl_context(self, origin: httpcore.Origin) -> ssl.SSLContext | None:
        """The TLS context, for https only: loading the CA bundle costs ~20 ms, which a
        process that only talks to plain-http servers (or none) need not pay."""
        if origin.scheme != b"https":
            return None
        if self._ssl is None:
            self._ssl = httpx.create_ssl_context(verify=self._verify, trust_env=self._trust_env)
        return self._ssl

    def _pop_idle(self, key: Key, stale: list[Connection]) -> Connection | None:
        idle = self._idle.get(key)
        while idle:
            connection = idle.pop()  # the newest: the least likely to have been dropped
            self._idle_count -= 1
            if connection.is_available() and not connection.has_expired():
                return connection
            self._drop(connection, stale)
        return None

    def _evict_one_idle(self, stale: list[Connection]) -> None:
        for idle in self._idle.values():
            if idle:
                self._idle_count -= 1
                self._drop(idle.popleft(), stale)
                return

    async def _wait(self, origin: httpcore.Origin, timeout: float | None,
                    request: httpx.Request) -> Slot:
        waiter: asyncio.Future[Slot] = asyncio.get_running_loop().create_future()
        self._waiters.append((_key(origin), waiter))
        try:
            async with asyncio.timeout(timeout):
                return await waiter
        except BaseException as exc:
            handed = (waiter.done() and not waiter.cancelled()
                      and waiter.exception() is None)
            if handed:  # handed a slot, then cancelled or timed out before using it
                stale: list[Connection] = []
                slot = waiter.result()
                if slot is None:
                    self._free_slot()
                else:
                    self._park(slot, stale)
                await _close(stale)
            else:
                waiter.cancel()  # _park and _free_slot pass over it
            if isinstance(exc, TimeoutError):
                raise httpx.PoolTimeout(f"no connection free in the pool in {timeout} s",
                                        request=request) from None
            raise

    async def _release(self, connection: Connection) -> None:
        """A response is closed (or its request failed): reuse or close the connection."""
        if connection not in self._open:  # the transport was closed meanwhile
            return
        stale: list[Connection] = []
        if connection.is_closed() or not connection.is_idle():
            self._drop(connection, stale)
        else:
            self._park(connection, stale)
        await _close(stale)

    def _park(self, connection: Connection, stale: list[Connection]) -> None:
        """An idle connection goes to the first waiter for its origin, else to the idle
        line; it is closed instead when requests to other origins wait for its slot, or
        when max_keepalive_connections are idle already."""
        key = self._open[connection]
        others_wait = False
        for i, (wanted, waiter) in enumerate(self._waiters):
            if waiter.done():
                continue
            if wanted == key:
                del self._waiters[i]
                waiter.set_result(connection)
                return
            others_wait = True
        if others_wait or (self._max_idle is not None and self._idle_count >= self._max_idle):
            self._drop(connection, stale)  # (_drop hands the slot to the first waiter)
            return
        self._idle.setdefault(key, deque()).append(connection)
        self._idle_count += 1
        if self._timer is None and self._expiry is not None:
            self._timer = asyncio.get_running_loop().call_later(self._sweep_every(),
                                                                self._sweep)

    def _drop(self, connection: Connection, stale: list[Connection]) -> None:
        del self._open[connection]
        stale.append(connection)
        self._free_slot()

    def _free_slot(self) -> None:
        """A slot is free: to the first waiter still waiting, else back to the pool."""
        while self._waiters:
            _, waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self._slots -= 1

    def _sweep_every(self) -> float:
        # A quarter of the expiry: an idle connection lives at most 1.25 x keepalive_expiry.
        return max(0.05, (self._expiry or 0.0) / 4)

    def _sweep(self) -> None:
        """Timer: close the idle connections that expired, so a quiet client does not
        hold sockets the server has long given up on."""
        self._timer = None
        stale: list[Connection] = []
        for idle in self._idle.values():
            while idle and idle[0].has_expired():  # the oldest expire first
                self._idle_count -= 1
                self._drop(idle.popleft(), stale)
        if stale:
            task = asyncio.get_running_loop().create_task(_close(stale))
            self._closing.add(task)  # (the loop keeps only a weak reference to tasks)
            task.add_done_callback(self._closing.discard)
        if self._idle_count:
            self._timer = asyncio.get_running_loop().call_later(self._sweep_every(),
                                                                self._sweep)


async def _close(connections: list[Connection]) -> None:
    for connection in connections:
        await connection.aclose()


class _PooledStream(httpx.AsyncByteStream):
    """A response body that gives its connection back to the pool when closed."""

    def __init__(self, response: httpcore.Response, connection: Connection,
                 pool: PoolTransport, request: httpx.Request) -> None:
        self._response = response
        self._connection = connection
        self._pool = pool
        self._request = request
        self._closed = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _mapped(self._request):
            async for part in self._response.aiter_stream():
                yield part

    async def aclose(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            with _mapped(self._request):
                await self._response.aclose()
        finally:
            await self._pool._release(self._connection)
