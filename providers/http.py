"""What the remote providers share: one `httpx.AsyncClient`, and the mapping of HTTP
and transport failures onto core's error tree (the event-stream reader is in
`providers.sse`).

Errors are translated where they happen, to the most specific class, and never
carry a key: messages name the model and the server, not the request headers, and
quote what a server said only as a short excerpt with the key masked
(`providers.excerpt`).
"""

from __future__ import annotations

import asyncio
import re
from email.utils import parsedate_to_datetime
from typing import Literal

import httpx

from podium.core.errors import (
    AuthError,
    ProviderError,
    RateLimited,
    Rejected,
    Timeout,
    Unavailable,
)
from podium.core.retry import MAX_WAIT_S
from podium.providers.excerpt import error_text, mask
from podium.providers.pool import PoolTransport

# Connections come from providers.pool (see why there). Measured in
# bench/remote_burst.py: with no idle-connection herd to fear, keeping every connection
# a burst opened spares the next burst its connects (and, remote, its TLS handshakes);
# the timer closes them after 5 s idle.
DEFAULT_LIMITS = httpx.Limits(max_connections=1024, max_keepalive_connections=1024,
                              keepalive_expiry=5.0)
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=60.0, write=10.0, pool=30.0)
PROXIED_KEEPALIVE = 20  # idle connections kept behind a proxy, on httpx's own pool
ERROR_BODY_BYTES = 64 << 10  # of an error answer's body, read at most
_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/?#@]*@", re.I)
_HIDDEN = r"\1***@"


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
        self._url_problem = url_problem(self.base_url)
        # How errors name this model: its server without credentials, which a
        # base_url may carry (https://user:password@host/v1, or a key in the path).
        self.where = f"{name} ({mask(_USERINFO.sub(_HIDDEN, self.base_url), key)})"

    # The server's model list, relative to `base_url`: a cheap GET that needs the key.
    models_path = "/models"

    def __repr__(self) -> str:  # never show the key
        return f"{type(self).__name__}({self.where!r}, model={self.model!r})"

    def headers(self) -> dict[str, str]:
        """The headers every request carries (the key among them)."""
        return {"Authorization": f"Bearer {self._key}"} if self._key else {}

    def check_url(self, where: str) -> None:
        """Refuse, before any connection, a base_url that cannot be a server's."""
        if self._url_problem:
            raise Rejected(f"{where}: base_url is not a server's URL: {self._url_problem}",
                           "fix base_url in config.toml, e.g. https://api.openai.com/v1")

    async def ping(self, timeout: float = 3.0) -> str:
        """Whether the server answers, and takes the key: 'reachable', 'key refused',
        'unreachable (...)' or 'server error N'. Costs no tokens. Only the status is
        read, within `timeout` in all (httpx's timeouts are per read: a server that
        sends a byte at a time would hold it for ever)."""
        if self._url_problem:
            return "unreachable (bad base_url)"
        try:
            async with asyncio.timeout(timeout):
                async with self._client.stream("GET", f"{self.base_url}{self.models_path}",
                                               headers=self.headers(),
                                               timeout=timeout) as response:
                    code = response.status_code
        except (TimeoutError, httpx.TimeoutException):
            return f"unreachable (no answer in {timeout:g} s)"
        except httpx.ConnectError:
            return "unreachable (cannot connect)"
        except (httpx.HTTPError, OSError, ValueError, OverflowError) as e:
            return f"unreachable ({type(e).__name__})"
        if code in (401, 403):
            return "key refused"
        return "reachable" if code < 500 else f"server error {code}"


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
    """A non-2xx answer as the most specific provider error, quoting a short excerpt
    of what the server said, with the request's key masked in it (`secret`): some
    servers echo it back."""
    code = response.status_code
    said = error_text(body, secret)
    detail = f": {said}" if said else ""
    if code == 429:
        wait = retry_after(response)
        if wait is None:
            return RateLimited(f"{where}: rate limited (HTTP 429){detail}",
                               "wait, lower the step's concurrency, or add a fallback model")
        hint = (f"Podium waits at most {MAX_WAIT_S:g} s for a server, so it went on without "
                "it: try later, or add a fallback model") if wait > MAX_WAIT_S else \
            "wait, lower the step's concurrency, or add a fallback model"
        return RateLimited(f"{where}: rate limited (HTTP 429); the server asked to wait "
                           f"{duration(wait)}{detail}", hint, retry_after=wait)
    if code in (401, 403):
        return AuthError(f"{where}: the server refused the key (HTTP {code}){detail}",
                         "check the key's environment variable or the keys file")
    if code in (408, 504):
        return Timeout(f"{where}: the server timed out (HTTP {code})",
                       "retried automatically; add a fallback model to go on without it")
    if code >= 500:
        return Unavailable(f"{where}: server error (HTTP {code}){detail}",
                           "retried automatically; add a fallback model to go on without it")
    return Rejected(f"{where}: request rejected (HTTP {code}){detail}",
                    "check the model name and options in config.toml")


async def read_error(response: httpx.Response, limit: int = ERROR_BODY_BYTES) -> str:
    """The head of an error answer's body: what a person needs of it, and no more
    (a server may send megabytes)."""
    head = bytearray()
    async for part in response.aiter_bytes():
        head += part
        if len(head) >= limit:
            break
    return bytes(head[:limit]).decode(errors="replace")


def duration(seconds: float) -> str:
    """`3 s`, `2 min`, `1 h`, `3 days`: a wait as a person says it. (A Retry-After
    date an hour ahead is 3599.x s away by the time it is read: that is `1 h`.)"""
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size * (1.99 if unit == "days" else 0.99):
            return f"{seconds / size:.1f}".removesuffix(".0") + f" {unit}"
    return f"{seconds:.1f}".removesuffix(".0") + " s"


def url_problem(base_url: str) -> str | None:
    """What is wrong with `base_url` as a server's address, or None: it needs
    http(s), a host, and a port that exists."""
    try:
        url = httpx.URL(base_url)
    except httpx.InvalidURL as e:
        return str(e)
    if url.scheme not in ("http", "https"):
        return "it does not start with http:// or https://"
    if not url.host:
        return "it names no host"
    if url.port is not None and not 0 < url.port < 65536:
        return f"port {url.port} does not exist (ports go up to 65535)"
    return None


def transport_error(error: httpx.HTTPError, where: str) -> ProviderError:
    """A transport failure (no usable HTTP answer) as a provider error."""
    if isinstance(error, httpx.TimeoutException):
        return Timeout(f"{where}: no answer in time ({type(error).__name__})",
                       "raise the timeout, or add a fallback model")
    if isinstance(error, httpx.ConnectError):
        return Unavailable(f"{where}: cannot connect", "is the server running and reachable?")
    if isinstance(error, httpx.UnsupportedProtocol):
        return Rejected(f"{where}: base_url is not an http(s) URL",
                        "fix base_url in config.toml, e.g. https://api.openai.com/v1")
    return Unavailable(f"{where}: connection failed ({type(error).__name__})",
                       "retried automatically")
