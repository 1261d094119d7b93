"""`read_file` and `list_dir`: files an agent may look at, inside folders a recipe allows.

Every path is resolved first (`..` collapsed, every link followed, as the operating
system would) and only then checked to be inside one of the roots, so neither `..`,
an absolute path nor a link pointing out gets past it. A relative path is looked up
in each root in turn. Only regular files are read (a FIFO, a device or a socket
could block or never end), up to a size cap, opened without following a final link
that might have been swapped in after the check.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium.core.errors import ConfigError, ToolError
from podium.core.tools.base import ToolDef

MAX_READ_BYTES = 200_000
MAX_ENTRIES = 500


class Roots:
    """The folders a tool may reach, resolved once."""

    def __init__(self, roots: Sequence[str | Path]) -> None:
        if not roots:
            raise ConfigError("a file tool needs at least one folder it may read",
                              "list the folders in the recipe's tool settings")
        self.roots: list[Path] = []
        for root in roots:
            path = Path(root).expanduser()
            if not path.is_dir():
                raise ConfigError(f"{path} is not a folder a file tool can read",
                                  "give folders that exist")
            self.roots.append(path.resolve())

    def describe(self) -> str:
        """The roots as the model is told about them."""
        return ", ".join(str(r) for r in self.roots)

    def inside(self, path: Path) -> bool:
        """Whether a resolved `path` is one of the roots or under one."""
        return any(path == r or path.is_relative_to(r) for r in self.roots)

    def resolve(self, given: str) -> Path:
        """The real path `given` names, if it is inside a root; else a `ToolError`.
        A relative path is tried in each root in order; the first that exists wins."""
        if "\x00" in given:
            raise ToolError("a path cannot hold a NUL character")
        raw = Path(given.strip() or ".").expanduser()
        candidates = [raw] if raw.is_absolute() else [r / raw for r in self.roots]
        outside = False
        for candidate in candidates:
            try:
                real = candidate.resolve(strict=True)
            except FileNotFoundError:
                continue
            except (OSError, RuntimeError) as e:  # a loop of links, a bad name
                raise ToolError(f"cannot open '{given}': {getattr(e, 'strerror', e)}") from None
            if self.inside(real):
                return real
            outside = True
        if outside:
            raise ToolError(f"'{given}' is outside the folders this tool may read",
                            f"allowed: {self.describe()}")
        raise ToolError(f"no such file or folder: '{given}'",
                        "list a folder first to see what is there")

    def shown(self, path: Path) -> str:
        """`path` as the model should write it: relative to its root."""
        for root in self.roots:
            if path == root:
                return "."
            if path.is_relative_to(root):
                rel = path.relative_to(root).as_posix()
                return rel if len(self.roots) == 1 else f"{root}/{rel}"
        return str(path)


def read_file_tool(roots: Sequence[str | Path], *, max_bytes: int = MAX_READ_BYTES,
                   name: str = "read_file") -> ToolDef:
    """A tool that reads a text file inside `roots` (at most `max_bytes` of it; the rest
    is cut with a mark). `ConfigError` if a root is not a folder."""
    allowed = Roots(roots)

    def run(arguments: dict[str, Any]) -> str:
        given = str(arguments["path"])
        path = allowed.resolve(given)
        data, size = _read_regular(path, given, max_bytes)
        if b"\x00" in data[:8192]:
            raise ToolError(f"'{given}' is a binary file ({size:,} bytes), not text")
        text = data.decode("utf-8", errors="replace")
        if size > len(data):
            text += f"\n[… file cut at {len(data):,} of {size:,} bytes]"
        return text

    return ToolDef(
        name=name,
        description=("Read a text file. Paths are relative to the allowed folder"
                     f"{'s' if len(allowed.roots) > 1 else ''}: {allowed.describe()}."),
        parameters={"type": "object",
                    "properties": {"path": {"type": "string", "minLength": 1,
                                            "description": "The file to read."}},
                    "required": ["path"], "additionalProperties": False},
        run=run,
    )


def _read_regular(path: Path, given: str, max_bytes: int) -> tuple[bytes, int]:
    """Up to `max_bytes` of a regular file, and its size. O_NOFOLLOW and O_NONBLOCK:
    a link swapped in after the check is refused, and a FIFO cannot block the open."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError as e:
        raise ToolError(f"cannot open '{given}': {e.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode):
        os.close(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ToolError(f"'{given}' is a folder", "use list_dir to see what it holds")
        raise ToolError(f"'{given}' is not a regular file (a device, a pipe or a "
                        "socket), so it is not read")
    with os.fdopen(fd, "rb") as f:
        return f.read(max_bytes), info.st_size


def list_dir_tool(roots: Sequence[str | Path], *, name: str = "list_dir") -> ToolDef:
    """A tool that lists a folder inside `roots`: sub-folders end with `/`, files show
    their size, and a link that leads outside the roots is marked and not followed."""
    allowed = Roots(roots)

    def run(arguments: dict[str, Any]) -> str:
        given = str(arguments.get("path") or ".")
        folder = allowed.resolve(given)
        if not folder.is_dir():
            raise ToolError(f"'{given}' is a file, not a folder", "read it with read_file")
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name)
        except OSError as e:
            raise ToolError(f"cannot list '{given}': {e.strerror}") from None
        lines = [_entry(p, allowed) for p in entries[:MAX_ENTRIES]]
        if len(entries) > MAX_ENTRIES:
            lines.append(f"[… {len(entries) - MAX_ENTRIES:,} more entries not shown]")
        head = f"{allowed.shown(folder)}: {len(entries)} entries"
        return "\n".join([head, *lines]) if lines else f"{head} (empty)"

    return ToolDef(
        name=name,
        description=("List a folder. Paths are relative to the allowed folder"
                     f"{'s' if len(allowed.roots) > 1 else ''}: {allowed.describe()}; "
                     "\".\" is the first."),
        parameters={"type": "object",
                    "properties": {"path": {"type": "string",
                                            "description": "The folder (default \".\")."}},
                    "additionalProperties": False},
        run=run,
    )


def _entry(path: Path, allowed: Roots) -> str:
    try:
        if path.is_symlink():
            real = path.resolve()
            if not allowed.inside(real):
                return f"{path.name} (link outside the allowed folders)"
        if path.is_dir():
            return f"{path.name}/"
        return f"{path.name}  {path.stat().st_size:,} bytes"
    except OSError:
        return f"{path.name} (cannot be read)"
