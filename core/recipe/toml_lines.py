"""Line numbers for TOML keys, which `tomllib` does not report.

A light scan of the source: table headers (`[steps.x]`), `key = value` lines
(dotted keys too) and keys of one-line inline tables, skipping multi-line strings.
Good enough to point a person at the right line; never used to read values.
"""

from __future__ import annotations

import re
from typing import Any

_HEADER = re.compile(r"^\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(r"^\s*((?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_\-]+)"
                  r"(?:\s*\.\s*(?:\"[^\"]*\"|'[^']*'|[A-Za-z0-9_\-]+))*)\s*=")
_INLINE_KEY = re.compile(r"[{,]\s*([A-Za-z0-9_\-]+)\s*=")


def _split_key(text: str) -> tuple[str, ...]:
    parts = re.findall(r"\"([^\"]*)\"|'([^']*)'|([A-Za-z0-9_\-]+)", text)
    return tuple(a or b or c for a, b, c in parts)


class KeyLines:
    """Maps key paths such as ("steps", "summarize", "prompt") to 1-based lines."""

    def __init__(self, source: str) -> None:
        self._lines: dict[tuple[str, ...], int] = {}
        table: tuple[str, ...] = ()
        in_string: str | None = None
        for number, line in enumerate(source.splitlines(), start=1):
            if in_string is not None:
                if line.count(in_string) % 2 == 1:
                    in_string = None
                continue
            header = _HEADER.match(line)
            if header:
                table = _split_key(header.group(1))
                self._lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if key:
                path = table + _split_key(key.group(1))
                self._lines.setdefault(path, number)
                rest = line[key.end():]
                for inner in _INLINE_KEY.finditer(rest):
                    self._lines.setdefault(path + (inner.group(1),), number)
                for quote in ('"""', "'''"):
                    if rest.count(quote) % 2 == 1:
                        in_string = quote
                        break

    def line_of(self, loc: tuple[Any, ...]) -> int:
        """The line of the longest known prefix of `loc`; line 1 (the top of the file)
        for what is missing at the top level."""
        path = tuple(str(p) for p in loc if not isinstance(p, int))
        while path:
            if path in self._lines:
                return self._lines[path]
            path = path[:-1]
        return 1
