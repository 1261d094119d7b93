"""What a hostile filesystem does to the database, as `StoreError`s a person can act on.

SQLite reports a read-only file or folder, a full disk, a failing disk, a lock held
too long, a damaged file or one that is not a database as `sqlite3` exceptions with an
error code. `fault` turns those into a `StoreError` naming the file and what to do;
anything else (a constraint, a bad statement) is a bug in Podium and stays as it is.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import NamedTuple

from podium.core.errors import StoreError

BUSY_TIMEOUT_S = 30.0  # how long a write waits for another process's lock
OTHER_DB = "use another database with --db or PODIUM_DB"
# Primary result codes (the low byte of an extended code) that the environment causes.
READONLY, FULL, IOERR, BUSY, LOCKED = 8, 13, 10, 5, 6
NOTADB, CORRUPT, CANTOPEN, PERM, TOOBIG = 26, 11, 14, 3, 18


class ReadOnly(NamedTuple):
    """Why a database was opened read-only, and how to make it writable."""

    why: str
    fix: str


def fault(e: sqlite3.Error, path: Path, *, read_only: ReadOnly | None = None,
          run_id: str | None = None) -> StoreError | None:
    """The `StoreError` for `e` met on the database at `path`, or None when `e` is not
    the environment's doing. `read_only` says why the store opened the file read-only;
    `run_id` names the run a write belonged to, so the hint can say how to continue."""
    code = getattr(e, "sqlite_errorcode", None)
    if code is None:
        return None
    code &= 0xFF
    then = f"then continue with: podium resume {run_id}" if run_id else "then try again"
    if code == READONLY:
        why, fix = read_only or ReadOnly(
            "it is read-only", "check that you can write the file, its folder and the "
            "-wal and -shm files beside it")
        return StoreError(f"cannot write to the database {path}: {why}", f"{fix}; or {OTHER_DB}")
    if code == FULL:
        return StoreError(f"cannot write to the database {path}: the disk is full",
                          f"nothing already stored was lost; free some space, {then}")
    if code == IOERR:
        name = e.sqlite_errorname
        verb = "read" if "READ" in name else "write to"
        return StoreError(f"cannot {verb} the database {path}: disk I/O error ({name})",
                          f"check the disk: free space, a file size limit, a drive or network "
                          f"folder that went away; {then}")
    if code in (BUSY, LOCKED):
        return StoreError(f"the database {path} is busy: another process has held it for "
                          f"over {BUSY_TIMEOUT_S:g} s",
                          f"wait for other podium commands to finish, {then}")
    if code == NOTADB:
        return StoreError(f"{path} is not a Podium database (it is not SQLite)",
                          f"is it the right file? Otherwise {OTHER_DB}")
    if code == CORRUPT:
        return StoreError(f"the database {path} is damaged: {e}",
                          f"restore it from a backup (`sqlite3 {path} .recover` may save "
                          f"what is left), or {OTHER_DB}")
    if code in (CANTOPEN, PERM):
        return StoreError(f"cannot open the database {path}: {e}",
                          f"check that you can read and write it and its folder, or "
                          f"{OTHER_DB}")
    if code == TOOBIG:
        return StoreError(f"a value is too big to store in {path}: {e}",
                          "make the step's output or the run's inputs smaller")
    return None
