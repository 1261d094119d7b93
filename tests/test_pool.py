"""providers.pool and providers.netio against real loopback servers: connections are
reused, the bounds hold, idle connections expire, waiting for a connection times out,
and every failure reaches the provider as the same typed error as before."""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpcore
import httpx
import pytest

from podium.core.errors import Timeout, Unavailable
from podium.core.models.provider import Message, ModelRequest, collect
from podium.providers.http import make_client, transport_error
from podium.providers.openai import OpenAIProvider
from podium.providers.pool import PoolTransport
from tests.servers import Behaviour, ScriptServer, tls_server

T = TypeVar("T")
OK = Behaviour(kind="status", status=200)  # a small JSON answer, connection kept
STREAM = Behaviour(text="pooled answer", keep_alive=True)  # an SSE stream, chunked, kept


def limits(connections: int | None = 10, keep: int | None = 10,
           expiry: float | None = 5.0) -> httpx.Limits:
    return httpx.Limits(max_connections=connections, max_keepalive_connections=keep,
                        keepalive_expiry=expiry)


def run(client: httpx.AsyncClient, body: Callable[[httpx.AsyncClient], Awaitable[T]]) -> T:
    async def main() -> T:
        async with client:
            return await body(client)
    return asyncio.run(main())


def pooled(lim: httpx.Limits | None = None, *, pool_timeout: float = 5.0,
           **kw: Any) -> tuple[httpx.AsyncClient, PoolTransport]:
    """A client on a pool this test can look into (make_client's, with `lim`)."""
    pool = PoolTransport(lim or limits(), **kw)
    return httpx.AsyncClient(transport=pool, timeout=httpx.Timeout(5.0, pool=pool_timeout)), pool


async def post(client: httpx.AsyncClient, server: ScriptServer) -> int:
    response = await client.post(server.url + "/x", json={})
    return response.status_code


def provider(server: ScriptServer, client: httpx.AsyncClient) -> OpenAIProvider:
    return OpenAIProvider("remote", model="m", base_url=server.url + "/v1", client=client,
                          key="sk-test")


def ask() -> ModelRequest:
    return ModelRequest(messages=(Message("user", "hi"),))


# --- reuse -----------------------------------------------------------------------------


def test_sequential_provider_calls_share_one_connection() -> None:
    with ScriptServer([STREAM]) as server:
        async def calls(client: httpx.AsyncClient) -> list[str]:
            p = provider(server, client)
            return [(await collect(p, ask())).text for _ in range(3)]
        texts = run(make_client(), calls)
    assert texts == ["pooled answer"] * 3
    assert len(server.requests) == 3 and server.connections == 1


def test_a_burst_then_another_reuses_the_first_bursts_connections() -> None:
    with ScriptServer([Behaviour(kind="status", status=200, delay=0.1)]) as server:
        async def bursts(client: httpx.AsyncClient) -> None:
            for _ in range(2):
                codes = await asyncio.gather(*(post(client, server) for _ in range(8)))
                assert codes == [200] * 8
        run(make_client(), bursts)
    assert len(server.requests) == 16 and server.connections == 8


def test_a_connection_not_read_to_its_end_is_closed_not_reused() -> None:
    with ScriptServer([STREAM]) as server:
        async def half_read(client: httpx.AsyncClient) -> None:
            async with client.stream("POST", server.url + "/x", json={}) as response:
                async for _ in response.aiter_lines():
                    break  # leave the rest unread: the connection cannot be reused
            assert pool.open_connections == 0
            assert await post(client, server) == 200
        client, pool = pooled()
        run(client, half_read)
    assert server.connections == 2


# --- bounds ----------------------------------------------------------------------------


def test_max_connections_holds_and_the_rest_wait_their_turn() -> None:
    with ScriptServer([Behaviour(kind="status", status=200, delay=0.2)]) as server:
        client, pool = pooled(limits(3, 3))

        async def burst(client: httpx.AsyncClient) -> list[int]:
            peak = 0

            async def watch() -> None:
                nonlocal peak
                while True:
                    peak = max(peak, pool.open_connections)
                    await asyncio.sleep(0.01)

            watcher = asyncio.create_task(watch())
            try:
                return await asyncio.gather(*(post(client, server) for _ in range(9)))
            finally:
                watcher.cancel()
                assert peak == 3

        started = time.perf_counter()
        codes = run(client, burst)
        elapsed = time.perf_counter() - started
    assert codes == [200] * 9
    assert server.connections == 3  # the waiting requests were handed the same three
    assert elapsed >= 3 * 0.2  # three waves of three


def test_no_more_than_max_keepalive_stay_idle() -> None:
    with ScriptServer([Behaviour(kind="status", status=200, delay=0.1)]) as server:
        async def burst(client: httpx.AsyncClient) -> tuple[int, int]:
            await asyncio.gather(*(post(client, server) for _ in range(6)))
            return pool.open_connections, pool.idle_connections
        client, pool = pooled(limits(10, 2))
        assert run(client, burst) == (2, 2)


