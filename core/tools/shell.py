"""`shell`: a command an agent proposes and a person approves, every time.

How a command runs: the text is split into words by `shlex` (POSIX quoting) and the
first word is executed directly, with the rest as its arguments. There is no shell:
`;`, `&&`, `|`, `>`, `$(...)`, backquotes and globs are plain characters passed to
the program, so the command a person approved is the only one that runs. Its folder
is `cwd`, its input is empty, and its environment holds only PATH, HOME, LANG and
TMPDIR, so keys in Podium's environment never reach its output (which is stored).
It gets `timeout_s` seconds; then it and everything it started are killed. Output
(stdout, then stderr) past `max_bytes` is not kept.

The tool's approval is "ask" and cannot be lowered (`ToolDef.least`): a person sees
the command before it runs.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import signal
from pathlib import Path
from typing import Any

from podium.core.errors import ConfigError, ToolError
from podium.core.tools.base import ToolDef

MAX_OUTPUT_BYTES = 64_000
KEPT_ENV = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")


def shell_tool(cwd: str | Path, *, timeout_s: float = 30.0,
               max_bytes: int = MAX_OUTPUT_BYTES, name: str = "shell") -> ToolDef:
    """A tool that runs one command (no shell) in `cwd`, after a person approves it.
    `ConfigError` if `cwd` is not a folder."""
    folder = Path(cwd).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder the shell tool can run in",
                          "give an existing folder as its cwd")
    folder = folder.resolve()

    async def run(arguments: dict[str, Any]) -> str:
        return await run_command(str(arguments["command"]), folder, timeout_s, max_bytes)

    return ToolDef(
        name=name,
        description=(f"Run one command in {folder} after a person approves it. No shell: "
                     "pipes, redirections, ';' and '$(...)' are not interpreted. "
                     f"Limit: {timeout_s:g} s."),
        parameters={"type": "object",
                    "properties": {"command": {"type": "string", "minLength": 1,
                                               "description": "e.g. ls -la docs"}},
                    "required": ["command"], "additionalProperties": False},
        run=run, approval="ask", least="ask",
        timeout_s=timeout_s + 5,  # its own timeout kills the process group first
    )


async def run_command(command: str, cwd: Path, timeout_s: float, max_bytes: int) -> str:
    """Run `command` as described in the module docstring; the text an agent reads:
    the exit code, then stdout and stderr."""
    try:
        argv = shlex.split(command)
    except ValueError as e:  # an unclosed quote
        raise ToolError(f"cannot split the command into words: {e}") from None
    if not argv:
        raise ToolError("empty command")
    env = {k: os.environ[k] for k in KEPT_ENV if k in os.environ}
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            start_new_session=True)  # its own process group, killed as one
    except FileNotFoundError:
        raise ToolError(f"no program '{argv[0]}'", "check its name, or give its full "
                        "path") from None
    except PermissionError:
        raise ToolError(f"'{argv[0]}' cannot be run (permission denied)") from None
    assert proc.stdout is not None and proc.stderr is not None
    try:
        out, err = await asyncio.wait_for(asyncio.gather(
            _read(proc.stdout, max_bytes), _read(proc.stderr, max_bytes)), timeout_s)
        code = await asyncio.wait_for(proc.wait(), timeout_s)
    except TimeoutError:
        _kill(proc.pid)
        await proc.wait()
        raise ToolError(f"'{argv[0]}' did not finish within {timeout_s:g} s and was "
                        "stopped") from None
    except BaseException:  # cancelled: leave nothing running
        _kill(proc.pid)
        raise
    parts = [f"exit code {code}"]
    if out:
        parts.append(out)
    if err:
        parts.append(f"[stderr]\n{err}")
    return "\n".join(parts)


async def _read(stream: asyncio.StreamReader, max_bytes: int) -> str:
    """At most `max_bytes` of a stream; the rest is read and dropped (so the process
    is never blocked on a full pipe), and counted in a mark."""
    kept = b""
    while len(kept) < max_bytes and (chunk := await stream.read(max_bytes - len(kept))):
        kept += chunk
    dropped = 0
    while chunk := await stream.read(65_536):
        dropped += len(chunk)
    text = kept.decode("utf-8", errors="replace")
    return text + (f"\n[… {dropped:,} more bytes not kept]" if dropped else "")


def _kill(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
