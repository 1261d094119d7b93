"""The database file and the files SQLite keeps beside it, opened on a filesystem that
may refuse writes.

A WAL database is three files: `podium.db`, `podium.db-wal` and `podium.db-shm`,
the last two made in the same folder, with the database's permissions. So a
database can be read-only because of the file, of its folder, or of a `-wal` /
`-shm` left behind read-only. `connect` opens it for writing when it can, else
read-only (so `podium runs` and `show` still work) with the reason kept for the
error a write then meets.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

import podium.core.store.faults as faults
from podium.core.errors import StoreError
from podium.core.store.faults import OTHER_DB, ReadOnly


def beside(path: Path) -> tuple[Path, Path, Path]:
    """The `-wal`, `-shm` and `-journal` files SQLite keeps next to `path`."""
    wal, shm, journal = (path.with_name(path.name + end) for end in ("-wal", "-shm", "-journal"))
    return wal, shm, journal


def connect(path: Path) -> tuple[sqlite3.Connection, ReadOnly | None]:
    """A connection to `path` (created if missing), and why it is read-only, or None."""
    folder = path.parent
    try:
        if not path.exists():
            if not _can_write(folder):
                raise StoreError(f"cannot create the database {path}: the folder {folder} "
                                 "is not writable",
                                 f"make it writable (chmod u+w {folder}), or pick another "
                                 "place with --db, PODIUM_DB or PODIUM_HOME")
            return _connect(str(path)), None
        if not os.access(path, os.R_OK):
            raise StoreError(f"cannot read the database {path}: permission denied",
                             f"make it readable (chmod u+rw {path}), or {OTHER_DB}")
        read_only = _read_only(path)
    except OSError as e:  # a folder we may not even look into
        raise StoreError(f"cannot open the database {path}: {e.strerror}",
                         f"check the permissions of {folder}, or {OTHER_DB}") from None
    if read_only is None:
        return _connect(str(path)), None
    # With nothing beside the file, all of the database is in it: open it as immutable,
    # which creates no -wal or -shm. A plain read-only open would make both, with the
    # file's read-only mode, and leave them behind to break every write once the
    # permissions are restored. (Immutable takes no locks: a writer with more rights
    # than ours, working at the same moment, could show us a half-written page.)
    quiet = not any(p.exists() for p in beside(path))
    uri = path.absolute().as_uri() + ("?mode=ro&immutable=1" if quiet else "?mode=ro")
    return _connect(uri, uri=True), read_only


def _connect(target: str, *, uri: bool = False) -> sqlite3.Connection:
    return sqlite3.connect(target, uri=uri, isolation_level=None, check_same_thread=False,
                           timeout=faults.BUSY_TIMEOUT_S)


def _can_write(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def _read_only(path: Path) -> ReadOnly | None:
    """Why `path` cannot be written as a WAL database, or None if it can."""
    if not os.access(path, os.W_OK):
        return ReadOnly("the file is read-only", f"make it writable: chmod u+w {path}")
    wal, shm, _ = beside(path)
    for side in (wal, shm):
        if side.exists() and not os.access(side, os.W_OK) and not _repair(side, path):
            return ReadOnly(f"{side} is read-only", f"make it writable: chmod u+w {side}")
    if not _can_write(path.parent) and not (wal.exists() and shm.exists()):
        return ReadOnly(f"its folder {path.parent} is not writable (SQLite keeps its -wal "
                        "and -shm files there)",
                        f"make the folder writable: chmod u+w {path.parent}")
    return None


def _repair(side: Path, db: Path) -> bool:
    """Give a read-only `-wal` / `-shm` the (writable) database's mode back. A read-only
    open by an older Podium or the sqlite3 shell leaves them with the mode the database
    had then; once it is writable again they would keep every write failing. Changing
    a mode disturbs no process using the file. False if it is not ours to change."""
    try:
        os.chmod(side, stat.S_IMODE(os.stat(db).st_mode))
    except OSError:
        return False
    return os.access(side, os.W_OK)
