"""Indexing a folder into a named corpus, incrementally, and searching it.

`index_folder` walks the folder and compares each file with what the store knew of
it: the same mtime and size means unchanged (not even read); otherwise the bytes are
hashed, and only a file whose hash differs is read into chunks again. Files gone
from the folder are dropped. Writes go in batches, each one short transaction, so a
run using the same database is never held up for long.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

from podium.core.errors import ConfigError, StoreError, did_you_mean
from podium.core.retrieval.chunks import chunk_lines
from podium.core.retrieval.documents import SUFFIXES, read_document
from podium.core.retrieval.query import match_expression
from podium.core.store import Store
from podium.core.store.corpora import Hit, IndexedFile

MAX_FILE_BYTES = 5_000_000  # bigger files are skipped (and reported), not cut
BATCH_FILES = 500
MAX_LIMIT = 100
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass
class IndexReport:
    """What one `index_folder` did."""

    name: str
    root: str
    added: int = 0
    changed: int = 0
    unchanged: int = 0
    removed: int = 0
    chunks: int = 0  # chunks written now (of added and changed files)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, why)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, object]:
        """The report as JSON-ready data."""
        return {"name": self.name, "root": self.root, "added": self.added,
                "changed": self.changed, "unchanged": self.unchanged,
                "removed": self.removed, "chunks": self.chunks,
                "skipped": [{"path": p, "reason": r} for p, r in self.skipped],
                "seconds": round(self.seconds, 3)}


def check_name(name: str) -> str:
    """`name` if it can name a corpus, else a `ConfigError`."""
    if not NAME.fullmatch(name):
        raise ConfigError(f"'{name}' cannot name a corpus",
                          "use letters, digits, '-', '_' and '.', up to 64 characters")
    return name


def check_folder(folder: str | Path) -> Path:
    """`folder` resolved, or a `ConfigError` if it is not a folder."""
    path = Path(folder).expanduser()
    if not path.exists():
        raise ConfigError(f"no folder {path} to index",
                          "give the folder that holds the documents (.txt, .md, .html)")
    if not path.is_dir():
        raise ConfigError(f"{path} is a file, not a folder",
                          "give the folder that holds it")
    return path.resolve()


def index_folder(store: Store, name: str, folder: str | Path, *,
                 move: bool = True) -> IndexReport:
    """Bring corpus `name` in line with the documents in `folder` (made if new). A
    corpus that indexed another folder follows it to `folder` (its old files are
    dropped) only with `move`; else that is a `ConfigError`, so a recipe's own folder
    never replaces a corpus a person indexed under the same name."""
    started = time.perf_counter()
    root = check_folder(folder)
    report = IndexReport(name=check_name(name), root=str(root))
    existing = store.corpus(name)
    if existing is not None and existing.root != str(root) and not move:
        raise ConfigError(f"corpus '{name}' is the index of {existing.root}, not of {root}",
                          "give this one another corpus name")
    corpus_id = store.ensure_corpus(name, str(root))
    known = store.corpus_files(corpus_id)
    seen: set[str] = set()
    batch: list[IndexedFile] = []
    touched: list[tuple[int, int, int]] = []
    for path, rel in _documents(root):
        seen.add(rel)
        try:
            st = path.stat()
            old = known.get(rel)
            if old is not None and (old.mtime_ns, old.size) == (st.st_mtime_ns, st.st_size):
                report.unchanged += 1
                continue
            if st.st_size > MAX_FILE_BYTES:
                report.skipped.append((rel, f"over {MAX_FILE_BYTES // 1_000_000} MB"))
                seen.discard(rel)  # an old version, if any, goes: it is not what is there
                continue
            data = path.read_bytes()
        except OSError as e:
            report.skipped.append((rel, e.strerror or str(e)))
            continue
        digest = hashlib.blake2b(data, digest_size=16).hexdigest()
        if old is not None and old.hash == digest:
            touched.append((old.id, st.st_mtime_ns, st.st_size))
            report.unchanged += 1
            continue
        batch.append(_read(path, rel, data, digest, st.st_mtime_ns, st.st_size))
        report.chunks += len(batch[-1].chunks)
        if old is None:
            report.added += 1
        else:
            report.changed += 1
        if len(batch) >= BATCH_FILES:
            store.update_corpus(corpus_id, indexed=batch, touched=touched, removed=[])
            batch, touched = [], []
    gone = [state.id for rel, state in known.items() if rel not in seen]
    report.removed = len(gone)
    store.update_corpus(corpus_id, indexed=batch, touched=touched, removed=gone)
    report.seconds = time.perf_counter() - started
    return report


def _documents(root: Path) -> list[tuple[Path, str]]:
    """(path, path relative to root with '/') of every document under root, sorted.
    Hidden files and folders are left out; linked folders are not followed."""
    found: list[tuple[Path, str]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        base = Path(folder)
        for name in sorted(files):
            if name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                continue
            path = base / name
            found.append((path, path.relative_to(root).as_posix()))
    return found


def _read(path: Path, rel: str, data: bytes, digest: str, mtime_ns: int,
          size: int) -> IndexedFile:
    document = read_document(path, data)
    return IndexedFile(path=rel, mtime_ns=mtime_ns, size=size, hash=digest,
                       title=document.title, chunks=chunk_lines(document.lines))


def search(store: Store, name: str, query: str, limit: int = 5) -> list[Hit]:
    """The `limit` best chunks of corpus `name` for `query` (any text: it is made safe
    for FTS5 first), best first. An unknown corpus is a `StoreError`."""
    corpus = store.corpus(name)
    if corpus is None:
        known = [c.name for c in store.corpora()]
        raise StoreError(f"no corpus named '{name}'",
                         did_you_mean(name, known) or
                         f"index a folder first: podium index DIR --name {name}")
    match = match_expression(query)
    if match is None:
        return []
    return store.search_corpus(corpus.id, match, max(1, min(limit, MAX_LIMIT)))

