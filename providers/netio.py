"""httpcore's public network-backend interface (`AsyncNetworkBackend` /
`AsyncNetworkStream`) on plain asyncio protocols.

Why not httpcore's default `AnyIOBackend`: it opens an anyio cancel scope for every
read and write and polls the socket to tell whether an idle connection was dropped;
measured in bench/remote_burst.py, that is about a fifth of the client's CPU per call.
Here bytes land in a buffer as they arrive, a timer exists only while a read or a
write has to wait, and "was it dropped" is a look at that buffer.

Errors are httpcore's (`ConnectError`, `ReadTimeout`, ...), as every backend raises,
so the transport above maps them to httpx's in one place.
"""

from __future__ import annotations

import asyncio
import ipaddress
import ssl
from collections.abc import Iterable
from typing import Any

import httpcore

READ_PAUSE = 1 << 20  # bytes buffered, not yet read, before the socket stops being read
HAPPY_EYEBALLS_S = 0.25  # RFC 8305's delay before trying a host's next address


class _Protocol(asyncio.Protocol):
    """Buffers what arrives and wakes the one reader or writer waiting on it."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buffer = bytearray()
        self.eof = False
        self.error: BaseException | None = None
        self.reading_paused = False
        self.writing_paused = False
        self.waiter: asyncio.Future[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) > READ_PAUSE and self.transport is not None:
            self.transport.pause_reading()
            self.reading_paused = True
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # close our side too: HTTP/1.1 has no use for a half-open socket

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        self.error = exc
        self.writing_paused = False
        self._wake()

    def pause_writing(self) -> None:
        self.writing_paused = True

    def resume_writing(self) -> None:
        self.writing_paused = False
        self._wake()

    def _wake(self) -> None:
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_result(None)

    async def wait(self, timeout: float | None) -> None:
        """Until something arrives, the socket closes, or writing may go on."""
        self.waiter = asyncio.get_running_loop().create_future()
        try:
            async with asyncio.timeout(timeout):
                await self.waiter
        finally:
            self.waiter = None


class AsyncioStream(httpcore.AsyncNetworkStream):
    """One TCP (or TLS) connection."""

    def __init__(self, transport: asyncio.Transport, protocol: _Protocol,
                 tls: bool = False) -> None:
        self._transport = transport
        self._protocol = protocol
        self._tls = tls

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        """Up to `max_bytes` bytes; b"" once the peer has closed the connection."""
        p = self._protocol
        if not p.buffer and not p.eof:
            try:
                await p.wait(timeout)
            except TimeoutError:
                raise httpcore.ReadTimeout(f"no data in {timeout} s") from None
        if p.buffer:
            if len(p.buffer) <= max_bytes:
                data = bytes(p.buffer)
                p.buffer.clear()
            else:
                data = bytes(p.buffer[:max_bytes])
                del p.buffer[:max_bytes]
            if p.reading_paused and len(p.buffer) <= READ_PAUSE // 2:
                p.reading_paused = False
                self._transport.resume_reading()
            return data
        if p.error is not None:
            raise httpcore.ReadError(str(p.error) or type(p.error).__name__)
        return b""

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        """Send `buffer`, waiting (up to `timeout`) while the send buffer is full."""
        if not buffer:
            return
        p = self._protocol
        if self._transport.is_closing():
            raise httpcore.WriteError(str(p.error) if p.error else "the connection is closed")
        self._transport.write(buffer)
        while p.writing_paused:
            try:
                await p.wait(timeout)
            except TimeoutError:
                raise httpcore.WriteTimeout(f"could not send in {timeout} s") from None

    async def aclose(self) -> None:
        """Close the connection. TLS is dropped without the close_notify exchange
        (as httpcore's anyio backend does): asyncio would keep the socket until the
        peer answers it, and HTTP's own framing already says where a message ends."""
        if self._tls:
            self._transport.abort()
        else:
            self._transport.close()

    async def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                        timeout: float | None = None) -> httpcore.AsyncNetworkStream:
        """This connection, upgraded to TLS."""
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(timeout):
                transport = await loop.start_tls(self._transport, self._protocol, ssl_context,
                                                 server_hostname=server_hostname)
        except TimeoutError:
            self._transport.close()
            raise httpcore.ConnectTimeout(f"TLS handshake took over {timeout} s") from None
        except OSError as e:  # ssl.SSLError included
            self._transport.close()
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        assert isinstance(transport, asyncio.Transport)  # None only for a server side
        self._protocol.transport = transport
        return AsyncioStream(transport, self._protocol, tls=True)

    def get_extra_info(self, info: str) -> Any:
        """What httpcore asks of a stream. "is_readable" on an idle connection means the
        server has sent something (its close, in practice): the connection is spent."""
        if info == "is_readable":
            return bool(self._protocol.buffer) or self._protocol.eof
        names = {"ssl_object": "ssl_object", "client_addr": "sockname",
                 "server_addr": "peername", "socket": "socket"}
        return self._transport.get_extra_info(names[info]) if info in names else None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    """Opens `AsyncioStream`s (TCP only; asyncio's default TCP_NODELAY)."""

    async def connect_tcp(self, host: str, port: int, timeout: float | None = None,
                          local_address: str | None = None,
                          socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
                          ) -> httpcore.AsyncNetworkStream:
        """A new connection to host:port."""
        loop = asyncio.get_running_loop()
        # Happy eyeballs races a name's addresses, in tasks; an address has only itself.
        delay = None if _is_address(host) else HAPPY_EYEBALLS_S
        try:
            async with asyncio.timeout(timeout):
                transport, protocol = await loop.create_connection(
                    _Protocol, host, port, happy_eyeballs_delay=delay,
                    local_addr=(local_address, 0) if local_address else None)
        except TimeoutError:  # (before OSError: TimeoutError is one)
            raise httpcore.ConnectTimeout(f"no connection in {timeout} s") from None
        except (OSError, OverflowError) as e:  # OverflowError: a port past 65535
            raise httpcore.ConnectError(str(e) or type(e).__name__) from e
        sock = transport.get_extra_info("socket")
        for option in socket_options or ():
            sock.setsockopt(*option)
        assert isinstance(transport, asyncio.Transport)
        return AsyncioStream(transport, protocol)

    async def sleep(self, seconds: float) -> None:
        """httpcore sleeps between connect retries."""
        await asyncio.sleep(seconds)


def _is_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
