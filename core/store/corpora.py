"""Retrieval corpora: named folders indexed into chunks, searched with SQLite FTS5.

They live in the main database (one file holds everything Podium knows, and a run's
`retrieve` step reads the same file it writes to). `core.retrieval` decides what a
file's chunks are and which files changed; this part only stores and searches them.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class CorpusRecord:
    """A named corpus: the folder it indexes and how much it holds."""

    id: int
    name: str
    root: str
    files: int
    chunks: int
    updated_at: float | None


@dataclass(frozen=True)
class FileState:
    """What was known of a file when it was last indexed."""

    id: int
    mtime_ns: int
    size: int
    hash: str


@dataclass(frozen=True)
class ChunkRow:
    """One chunk to store: its place in the file (lines, 1-based) and its text."""

    line: int
    end_line: int
    text: str


@dataclass(frozen=True)
class IndexedFile:
    """A file (path relative to the corpus root) read anew, with its chunks."""

    path: str
    mtime_ns: int
    size: int
    hash: str
    title: str
    chunks: list[ChunkRow]


@dataclass(frozen=True)
class Hit:
    """One chunk found by a search. `score` is BM25 made positive: higher is better."""

    source: str
    line: int
    end_line: int
    title: str
    text: str
    snippet: str
    score: float


class Corpora:
    """The `Store`'s part for retrieval corpora."""

    conn: sqlite3.Connection
    path: Path

    def _write(self, run_id: str | None = None) -> AbstractContextManager[sqlite3.Connection]:
        raise NotImplementedError  # the Store's

    def corpus(self, name: str) -> CorpusRecord | None:
        """The corpus called `name`, or None."""
        row = self.conn.execute(
            "SELECT c.id, c.name, c.root, c.updated_at, COUNT(f.id), "
            "COALESCE(SUM(f.chunks), 0) FROM corpora c LEFT JOIN corpus_files f "
            "ON f.corpus_id = c.id WHERE c.name = ? GROUP BY c.id", (name,)).fetchone()
        if row is None:
            return None
        return CorpusRecord(id=row[0], name=row[1], root=row[2], updated_at=row[3],
                            files=row[4], chunks=row[5])

    def corpora(self) -> list[CorpusRecord]:
        """Every corpus, by name."""
        names = [r[0] for r in self.conn.execute("SELECT name FROM corpora ORDER BY name")]
        return [c for c in (self.corpus(n) for n in names) if c is not None]

    def ensure_corpus(self, name: str, root: str) -> int:
        """The id of corpus `name`, made if new; its folder is set to `root`."""
        now = time.time()
        with self._write() as c:
            c.execute("INSERT INTO corpora (name, root, created_at, updated_at) VALUES "
                      "(?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET root = excluded.root",
                      (name, root, now, None))
            corpus_id: int = c.execute("SELECT id FROM corpora WHERE name = ?",
                                       (name,)).fetchone()[0]
        return corpus_id

    def corpus_files(self, corpus_id: int) -> dict[str, FileState]:
        """Path (relative to the root) -> what was known of it when last indexed."""
        rows = self.conn.execute("SELECT path, id, mtime_ns, size, hash FROM corpus_files "
                                 "WHERE corpus_id = ?", (corpus_id,))
        return {r[0]: FileState(r[1], r[2], r[3], r[4]) for r in rows}

    def update_corpus(self, corpus_id: int, *, indexed: list[IndexedFile],
                      touched: list[tuple[int, int, int]], removed: list[int]) -> None:
        """One transaction: files read anew replace their old chunks, files whose bytes
        did not change get their new (id, mtime_ns, size), removed files go."""
        now = time.time()
        with self._write() as c:
            for gone in removed:
                c.execute("DELETE FROM chunks WHERE file_id = ?", (gone,))
                c.execute("DELETE FROM corpus_files WHERE id = ?", (gone,))
            c.executemany("UPDATE corpus_files SET mtime_ns = ?, size = ? WHERE id = ?",
                          [(m, s, i) for i, m, s in touched])
            for f in indexed:
                row = c.execute("SELECT id FROM corpus_files WHERE corpus_id = ? AND path = ?",
                                (corpus_id, f.path)).fetchone()
                if row is not None:
                    c.execute("DELETE FROM chunks WHERE file_id = ?", (row[0],))
                    c.execute("UPDATE corpus_files SET mtime_ns = ?, size = ?, hash = ?, "
                              "title = ?, chunks = ?, indexed_at = ? WHERE id = ?",
                              (f.mtime_ns, f.size, f.hash, f.title, len(f.chunks), now,
                               row[0]))
                    file_id: int | None = row[0]
                else:
                    file_id = c.execute(
                        "INSERT INTO corpus_files (corpus_id, path, mtime_ns, size, hash, "
                        "title, chunks, indexed_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (corpus_id, f.path, f.mtime_ns, f.size, f.hash, f.title,
                         len(f.chunks), now)).lastrowid
                c.executemany("INSERT INTO chunks (file_id, corpus, ordinal, line, end_line, "
                              "title, text) VALUES (?, ?, ?, ?, ?, ?, ?)",
                              [(file_id, corpus_token(corpus_id), n, ch.line, ch.end_line,
                                f.title, ch.text) for n, ch in enumerate(f.chunks)])
            c.execute("UPDATE corpora SET updated_at = ? WHERE id = ?", (now, corpus_id))

    def search_corpus(self, corpus_id: int, terms: str, limit: int) -> list[Hit]:
        """The `limit` best chunks of the corpus for an FTS5 expression `terms` (made
        safe by `core.retrieval.query`), best first. FTS5 ranks the matches and keeps
        the top `limit` itself; only those are joined to their files and get a snippet."""
        match = f"corpus : {corpus_token(corpus_id)} AND {{text title}} : ({terms})"
        rows = self.conn.execute(
            "SELECT f.path, c.line, c.end_line, c.title, c.text, top.snip, top.rank FROM "
            "(SELECT rowid AS id, rank, snippet(chunks_fts, 0, '[', ']', '…', 16) AS snip "
            " FROM chunks_fts WHERE chunks_fts MATCH ? ORDER BY rank LIMIT ?) AS top "
            "JOIN chunks c ON c.id = top.id JOIN corpus_files f ON f.id = c.file_id "
            "ORDER BY top.rank", (match, limit))
        return [Hit(source=r[0], line=r[1], end_line=r[2], title=r[3] or "", text=r[4],
                    snippet=r[5], score=round(-r[6], 6)) for r in rows]


def corpus_token(corpus_id: int) -> str:
    """The word that marks a corpus's chunks in the full-text index."""
    return f"c{corpus_id}"
