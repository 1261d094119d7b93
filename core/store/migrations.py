"""Append-only schema migrations. Never edit a shipped one: add `m00N_...` below.

Each runs once, recorded in `_migrations`, inside one transaction, so a crash
mid-way leaves the database as it was. `PRAGMA user_version` counts the migrations
applied, so a Podium that knows fewer refuses the file before writing to it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # sqlite-utils (and the numpy it pulls in) loads only to migrate
    import sqlite_utils

Migration = Callable[["sqlite_utils.Database"], None]
MIGRATIONS: list[Migration] = []


def migration(fn: Migration) -> Migration:
    """Register a migration; order of definition is order of application."""
    MIGRATIONS.append(fn)
    return fn


def schema_version() -> int:
    """The `user_version` this Podium gives a database it migrates: how many
    migrations it knows. A larger one was made by a newer Podium."""
    return len(MIGRATIONS)


def applied(conn: sqlite3.Connection) -> set[str] | None:
    """The migrations recorded in the database, or None on a blank one. Plain sqlite3,
    so opening an up-to-date database does not import sqlite-utils."""
    try:
        return {row[0] for row in conn.execute("SELECT name FROM _migrations")}
    except sqlite3.OperationalError as e:
        if "no such table" in str(e):
            return None
        raise


def complete(done: set[str] | None) -> bool:
    """Whether `done` (from `applied`) is every migration this Podium knows, and no other."""
    return done == {fn.__name__ for fn in MIGRATIONS}


def refuse_newer(version: int, done: set[str] | None, where: str = "this database") -> None:
    """Raise `StoreError` if a newer Podium made the database: a `user_version` above
    ours, or a migration we do not know. Checked before anything is written."""
    from podium.core.errors import StoreError

    known = schema_version()
    unknown = sorted((done or set()) - {fn.__name__ for fn in MIGRATIONS})
    if version > known:
        made = f"schema {version}"
    elif unknown:
        made = f"migration {unknown[-1]}"
    else:
        return
    raise StoreError(f"{where} was made by a newer Podium ({made}); this one knows {known}",
                     "upgrade Podium, or use another database with --db or PODIUM_DB")


def migrate(db: sqlite_utils.Database, where: str = "this database") -> list[str]:
    """Apply every migration not yet applied, and set `user_version` to the schema
    version in the same transaction as the migration that reaches it; returns the
    names applied now. Safe to run twice, and from two processes at once."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    refuse_newer(version, applied(db.conn), where)
    db.execute("CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at REAL)")
    done = {row[0] for row in db.execute("SELECT name FROM _migrations").fetchall()}
    applied_now = []
    for number, fn in enumerate(MIGRATIONS, start=1):
        if fn.__name__ in done:
            continue
        with _transaction(db):
            # Another process may have migrated while we waited for the lock.
            if db.execute("SELECT 1 FROM _migrations WHERE name = ?", [fn.__name__]).fetchone():
                continue
            fn(db)
            db.execute("INSERT INTO _migrations VALUES (?, ?)", [fn.__name__, time.time()])
            db.execute(f"PRAGMA user_version = {number}")
        applied_now.append(fn.__name__)
    if db.execute("PRAGMA user_version").fetchone()[0] < schema_version():
        # Made by a Podium from before user_version was kept: every migration is there.
        with _transaction(db):
            db.execute(f"PRAGMA user_version = {schema_version()}")
    return applied_now


@contextmanager
def _transaction(db: sqlite_utils.Database) -> Iterator[None]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        # A full disk or an I/O error may have rolled back already: a second ROLLBACK
        # would fail and hide the error that matters.
        if db.conn.in_transaction:
            db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


