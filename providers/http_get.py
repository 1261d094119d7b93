"""`http_get`: fetch a web page or an API's answer, from hosts a recipe allow-lists.

Off unless hosts are listed. Only http and https; only the listed hosts (an entry
`*.example.com` allows its subdomains, not `example.com` itself); and, unless
`allow_private` is set, never an address on this machine or its private networks
(loopback, RFC 1918, link-local, unique-local, multicast, reserved): a host name is
resolved and every address it has is checked before the request. Redirects are
followed by hand, at most `MAX_REDIRECTS`, each one checked as the first request
was, so an allowed host cannot send the tool elsewhere. The whole fetch has
`timeout_s`; the body is read up to `max_bytes`, uncompressed (`Accept-Encoding:
identity`, so a small gzip cannot become a huge body). Text comes back with its
status and content type, HTML as its visible text; other types are refused.

A name that resolves to a public address when checked could resolve elsewhere when
httpx connects a moment later (DNS rebinding): the check is a guard against mistakes
and casual abuse, not against a hostile DNS server.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from podium.core.errors import ConfigError, ToolError
from podium.core.retrieval.documents import html_document
from podium.core.tools.base import ToolDef

MAX_BYTES = 1_000_000
MAX_REDIRECTS = 5
TEXT_TYPES = ("text/", "application/json", "application/xml", "application/xhtml+xml",
              "application/javascript", "application/x-ndjson")


def http_get_tool(hosts: Sequence[str], *, max_bytes: int = MAX_BYTES,
                  timeout_s: float = 10.0, allow_private: bool = False,
                  name: str = "http_get") -> ToolDef:
    """A tool that GETs a URL on one of `hosts` (see the module docstring for the
    limits). `allow_private` lets it reach loopback and private addresses (tests, a
    local service); it is off by default. `ConfigError` when no host is listed."""
    allowed = [h.strip().lower().rstrip(".") for h in hosts if h.strip()]
    if not allowed:
        raise ConfigError("http_get is off: no host is allowed",
                          "list the hosts it may fetch from, e.g. hosts = "
                          "[\"docs.python.org\"]")

    async def run(arguments: dict[str, Any]) -> str:
        return await fetch(str(arguments["url"]), allowed, max_bytes=max_bytes,
                           timeout_s=timeout_s, allow_private=allow_private)

    return ToolDef(
        name=name,
        description=("Fetch a web page or API answer by URL (GET) and return its text. "
                     f"Allowed hosts: {', '.join(allowed)}."),
        parameters={"type": "object",
                    "properties": {"url": {"type": "string", "minLength": 1,
                                           "description": "An http(s) URL on an "
                                           "allowed host."}},
                    "required": ["url"], "additionalProperties": False},
        run=run, timeout_s=timeout_s + 5,  # its own limit answers first, more clearly
    )


def host_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether `host` is one of `allowed` (`*.x` allows any subdomain of x)."""
    host = host.lower().rstrip(".")
    return any(host == a or (a.startswith("*.") and host.endswith(a[1:])) for a in allowed)


async def check_url(url: str, allowed: Sequence[str], allow_private: bool) -> None:
    """A `ToolError` unless `url` is http(s), on an allowed host, at a public address
    (or `allow_private`)."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as e:
        raise ToolError(f"not a URL: {url!r} ({e})") from None
    if parts.scheme not in ("http", "https"):
        raise ToolError(f"only http and https URLs can be fetched, not "
                        f"'{parts.scheme or url}'")
    host = parts.hostname or ""
    if not host:
        raise ToolError(f"the URL {url!r} names no host")
    if not host_allowed(host, allowed):
        raise ToolError(f"host '{host}' is not allowed", f"allowed: {', '.join(allowed)}")
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port or (443 if parts.scheme == "https" else 80), type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        raise ToolError(f"cannot find host '{host}': {e.strerror}") from None
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%")[0])
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
            address = address.ipv4_mapped
        if not address.is_global or address.is_multicast:
            raise ToolError(f"host '{host}' is at {address}, a private or local address, "
                            "which http_get does not fetch from")


async def fetch(url: str, allowed: Sequence[str], *, max_bytes: int = MAX_BYTES,
                timeout_s: float = 10.0, allow_private: bool = False) -> str:
    """GET `url` under the rules of the module docstring; the text an agent reads."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _fetch(url, allowed, max_bytes, timeout_s, allow_private)
    except TimeoutError:
        raise ToolError(f"no complete answer from {url} within {timeout_s:g} s") from None


async def _fetch(url: str, allowed: Sequence[str], max_bytes: int, timeout_s: float,
                 allow_private: bool) -> str:
    headers = {"Accept": "text/html, text/plain, application/json, */*;q=0.5",
               "Accept-Encoding": "identity", "User-Agent": "podium-http-get"}
    async with httpx.AsyncClient(follow_redirects=False, timeout=timeout_s,
                                 headers=headers, trust_env=False) as client:
        came_from: str | None = None
        for _ in range(MAX_REDIRECTS + 1):
            try:
                await check_url(url, allowed, allow_private)
            except ToolError as e:
                if came_from is None:
                    raise
                raise ToolError(f"{came_from} redirects to {url}, which is refused: "
                                f"{e.message}", e.hint) from None
            try:
                async with client.stream("GET", url) as response:
                    location = response.headers.get("location")
                    if response.is_redirect and location:
                        came_from, url = url, urljoin(url, location)
                        continue
                    encoding = response.headers.get("content-encoding", "identity")
                    if encoding.lower() not in ("identity", ""):
                        raise ToolError(f"{url} sent a {encoding}-compressed body, which "
                                        "http_get does not unpack (its size is unknown)")
                    body, cut = await _read(response, max_bytes)
                    return _as_text(url, response, body, cut)
            except httpx.HTTPError as e:
                raise ToolError(f"fetching {url} failed: {type(e).__name__}: {e}") from None
    raise ToolError(f"{url}: more than {MAX_REDIRECTS} redirects")


async def _read(response: httpx.Response, max_bytes: int) -> tuple[bytes, bool]:
    """Up to `max_bytes` of the body, and whether there was more."""
    body = bytearray()
    async for chunk in response.aiter_raw():
        body += chunk
        if len(body) > max_bytes:
            return bytes(body[:max_bytes]), True
    return bytes(body), False


def _as_text(url: str, response: httpx.Response, body: bytes, cut: bool) -> str:
    kind = response.headers.get("content-type", "")
    media = kind.split(";")[0].strip().lower()
    if media and not (media.startswith(TEXT_TYPES) or media.endswith(("+json", "+xml"))):
        raise ToolError(f"{url} is {media} ({len(body):,}{'+' if cut else ''} bytes), not "
                        "text", "http_get reads text, HTML and JSON")
    try:
        text = body.decode(response.charset_encoding or "utf-8", errors="replace")
    except LookupError:  # a charset Python does not know
        text = body.decode("utf-8", errors="replace")
    if media in ("text/html", "application/xhtml+xml"):
        page = html_document(text)
        text = "\n".join(line for _, line in page.lines)
        if page.title:
            text = f"# {page.title}\n{text}"
    if response.status_code >= 400:
        raise ToolError(f"{url} answered HTTP {response.status_code}: "
                        f"{' '.join(text.split())[:200]}")
    head = f"HTTP {response.status_code} · {kind or 'no content type'} · {url}"
    tail = f"\n[… cut at {len(body):,} bytes]" if cut else ""
    return f"{head}\n\n{text}{tail}"
