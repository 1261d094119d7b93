"""Cutting a document into chunks a search returns and a prompt can quote.

Paragraphs (runs of lines between blank lines) are gathered until a chunk reaches
`TARGET_CHARS`; a paragraph longer than `MAX_CHARS` is cut at line boundaries, and a
single line longer than that at `MAX_CHARS`. Each chunk keeps the first and last
source line it covers.
"""

from __future__ import annotations

from podium.core.store.corpora import ChunkRow

TARGET_CHARS = 800
MAX_CHARS = 1_600

Lines = list[tuple[int, str]]


def chunk_lines(lines: Lines, target: int = TARGET_CHARS,
                limit: int = MAX_CHARS) -> list[ChunkRow]:
    """The chunks of a document given as (source line, text) pairs."""
    chunks: list[ChunkRow] = []
    current: Lines = []
    size = 0
    for paragraph in _paragraphs(lines):
        for n, piece in enumerate(_pieces(paragraph, limit)):
            piece_size = sum(len(t) + 1 for _, t in piece)
            if current and size + piece_size > limit:
                chunks.append(_chunk(current))
                current, size = [], 0
            if current and n == 0:  # a new paragraph: keep the blank line between
                current.append((piece[0][0], ""))
                size += 1
            current.extend(piece)
            size += piece_size
            if size >= target:
                chunks.append(_chunk(current))
                current, size = [], 0
    if current:
        chunks.append(_chunk(current))
    return chunks


def _paragraphs(lines: Lines) -> list[Lines]:
    out: list[Lines] = []
    current: Lines = []
    for number, text in lines:
        if text.strip():
            current.append((number, text.rstrip()))
        elif current:
            out.append(current)
            current = []
    if current:
        out.append(current)
    return out


def _pieces(paragraph: Lines, limit: int) -> list[Lines]:
    """A paragraph as pieces of at most `limit` characters (one line may be cut)."""
    pieces: list[Lines] = []
    current: Lines = []
    size = 0
    for number, text in paragraph:
        for start in range(0, len(text), limit):
            part = text[start:start + limit]
            if current and size + len(part) + 1 > limit:
                pieces.append(current)
                current, size = [], 0
            current.append((number, part))
            size += len(part) + 1
    if current:
        pieces.append(current)
    return pieces


def _chunk(lines: Lines) -> ChunkRow:
    return ChunkRow(line=lines[0][0], end_line=lines[-1][0],
                    text="\n".join(t for _, t in lines))
