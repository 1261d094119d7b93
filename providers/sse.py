"""Server-sent events, read within bounds.

A model's stream is many small events. What is not (a web page at a wrong base_url,
a JSON answer from a server that does not stream, a line of fifty megabytes) is
refused as soon as it shows, with a message that says what came instead, before it
is read to its end: memory and time stay bounded by the limits below, whatever the
server sends.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx

from podium.core.errors import BadResponse
from podium.providers.excerpt import error_text, excerpt

# One event holds a token or two, or a tool call's arguments: a megabyte is far past
# any, and a whole answer's events far past what max_tokens lets a model write.
MAX_EVENT_CHARS = 1 << 20
MAX_STREAM_BYTES = 64 << 20
DRAIN_PATIENCE_S = 1.0

_BREAK = re.compile(r"\r\n|\r|\n")  # SSE ends a line with any of the three
_FIELDS = ("data", "event", "id", "retry")
CUT_HINT = "the connection was probably cut; it is retried"
ODD_HINT = "retried; if it lasts, the server does not speak the API config.toml says it does"


async def sse_events(response: httpx.Response, where: str, *, done_marker: bool = True,
                     secret: str | None = None) -> AsyncIterator[tuple[str, Any]]:
    """(event name, parsed JSON data) for each server-sent event. With `done_marker`,
    the stream must end with `data: [DONE]`, so a cut connection is not a short answer.
    Server text quoted in an error has `secret` masked."""
    event = "message"
    data: list[str] = []
    size = 0
    fields = 0  # lines an event stream has: fields and comments
    async with contextlib.aclosing(_lines(response, where, secret)) as lines:
        async for line in lines:
            if line.startswith(":"):
                fields += 1
                continue
            if not line:
                if data:
                    payload = "\n".join(data)
                    data, size = [], 0
                    if payload.strip() == "[DONE]":
                        await _drain(lines)
                        return
                    try:
                        yield event, json.loads(payload)
                    except (json.JSONDecodeError, RecursionError):
                        raise BadResponse(f"{where}: malformed event in the stream: "
                                          f"{excerpt(payload, secret, 80)!r}",
                                          ODD_HINT) from None
                event = "message"
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            fields += field in _FIELDS
            if field == "event":
                event = value
            elif field == "data":
                size += len(value)
                if size > MAX_EVENT_CHARS:
                    raise _huge(where, MAX_EVENT_CHARS)
                data.append(value)
    if not fields:
        kind = response.headers.get("content-type", "").split(";")[0].strip()
        raise BadResponse(f"{where}: the server answered {kind or 'a body'}, not an event "
                          "stream: is base_url right?",
                          "base_url is the API's root, e.g. https://api.openai.com/v1")
    if data:
        raise BadResponse(f"{where}: the stream ended in the middle of an event", CUT_HINT)
    if done_marker:
        raise BadResponse(f"{where}: the stream ended before [DONE]", CUT_HINT)


async def _lines(response: httpx.Response, where: str,
                 secret: str | None) -> AsyncGenerator[str, None]:
    """The body's lines, decoded as UTF-8 (as SSE always is). Refuses, before reading
    on, a body that is HTML or JSON, a line past MAX_EVENT_CHARS, or a stream past
    MAX_STREAM_BYTES. Each piece is split once, as it comes (a line that arrives a
    byte at a time costs no more than one that arrives whole)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    partial: list[str] = []  # the line so far, in the pieces it came in
    size = 0
    total = 0
    looked = False  # at the start of the body, for what it is
    after_cr = False  # the last piece ended with "\r": a "\n" now is the same break
    async for raw in response.aiter_bytes():
        total += len(raw)
        if total > MAX_STREAM_BYTES:
            raise _huge(where, MAX_STREAM_BYTES, "the stream")
        text = decoder.decode(raw)
        if not looked and text.lstrip("\ufeff \t\r\n"):
            looked = True
            _refuse_a_document(response, text.lstrip("\ufeff \t\r\n"), where, secret)
        if after_cr and text.startswith("\n"):
            text = text[1:]
            after_cr = False
        if not text:
            continue
        after_cr = text.endswith("\r")
        *ended, rest = _BREAK.split(text)
        if ended:
            ended[0] = "".join(partial) + ended[0]
            partial, size = [], 0
            for line in ended:
                yield line
        if rest:
            partial.append(rest)
            size += len(rest)
            if size > MAX_EVENT_CHARS:
                raise _huge(where, MAX_EVENT_CHARS)
    last = "".join(partial) + decoder.decode(b"", final=True)
    if last:
        yield last


def _refuse_a_document(response: httpx.Response, head: str, where: str,
                       secret: str | None) -> None:
    """A body that begins as HTML or JSON (or says it is HTML) is a document, not a
    stream: say which, and what it said."""
    kind = response.headers.get("content-type", "").lower()
    if head.startswith("<") or "html" in kind:
        raise BadResponse(f"{where}: the server answered HTML, not an event stream: "
                          "is base_url right?",
                          "base_url is the API's root, e.g. https://api.openai.com/v1; "
                          f"the page says: {excerpt(head, secret, 80) or '(nothing)'}")
    if head.startswith(("{", "[")):
        said = error_text(head, secret, 120)
        raise BadResponse(f"{where}: the server answered JSON, not an event stream"
                          + (f": {said}" if said else ""),
                          "does the server stream (\"stream\": true)? is base_url right?")


def _huge(where: str, limit: int, what: str = "one event") -> BadResponse:
    return BadResponse(f"{where}: {what} passed {limit >> 20} MB: not a model's answer",
                       "is base_url right? lower max_tokens if the model writes this much")


async def _drain(lines: AsyncIterator[str], patience: float = DRAIN_PATIENCE_S) -> None:
    """Read a finished stream to its end, so the connection goes back to the pool
    instead of being closed (measured: every call opened a new connection). A server
    that holds the stream open gets `patience` seconds, then the socket is dropped."""
    try:
        async with asyncio.timeout(patience):
            async for _ in lines:
                pass
    except (TimeoutError, httpx.HTTPError, BadResponse):
        pass
