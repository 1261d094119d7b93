"""What a server said, made safe to keep: a short, cleaned excerpt with the key masked.

A server's error text reaches the database, the terminal and `show --json`, and some
servers echo the request's key in it: whole, percent-encoded, HTML- or JSON-escaped,
spaced out, or in pieces. The key is masked in all of these on the whole text first,
and only then is the text cleaned and cut, so a cut can never leave part of a key
that the mask would have caught.
"""

from __future__ import annotations

import html
import json
import re
from urllib.parse import unquote

EXCERPT_CHARS = 160  # what is kept of a server's text: enough to tell what went wrong
SCAN_CHARS = 16_384  # what is looked at, at most: the head of an error page says it
FRAGMENT = 6  # a run of this many characters of the key is taken for a piece of it
MASK = "***"

# Credentials that are not this provider's key, by their shape: a bearer token or an
# api-key header echoed back, a key of OpenAI's or Anthropic's form.
_TOKEN = r"[\w.~+/=-]{8,}"
_LABELLED = re.compile(r"(?i)\b(bearer\s+|(?:x-api-key|api[-_]?key|authorization)\s*[:=]\s*"
                       r"(?:bearer\s+)?)" + _TOKEN)
_KEYLIKE = re.compile(r"\bsk-[\w-]{8,}")
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]{0,2000}>", re.S | re.I)
_SPACE = re.compile(r"\s+")
_MASKS = re.compile(r"\*\*\*(?:\W{0,3}\*\*\*)+")  # a key masked in pieces: one mask


def excerpt(text: str, secret: str | None, limit: int = EXCERPT_CHARS) -> str:
    """`text` (a server's) as a one-line excerpt of at most `limit` characters, with
    `secret` masked wherever it can be recognised, and markup dropped."""
    text = mask(text[:SCAN_CHARS], secret)
    # Undo the escapes a server may have put the key through, so it reads plainly,
    # and mask again.
    text = mask(html.unescape(unquote(text.replace("\\/", "/"))), secret)
    text = _TAG.sub(" ", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    text = _MASKS.sub(MASK, _SPACE.sub(" ", text)).strip()
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def mask(text: str, secret: str | None) -> str:
    """`text` with `secret` masked: whole, spaced out, or any piece of it at least
    `FRAGMENT` characters long; and anything shaped like a credential."""
    if secret:
        if len(secret) >= FRAGMENT:
            # The key's characters with any whitespace between them: a key wrapped or
            # spaced out by the server.
            spaced = r"\s*".join(re.escape(c) for c in secret)
            text = re.sub(spaced, MASK, text)
            text = _mask_fragments(text, secret)
        else:
            text = text.replace(secret, MASK)
    text = _LABELLED.sub(lambda m: m.group(1) + MASK, text)
    return _KEYLIKE.sub(MASK, text)


def _mask_fragments(text: str, secret: str) -> str:
    """Mask every stretch of `text` made of the key's `FRAGMENT`-grams: a prefix, a
    suffix, or the pieces of a key the server split."""
    grams = {secret[i:i + FRAGMENT] for i in range(len(secret) - FRAGMENT + 1)}
    hit = bytearray(len(text))
    for i in range(len(text) - FRAGMENT + 1):
        if text[i:i + FRAGMENT] in grams:
            hit[i:i + FRAGMENT] = b"\1" * FRAGMENT
    if not any(hit):
        return text
    out: list[str] = []
    i = 0
    while i < len(text):
        if hit[i]:
            while i < len(text) and hit[i]:
                i += 1
            out.append(MASK)
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def error_text(body: str, secret: str | None, limit: int = EXCERPT_CHARS) -> str:
    """What an error body says, as an excerpt: the message of a JSON error
    (`{"error": {"message": ...}}`, `{"error": "..."}`, `{"message": ...}`,
    `{"detail": ...}`), else the text of the body itself (a page, plain text)."""
    message: object = None
    try:
        data = json.loads(body[:SCAN_CHARS * 4])
    except (json.JSONDecodeError, TypeError, RecursionError):
        data = None
    if isinstance(data, dict):
        message = data.get("error") or data.get("message") or data.get("detail")
        if isinstance(message, dict):
            message = message.get("message") or message.get("type")
    if message is None or isinstance(message, (dict, list)):
        message = body if data is None else ""
    return excerpt(str(message), secret, limit)