def test_a_full_pool_closes_an_idle_connection_to_serve_another_origin() -> None:
    with ScriptServer([OK]) as first, ScriptServer([OK]) as second:
        async def both(client: httpx.AsyncClient) -> list[int]:
            codes = [await post(client, first), await post(client, second)]
            assert pool.open_connections == 1
            return codes
        client, pool = pooled(limits(1, 1), pool_timeout=0.5)
        assert run(client, both) == [200, 200]


def test_a_request_waiting_for_another_origin_gets_the_freed_slot() -> None:
    with ScriptServer([Behaviour(kind="status", status=200, delay=0.3)]) as first, \
            ScriptServer([OK]) as second:
        async def both(client: httpx.AsyncClient) -> list[float]:
            started = time.perf_counter()
            slow = asyncio.create_task(post(client, first))
            await asyncio.sleep(0.05)  # the one slot is taken: the next request waits
            assert [await post(client, second), await slow] == [200, 200]
            return [time.perf_counter() - started]
        client, _ = pooled(limits(1, 1), pool_timeout=2.0)
        (elapsed,) = run(client, both)
    assert 0.3 <= elapsed < 1.0  # the slow one's time, not a pool timeout's worth


def test_waiting_too_long_for_a_connection_is_a_typed_timeout() -> None:
    slow, fast = Behaviour(kind="status", status=200, delay=1.0), OK
    with ScriptServer([slow, fast]) as server:
        async def crowded(client: httpx.AsyncClient) -> int:
            p = provider(server, client)
            holder = asyncio.create_task(client.post(server.url + "/x", json={}))
            await asyncio.sleep(0.1)  # the one connection is taken
            with pytest.raises(Timeout, match="PoolTimeout"):
                await collect(p, ask())
            return (await holder).status_code
        client = make_client(limits=limits(1, 1), timeout=httpx.Timeout(5.0, pool=0.2))
        assert run(client, crowded) == 200
    assert len(server.requests) == 1  # the one that timed out never reached the network


def test_a_cancelled_waiter_leaves_the_pool_whole() -> None:
    with ScriptServer([Behaviour(kind="status", status=200, delay=0.3)]) as server:
        async def cancel_one(client: httpx.AsyncClient) -> int:
            first = asyncio.create_task(post(client, server))
            await asyncio.sleep(0.05)
            waiting = asyncio.create_task(post(client, server))
            await asyncio.sleep(0.05)
            waiting.cancel()
            await asyncio.gather(first, waiting, return_exceptions=True)
            assert pool.open_connections == 1
            return await post(client, server)  # the connection went back: no wait
        client, pool = pooled(limits(1, 1), pool_timeout=0.5)
        assert run(client, cancel_one) == 200
    assert server.connections == 1


# --- expiry ----------------------------------------------------------------------------


def test_idle_connections_expire_and_are_closed_by_the_timer() -> None:
    with ScriptServer([OK]) as server:
        async def idle_then_again(client: httpx.AsyncClient) -> None:
            await post(client, server)
            assert pool.idle_connections == 1
            await asyncio.sleep(0.5)  # over the expiry: the timer closes it, unasked
            assert pool.open_connections == 0
            await post(client, server)
        client, pool = pooled(limits(expiry=0.2))
        run(client, idle_then_again)
    assert server.connections == 2


def test_a_connection_the_server_dropped_is_not_reused() -> None:
    with ScriptServer([Behaviour(kind="status", status=200, drop=True), OK]) as server:
        async def twice(client: httpx.AsyncClient) -> list[int]:
            first = await post(client, server)
            await asyncio.sleep(0.2)  # the server's close arrives while it is idle
            return [first, await post(client, server)]
        assert run(make_client(), twice) == [200, 200]
    assert server.connections == 2


# --- errors: the same typed errors as on httpx's own transport ---------------------------


@pytest.mark.parametrize("behaviour,error,cls", [
    (Behaviour(kind="slow", delay=1.0), Timeout, httpx.ReadTimeout),
    (Behaviour(kind="cut", keep_alive=True), Unavailable, httpx.RemoteProtocolError),
])
def test_stream_faults_are_httpx_errors_then_typed(behaviour: Behaviour, error: Any,
                                                   cls: type[Exception]) -> None:
    with ScriptServer([behaviour]) as server:
        async def raw(client: httpx.AsyncClient) -> None:
            with pytest.raises(cls):
                async with client.stream("POST", server.url + "/x", json={}) as response:
                    async for _ in response.aiter_lines():
                        pass
            assert pool.open_connections == 0  # the broken one was closed

        async def typed(client: httpx.AsyncClient) -> None:
            with pytest.raises(error):
                await collect(provider(server, client), ask())

        client, pool = pooled()
        client.timeout = httpx.Timeout(0.3)
        run(client, raw)
        run(make_client(timeout=httpx.Timeout(0.3)), typed)