@migration
def m001_initial(db: sqlite_utils.Database) -> None:
    db.table("recipes").create({
        "hash": str, "name": str, "path": str, "source": str, "created_at": float,
    }, pk="hash", if_not_exists=True)
    db.table("runs").create({
        "id": str, "recipe_name": str, "recipe_hash": str, "recipe_path": str,
        "status": str, "inputs": str, "outputs": str, "error": str, "hint": str,
        "created_at": float, "started_at": float, "finished_at": float,
        "pid": int, "host": str, "parent_run_id": str,
        "input_tokens": int, "output_tokens": int, "cost": float,
    }, pk="id", foreign_keys=[("recipe_hash", "recipes", "hash")], if_not_exists=True)
    db.table("runs").create_index(["created_at"], if_not_exists=True)
    db.table("runs").create_index(["status"], if_not_exists=True)
    db.table("steps").create({
        "run_id": str, "step_id": str, "kind": str, "position": int, "status": str,
        "output_hash": str, "partial_output": str, "model": str, "tier": str, "route": str,
        "input_tokens": int, "output_tokens": int, "cost": float, "latency_ms": float,
        "started_at": float, "finished_at": float, "attempts": int,
        "error": str, "hint": str, "reason": str, "cache_key": str,
    }, pk=("run_id", "step_id"), foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
    db.table("attempts").create({
        "id": int, "run_id": str, "step_id": str, "number": int, "status": str,
        "model": str, "started_at": float, "finished_at": float, "error": str,
        "input_tokens": int, "output_tokens": int, "latency_ms": float,
    }, pk="id", if_not_exists=True)
    db.table("attempts").create_index(["run_id", "step_id"], if_not_exists=True)
    db.table("events").create({
        "id": int, "run_id": str, "step_id": str, "ts": float, "type": str, "data": str,
    }, pk="id", if_not_exists=True)
    db.table("events").create_index(["run_id"], if_not_exists=True)
    db.table("artifacts").create({
        "hash": str, "content": str, "size": int, "created_at": float,
    }, pk="hash", if_not_exists=True)
    db.table("cache").create({
        "key": str, "artifact_hash": str, "model": str, "created_at": float,
    }, pk="key", if_not_exists=True)


@migration
def m002_chats(db: sqlite_utils.Database) -> None:
    db.table("chats").create({
        "id": str, "title": str, "created_at": float, "updated_at": float,
    }, pk="id", if_not_exists=True)
    db.table("messages").create({
        "id": int, "chat_id": str, "position": int, "role": str, "content": str,
        "model": str, "tier": str, "route": str, "input_tokens": int, "output_tokens": int,
        "cost": float, "latency_ms": float, "created_at": float,
    }, pk="id", foreign_keys=[("chat_id", "chats", "id")], if_not_exists=True)
    db.table("messages").create_index(["chat_id", "position"], if_not_exists=True)


@migration
def m003_comparisons(db: sqlite_utils.Database) -> None:
    db.table("comparisons").create({
        "id": int, "run_id": str, "step_id": str, "original_model": str,
        "original_tier": str, "model": str, "tier": str, "output_hash": str,
        "input_tokens": int, "output_tokens": int, "cost": float, "latency_ms": float,
        "created_at": float,
    }, pk="id", foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
    db.table("comparisons").create_index(["run_id", "step_id"], if_not_exists=True)


@migration
def m004_reviews(db: sqlite_utils.Database) -> None:
    # The review queue: one row per question put to a person (a gate's round, one item
    # of a map or ensemble, or a run's spent budget) and its decision.
    db.table("reviews").create({
        "id": int, "run_id": str, "step_id": str, "of_step": str, "item": int,
        "kind": str, "round": int, "status": str, "instructions": str,
        "original_hash": str, "decided_hash": str, "feedback": str, "action": str,
        "amount": float, "created_at": float, "decided_at": float, "decided_by": str,
    }, pk="id", foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
    db.table("reviews").create_index(["status", "created_at"], if_not_exists=True)
    db.table("reviews").create_index(["run_id", "step_id"], if_not_exists=True)
    # Hand edits of finished steps: every version of an output, the original first.
    db.table("step_versions").create({
        "id": int, "run_id": str, "step_id": str, "version": int, "output_hash": str,
        "source": str, "created_at": float, "created_by": str,
    }, pk="id", foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
    db.table("step_versions").create_index(["run_id", "step_id"], if_not_exists=True)
    columns = db.table("steps").columns_dict
    if "stale" not in columns:
        db.table("steps").add_column("stale", str)  # why the output is out of date, or NULL
    if "version" not in columns:
        db.table("steps").add_column("version", int)  # current output version (NULL: 1)


@migration
def m005_comparison_verdicts(db: sqlite_utils.Database) -> None:
    # A comparison keeps the prompt both tiers answered and, once a person says so,
    # which answer was right: a labelled pair for the routing calibration set.
    columns = db.table("comparisons").columns_dict
    if "prompt" not in columns:
        db.table("comparisons").add_column("prompt", str)
    if "verdict" not in columns:
        db.table("comparisons").add_column("verdict", str)  # local|remote|both|neither


@migration
def m006_map_items(db: sqlite_utils.Database) -> None:
    # The items of a map or ensemble, kept one by one as they finish, so a resume makes
    # only the ones that were not. A set is the items of one step of a run made from one
    # definition and one set of inputs (its key); a changed input starts a new set.
    db.table("item_sets").create({
        "id": int, "run_id": str, "step_id": str, "key": str, "created_at": float,
    }, pk="id", foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
    db.table("item_sets").create_index(["run_id", "step_id", "key"], unique=True,
                                       if_not_exists=True)
    db.table("items").create({
        "id": int, "set_id": int, "idx": int, "digest": str, "status": str, "output": str,
        "attempt": int, "model": str, "input_tokens": int, "output_tokens": int,
        "cost": float, "latency_ms": float, "error": str, "created_at": float,
    }, pk="id", foreign_keys=[("set_id", "item_sets", "id")], if_not_exists=True)
    db.table("items").create_index(["set_id", "idx"], if_not_exists=True)


@migration
def m007_batches(db: sqlite_utils.Database) -> None:
    # A recipe over a dataset: one batch, one row per dataset row, each row linked to the
    # run that does its work (a row's status is its run's; see store/batches.py).
    db.table("batches").create({
        "id": str, "recipe_name": str, "recipe_hash": str, "data": str, "mapping": str,
        "executor": str, "concurrency": int, "total": int, "status": str,
        "created_at": float, "finished_at": float, "pid": int, "host": str,
    }, pk="id", if_not_exists=True)
    db.table("batches").create_index(["created_at"], if_not_exists=True)
    db.table("batch_rows").create({
        "batch_id": str, "idx": int, "key": str, "line": int, "inputs": str,
        "status": str, "run_id": str, "error": str,
    }, pk=("batch_id", "idx"), foreign_keys=[("batch_id", "batches", "id")],
        if_not_exists=True)
    db.table("batch_rows").create_index(["run_id"], if_not_exists=True)

@migration
def m008_documents(db: sqlite_utils.Database) -> None:
    # Retrieval corpora (`podium index`): a named folder, its files with what tells a
    # changed one (mtime, size, hash), their chunks, and an FTS5 index over the chunks.
    # The index reads its text from `chunks` (external content), kept in step by
    # triggers, so each chunk's text is stored once. `chunks.corpus` holds a token
    # naming the corpus ("c<id>"), indexed too, so a search of one corpus is a single
    # MATCH that FTS5 ranks and cuts to the top k by itself (no join over every match).
    db.execute("CREATE TABLE IF NOT EXISTS corpora (id INTEGER PRIMARY KEY, "
               "name TEXT NOT NULL UNIQUE, root TEXT NOT NULL, created_at REAL, "
               "updated_at REAL)")
    db.execute("CREATE TABLE IF NOT EXISTS corpus_files (id INTEGER PRIMARY KEY, "
               "corpus_id INTEGER NOT NULL REFERENCES corpora(id), path TEXT NOT NULL, "
               "mtime_ns INTEGER, size INTEGER, hash TEXT, title TEXT, chunks INTEGER, "
               "indexed_at REAL, UNIQUE (corpus_id, path))")
    db.execute("CREATE TABLE IF NOT EXISTS chunks (id INTEGER PRIMARY KEY, "
               "file_id INTEGER NOT NULL REFERENCES corpus_files(id), corpus TEXT, "
               "ordinal INTEGER, line INTEGER, end_line INTEGER, title TEXT, text TEXT)")
    db.execute("CREATE INDEX IF NOT EXISTS chunks_file ON chunks (file_id)")
    db.execute("CREATE VIRTUAL TABLE IF NOT EXISTS chunks_fts USING fts5(text, title, "
               "corpus, content='chunks', content_rowid='id', "
               "tokenize='porter unicode61 remove_diacritics 2')")
    # Rank by BM25 with the title worth half the text, and the corpus token nothing.
    db.execute("INSERT INTO chunks_fts (chunks_fts, rank) VALUES "
               "('rank', 'bm25(1.0, 0.5, 0.0)')")
    db.execute("CREATE TRIGGER IF NOT EXISTS chunks_added AFTER INSERT ON chunks BEGIN "
               "INSERT INTO chunks_fts (rowid, text, title, corpus) VALUES (new.id, "
               "new.text, new.title, new.corpus); END")
    db.execute("CREATE TRIGGER IF NOT EXISTS chunks_removed AFTER DELETE ON chunks BEGIN "
               "INSERT INTO chunks_fts (chunks_fts, rowid, text, title, corpus) VALUES "
               "('delete', old.id, old.text, old.title, old.corpus); END")


@migration
def m009_agent_transcripts(db: sqlite_utils.Database) -> None:
    # Every message of an agent or a team (one transcript per step), with each tool
    # call's result beside the call it answers: a killed agent resumes from here.
    db.table("agent_messages").create({
        "id": int, "run_id": str, "step_id": str, "seq": int, "speaker": str,
        "role": str, "content": str, "tool_calls": str, "tool_call_id": str,
        "tool_name": str, "arguments": str, "error": str, "truncated": int,
        "duration_ms": float, "input_tokens": int, "output_tokens": int, "cost": float,
        "created_at": float,
    }, pk="id", foreign_keys=[("run_id", "runs", "id")], if_not_exists=True)
    db.table("agent_messages").create_index(["run_id", "step_id", "seq"], unique=True,
                                            if_not_exists=True)


@migration
def m010_router_fits(db: sqlite_utils.Database) -> None:
    # `podium calibrate`: each answer to a suite prompt, kept as it comes (a killed
    # calibration resumes), keyed by the model file's fingerprint and who answered
    # ("local" or a remote model's name); and the router fits made from them.
    db.table("calibration_answers").create({
        "id": int, "fingerprint": str, "model": str, "answerer": str, "prompt": str,
        "reply": str, "right": int, "signals": str, "finish_reason": str, "cost": float,
        "seconds": float, "created_at": float,
    }, pk="id", if_not_exists=True)
    db.table("calibration_answers").create_index(["fingerprint", "answerer", "prompt"],
                                                 unique=True, if_not_exists=True)
    db.table("router_fits").create({
        "id": int, "model": str, "fingerprint": str, "created_at": float, "fit": str,
        "examples": str, "summary": str,
    }, pk="id", if_not_exists=True)
    db.table("router_fits").create_index(["fingerprint"], if_not_exists=True)
    db.table("router_fits").create_index(["model"], if_not_exists=True)


@migration
def m011_route_outcomes(db: sqlite_utils.Database) -> None:
    # Outcomes of the local model's answers seen at run time (a cascade's `verify`, a
    # failed program check), which the router takes as examples: keyed by the model
    # file's fingerprint, since they describe that file's model.
    db.table("route_outcomes").create({
        "id": int, "fingerprint": str, "model": str, "prompt": str, "right": int,
        "source": str, "run_id": str, "created_at": float,
    }, pk="id", if_not_exists=True)
    db.table("route_outcomes").create_index(["fingerprint"], if_not_exists=True)
