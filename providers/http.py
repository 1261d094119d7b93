"""What the remote providers share: one `httpx.AsyncClient`, the mapping of HTTP and
transport failures onto core's error tree, and a server-sent-events reader.

Errors are translated where they happen, to the most specific class, and never
carry a key: messages name the model and the server, not the request headers.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from email.utils import parsedate_to_datetime
from typing import Any, Literal

import httpx

from podium.core.errors import (
    AuthError,
    BadResponse,
    ProviderError,
    RateLimited,
    Rejected,
    Timeout,
    Unavailable,
)
from podium.providers.pool import PoolTransport

# Connections come from providers.pool (see why there). Measured in
# bench/remote_burst.py: with no idle-connection herd to fear, keeping every connection
# a burst opened spares the next burst its connects (and, remote, its TLS handshakes);
# the timer closes them after 5 s idle.
DEFAULT_LIMITS = httpx.Limits(max_connections=1024, max_keepalive_connections=1024,
                              keepalive_expiry=5.0)
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=30.0)
PROXIED_KEEPALIVE = 20  # idle connections kept behind a proxy, on httpx's own pool


class RemoteProvider:
    """What every HTTP provider holds: the shared client, its key (never shown), the
    base URL and a bound on calls in flight. Subclasses add `body` and `stream`."""

    supports_schema = True
    supports_tools = True
    needs_key = True

    def __init__(self, name: str, *, model: str, base_url: str, client: httpx.AsyncClient,
                 key: str | None = None, key_env_var: str | None = None,
                 tier: Literal["local", "remote"] = "remote", concurrency: int = 128) -> None:
        self.name = name
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.tier = tier
        self.key_env_var = key_env_var
        self._client = client
        self._key = key
        self._gate = asyncio.Semaphore(concurrency)

    # The server's model list, relative to `base_url`: a cheap GET that needs the key.
    models_path = "/models"

    def __repr__(self) -> str:  # never show the key
        return (f"{type(self).__name__}({self.name!r}, model={self.model!r}, "
                f"base_url={self.base_url!r})")

    def headers(self) -> dict[str, str]:
        """The headers every request carries (the key among them)."""
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    async def ping(self, timeout: float = 3.0) -> str:
        """Whether the server answers, and takes the key: 'reachable', 'key refused',
        'unreachable (...)' or 'server error N'. Costs no tokens."""
        try:
            response = await self._client.get(f"{self.base_url}{self.models_path}",
                                               headers=self.headers(), timeout=timeout)
        except (httpx.HTTPError, OSError, ValueError, OverflowError) as e:
            return f"unreachable ({type(e).__name__})"  # e.g. a port past 65535
        if response.status_code in (401, 403):
            return "key refused"
        return "reachable" if response.status_code < 500 else \
            f"server error {response.status_code}"


def make_client(*, limits: httpx.Limits = DEFAULT_LIMITS,
                timeout: httpx.Timeout = DEFAULT_TIMEOUT) -> httpx.AsyncClient:
    """The one client every remote provider of a process shares, on Podium's pool.

    Behind a proxy named in the environment (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY), which
    Podium's pool does not speak to, it is httpx's own transport, as before that pool,
    keeping at most 20 connections idle (more make httpcore's idle-connection herd)."""
    if _environment_proxies():
        keep = min(limits.max_keepalive_connections or PROXIED_KEEPALIVE, PROXIED_KEEPALIVE)
        return httpx.AsyncClient(timeout=timeout, follow_redirects=False, limits=httpx.Limits(
            max_connections=limits.max_connections, max_keepalive_connections=keep,
            keepalive_expiry=limits.keepalive_expiry))
    return httpx.AsyncClient(timeout=timeout, follow_redirects=False,
                             transport=PoolTransport(limits))


def _environment_proxies() -> bool:
    # The variables httpx itself reads (through the same urllib function) when it is
    # given no transport; a client given one ignores them.
    import urllib.request

    return any(scheme in urllib.request.getproxies() for scheme in ("http", "https", "all"))


def retry_after(response: httpx.Response) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date)."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        import time

        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def status_error(response: httpx.Response, where: str, body: str,
                 secret: str | None = None) -> ProviderError:
    """A non-2xx answer as the most specific provider error. A server that echoes the
    request's key back in its error text gets it masked (`secret`)."""
    code = response.status_code
    detail = _error_detail(body)
    if secret:
        detail = detail.replace(secret, "***")
    if code == 429:
        wait = retry_after(response)
        return RateLimited(f"{where}: rate limited (HTTP 429){detail}",
                           "wait, lower the step's concurrency, or add a fallback model",
                           retry_after=wait)
    if code in (401, 403):
        return AuthError(f"{where}: the server refused the key (HTTP {code}){detail}",
                         "check the key's environment variable or the keys file")
    if code in (408, 504):
        return Timeout(f"{where}: the server timed out (HTTP {code})")
    if code >= 500:
        return Unavailable(f"{where}: server error (HTTP {code}){detail}",
                           "retried automatically; add a fallback model to go on without it")
    return Rejected(f"{where}: request rejected (HTTP {code}){detail}",
                    "check the model name and options in config.toml")


def _error_detail(body: str) -> str:
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return ""
    message = data.get("error") if isinstance(data, dict) else None
    if isinstance(message, dict):
        message = message.get("message")
    return f": {str(message)[:200]}" if message else ""


def transport_error(error: httpx.HTTPError, where: str) -> ProviderError:
    """A transport failure (no usable HTTP answer) as a provider error."""
    if isinstance(error, httpx.TimeoutException):
        return Timeout(f"{where}: no answer in time ({type(error).__name__})",
                       "raise the timeout, or add a fallback model")
    if isinstance(error, httpx.ConnectError):
        return Unavailable(f"{where}: cannot connect", "is the server running and reachable?")
    return Unavailable(f"{where}: connection failed ({type(error).__name__})",
                       "retried automatically")


async def sse_events(response: httpx.Response, where: str, *,
                     done_marker: bool = True) -> AsyncIterator[tuple[str, Any]]:
    """(event name, parsed JSON data) for each server-sent event. With `done_marker`,
    the stream must end with `data: [DONE]`, so a cut connection is not a short answer."""
    event = "message"
    data: list[str] = []
    lines = response.aiter_lines()
    async for line in lines:
        if line.startswith(":"):
            continue
        if not line:
            if data:
                payload = "\n".join(data)
                data = []
                if payload.strip() == "[DONE]":
                    await _drain(lines)
                    return
                try:
                    yield event, json.loads(payload)
                except json.JSONDecodeError:
                    raise BadResponse(f"{where}: malformed event in the stream: "
                                      f"{payload[:80]!r}") from None
            event = "message"
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
    if data:
        raise BadResponse(f"{where}: the stream ended in the middle of an event",
                          "the connection was probably cut; it is retried")
    if done_marker:
        raise BadResponse(f"{where}: the stream ended before [DONE]",
                          "the connection was probably cut; it is retried")


async def _drain(lines: AsyncIterator[str], patience: float = 1.0) -> None:
    """Read a finished stream to its end, so the connection goes back to the pool
    instead of being closed (measured: every call opened a new connection). A server
    that holds the stream open gets `patience` seconds, then the socket is dropped."""
    import asyncio

    try:
        async with asyncio.timeout(patience):
            async for _ in lines:
                pass
    except (TimeoutError, httpx.HTTPError):
        pass