def test_nothing_listening_is_a_connect_error_then_unavailable() -> None:
    async def refused(client: httpx.AsyncClient) -> None:
        with pytest.raises(httpx.ConnectError) as caught:
            await client.get("http://127.0.0.1:9/")
        assert isinstance(transport_error(caught.value, "x"), Unavailable)
        assert "cannot connect" in str(transport_error(caught.value, "x"))
        assert pool.open_connections == 0  # the failed connect gave its slot back
        with pytest.raises(httpx.ConnectError):  # and its slot is free for the next one
            await client.get("http://127.0.0.1:9/")
    client, pool = pooled(limits(1, 1), pool_timeout=0.5)
    run(client, refused)


def test_a_connect_timeout_is_typed_as_a_timeout() -> None:
    import socket

    listener = socket.socket()  # listens, never accepts: its queue is soon full,
    listener.bind(("127.0.0.1", 0))  # and then the kernel drops new connection attempts
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    try:
        async def stuck(client: httpx.AsyncClient) -> None:
            with pytest.raises(httpx.TimeoutException) as caught:
                await client.get(f"http://127.0.0.1:{port}/")
            assert isinstance(transport_error(caught.value, "x"), Timeout)
        run(make_client(timeout=httpx.Timeout(5.0, connect=0.3)), stuck)
    finally:
        for s in [*fillers, listener]:
            s.close()


def test_error_mapping_picks_the_most_specific_httpx_class() -> None:
    from podium.providers.pool import _mapped

    request = httpx.Request("GET", "http://127.0.0.1/")
    for raised, expected in [(httpcore.ReadTimeout("r"), httpx.ReadTimeout),
                             (httpcore.ConnectError("c"), httpx.ConnectError),
                             (httpcore.RemoteProtocolError("p"), httpx.RemoteProtocolError),
                             (httpcore.PoolTimeout("p"), httpx.PoolTimeout)]:
        with pytest.raises(expected) as caught, _mapped(request):
            raise raised
        assert type(caught.value) is expected and caught.value.request is request


# --- the asyncio network backend: flow control both ways ---------------------------------


def test_big_bodies_both_ways_arrive_whole() -> None:
    body = bytes(range(256)) * (3 * 4096)  # 3 MiB: over the 1 MiB where reading pauses

    class Big(ScriptServer):
        def respond(self, h: Any, b: Behaviour, sent: dict[str, Any]) -> None:
            h.send_response(200)
            h.send_header("content-length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)

    with Big([OK]) as server:
        async def both_ways(client: httpx.AsyncClient) -> tuple[int, bytes]:
            upload = {"blob": "x" * (4 << 20)}  # 4 MiB: the send buffer fills, and waits
            async with client.stream("POST", server.url + "/x", json=upload) as response:
                await asyncio.sleep(0.3)  # let the body pile up unread
                received = b"".join([part async for part in response.aiter_bytes()])
            return len(server.requests[0]["body"]["blob"]), received
        sent, received = run(make_client(), both_ways)
    assert sent == 4 << 20 and received == body


# --- HTTPS -----------------------------------------------------------------------------


def test_https_reuses_its_connection_and_checks_the_certificate(tmp_path: Path) -> None:
    with tls_server([STREAM], tmp_path) as (server, cert):
        async def calls(client: httpx.AsyncClient) -> list[str]:
            p = provider(server, client)
            return [(await collect(p, ask())).text for _ in range(2)]
        trusted = ssl.create_default_context(cafile=cert)
        assert run(pooled(verify=trusted)[0], calls) == ["pooled answer"] * 2
        assert server.connections == 1

        async def untrusted(client: httpx.AsyncClient) -> None:
            with pytest.raises(Unavailable, match="cannot connect"):
                await collect(provider(server, client), ask())
        run(pooled(trust_env=False)[0], untrusted)


def test_behind_a_proxy_from_the_environment_the_client_still_uses_it(
        monkeypatch: pytest.MonkeyPatch) -> None:
    with ScriptServer([STREAM]) as proxy:  # a forward proxy sees absolute-form targets
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        monkeypatch.setenv("NO_PROXY", "")

        async def call(client: httpx.AsyncClient) -> str:
            p = OpenAIProvider("remote", model="m", base_url="http://api.example/v1",
                               client=client, key="sk-test")
            return (await collect(p, ask())).text
        assert run(make_client(), call) == "pooled answer"
    assert proxy.requests[0]["path"] == "http://api.example/v1/chat/completions"


def test_closing_the_client_closes_its_connections() -> None:
    with ScriptServer([Behaviour(kind="status", status=200, delay=0.05)]) as server:
        async def use(client: httpx.AsyncClient) -> int:
            await asyncio.gather(*(post(client, server) for _ in range(3)))
            return pool.idle_connections
        client, pool = pooled()
        assert run(client, use) == 3  # run() closes the client
    assert pool.open_connections == 0 and pool.idle_connections == 0
