"""A document's text, line by line, with the line of the file each piece came from.

Text and Markdown are read as they are. HTML goes through the standard library's
`html.parser`: tags are dropped, block elements break lines, scripts and styles are
skipped, and each line of text keeps the source line it started on, so a citation
points into the file a person can open.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES

# Elements whose start or end begins a new line of text.
_BLOCKS = frozenset({
    "address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "td", "th", "title", "tr",
    "ul",
})
_SKIPPED = frozenset({"script", "style", "noscript", "template", "svg"})
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class Document:
    """A document's title and its text as (source line, text) pairs."""

    title: str
    lines: list[tuple[int, str]]


def read_document(path: Path, data: bytes) -> Document:
    """The text of `data`, read from `path` (its suffix says how to read it)."""
    text = data.decode("utf-8", errors="replace")
    if path.suffix.lower() in HTML_SUFFIXES:
        return html_document(text, fallback_title=path.stem)
    lines = list(enumerate(text.splitlines(), start=1))
    return Document(title=_markdown_title(lines) or path.stem, lines=lines)


def _markdown_title(lines: list[tuple[int, str]]) -> str | None:
    for _, line in lines[:50]:
        if line.startswith("# "):
            return line[2:].strip()
    return None


def html_document(text: str, fallback_title: str = "") -> Document:
    """The visible text of an HTML page and its title (`<title>`, else the first `<h1>`)."""
    parser = _TextParser()
    parser.feed(text)
    parser.close()
    parser.flush()
    title = parser.title.strip() or parser.h1.strip() or fallback_title
    return Document(title=_SPACES.sub(" ", title), lines=parser.lines)


class _TextParser(HTMLParser):
    """Collects visible text as lines, each with the source line it started on."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self.title = ""
        self.h1 = ""
        self._parts: list[str] = []
        self._line = 0
        self._skipping: list[str] = []  # open elements whose text is not shown
        self._in: str | None = None  # "title" or "h1" while inside one

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _SKIPPED:
            self._skipping.append(tag)
        if tag in _BLOCKS:
            self.flush()
        if tag in ("title", "h1") and not (tag == "h1" and self.h1):
            self._in = tag

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in _BLOCKS:
            self.flush()

    def handle_endtag(self, tag: str) -> None:
        if self._skipping and self._skipping[-1] == tag:
            self._skipping.pop()
        if tag in _BLOCKS:
            self.flush()
        if tag == self._in:
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._skipping:
            return
        if self._in == "title":
            self.title += data
            return  # the title is metadata, not body text
        if self._in == "h1":
            self.h1 += data
        if not self._parts and data.strip():
            # The line this text starts on: data that begins with newlines starts later.
            self._line = self.getpos()[0] + data[:len(data) - len(data.lstrip())].count("\n")
        self._parts.append(data)

    def flush(self) -> None:
        """End the current line of text, if it has any."""
        text = _SPACES.sub(" ", "".join(self._parts)).strip()
        if text:
            self.lines.append((self._line, text))
        self._parts = []
