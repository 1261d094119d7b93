"""Tools from a Model Context Protocol server started over stdio, via the official `mcp`
SDK (an optional extra: `pip install 'podium[mcp]'`).

`mcp_tools(command)` is an async context manager: it starts the server, initializes
the session and lists its tools, and yields them as `ToolDef`s whose `run` calls the
server; leaving it stops the server (the SDK closes stdin, then terminates and kills
its process tree, each step bounded). Nothing here can hang: starting and listing
have `init_timeout_s`, each call `call_timeout_s`. A server that cannot start or does
not answer is a `ConfigError` (the recipe's `[tools.mcp.NAME]` is wrong); one that
fails or dies during a call is a `ToolError` the agent reads, naming the server and
the end of what it wrote to stderr (which is kept in a file, off the terminal).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from typing import IO, Any

from podium.core.errors import ConfigError, ToolError
from podium.core.tools.base import ToolDef

STDERR_TAIL = 400  # characters of the server's stderr shown in an error


def _sdk() -> Any:
    try:
        import mcp
    except ImportError:
        raise ConfigError("MCP tools need the `mcp` package, which is not installed",
                          "pip install 'podium[mcp]'") from None
    return mcp


@asynccontextmanager
async def mcp_tools(command: Sequence[str], *, env: dict[str, str] | None = None,
                    server: str = "mcp", cwd: str | None = None,
                    init_timeout_s: float = 15.0, call_timeout_s: float = 30.0,
                    prefix: str | None = None) -> AsyncIterator[list[ToolDef]]:
    """Start the MCP server `command` (a program and its arguments; `env` is added to a
    minimal environment, as the SDK does) and yield its tools. `server` names it in
    errors; `prefix`, if given, is put before each tool's name (`prefix_tool`) so two
    servers' tools cannot collide."""
    import anyio

    mcp = _sdk()
    if not command or not all(isinstance(c, str) and c for c in command):
        raise ConfigError(f"MCP server '{server}': command must be a list of words, "
                          "the program first", "e.g. command = [\"uvx\", \"mcp-server-time\"]")
    program = command[0]
    if shutil.which(program, path=(env or {}).get("PATH", os.environ.get("PATH"))) is None \
            and not os.path.isfile(program):
        raise ConfigError(f"MCP server '{server}': no program '{program}'",
                          "install it, or give its full path in command")
    params = mcp.StdioServerParameters(command=program, args=list(command[1:]), env=env,
                                       cwd=cwd)
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8", errors="replace") as errlog:
        def said() -> str:
            return _tail(errlog)

        try:
            async with AsyncExitStack() as stack:
                try:
                    read, write = await stack.enter_async_context(
                        mcp.stdio_client(params, errlog=errlog))
                    session = await stack.enter_async_context(mcp.ClientSession(read, write))
                    # Only the exchanges are under the time limit: a cancel scope must not
                    # end while the task groups the contexts above opened are still open.
                    with anyio.fail_after(init_timeout_s):
                        await session.initialize()
                        listed = await _list_all(session)
                except TimeoutError:
                    raise ConfigError(f"MCP server '{server}' did not start within "
                                      f"{init_timeout_s:g} s" + said(),
                                      "is command an MCP server speaking stdio?") from None
                except (OSError, ValueError) as e:
                    raise ConfigError(f"MCP server '{server}' could not be started: {e}",
                                      "check its command") from None
                except Exception as e:  # the SDK's MCPError, a closed connection...
                    raise ConfigError(f"MCP server '{server}' failed while starting: "
                                      f"{_reason(e)}" + said(), "run its command by hand "
                                      "to see why") from None
                yield [_tool(session, t, server, prefix, call_timeout_s, said)
                       for t in listed]
        except BaseExceptionGroup as group:
            # The SDK's task groups wrap whatever crosses them (our ConfigError, the
            # caller's own exception): the caller gets the error itself.
            raise _single(group) from None


def _single(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The one exception inside nested groups of one, else the group."""
    e: BaseException = group
    while isinstance(e, BaseExceptionGroup) and len(e.exceptions) == 1:
        e = e.exceptions[0]
    return e


async def _list_all(session: Any) -> list[Any]:
    """Every tool, following pagination."""
    import mcp

    tools: list[Any] = []
    cursor: str | None = None
    while True:
        params = mcp.types.PaginatedRequestParams(cursor=cursor) if cursor else None
        result = await session.list_tools(params=params)
        tools.extend(result.tools)
        cursor = result.next_cursor
        if not cursor:
            return tools


def _tool(session: Any, tool: Any, server: str, prefix: str | None, timeout_s: float,
          said: Any) -> ToolDef:
    import anyio

    remote_name: str = tool.name
    schema = dict(tool.input_schema or {})
    schema.setdefault("type", "object")
    schema.setdefault("properties", {})

    async def run(arguments: dict[str, Any]) -> str:
        try:
            with anyio.fail_after(timeout_s):
                result = await session.call_tool(remote_name, arguments,
                                                 read_timeout_seconds=timeout_s)
        except TimeoutError:
            raise ToolError(f"MCP server '{server}': {remote_name} gave no result within "
                            f"{timeout_s:g} s") from None
        except Exception as e:
            reason = _reason(e)
            if "timed out" in reason:
                raise ToolError(f"MCP server '{server}': {remote_name} gave no result "
                                f"within {timeout_s:g} s") from None
            raise ToolError(f"MCP server '{server}' failed during {remote_name}: {reason}"
                            + said(), "the server may have stopped; its tools cannot be "
                            "used until the step runs again") from None
        text = result_text(result)
        if result.is_error:
            raise ToolError(f"{remote_name} (MCP server '{server}'): {text}")
        return text

    return ToolDef(name=f"{prefix}_{remote_name}" if prefix else remote_name,
                   description=tool.description or remote_name, parameters=schema, run=run,
                   timeout_s=timeout_s + 5)  # our own limit answers first, more clearly


def result_text(result: Any) -> str:
    """A tool result's content as text: text parts as they are, other parts named, and
    the structured content as JSON when there is no text."""
    parts: list[str] = []
    for block in result.content or []:
        kind = getattr(block, "type", "")
        if kind == "text":
            parts.append(block.text)
        elif kind in ("image", "audio"):
            parts.append(f"[{kind}: {getattr(block, 'mime_type', '?')}]")
        elif kind == "resource_link":
            parts.append(f"[resource: {getattr(block, 'uri', '?')}]")
        elif kind == "resource":
            inner = getattr(block, "resource", None)
            parts.append(getattr(inner, "text", None) or f"[resource: "
                         f"{getattr(inner, 'uri', '?')}]")
        else:
            parts.append(f"[{kind or 'content'}]")
    if not parts and result.structured_content is not None:
        parts.append(json.dumps(result.structured_content, ensure_ascii=False))
    return "\n".join(parts)


def _reason(e: BaseException) -> str:
    """The first real error inside exception groups, as text."""
    while isinstance(e, BaseExceptionGroup) and e.exceptions:
        e = e.exceptions[0]
    return str(e) or type(e).__name__


def _tail(errlog: IO[str]) -> str:
    """`; it said: …` with the end of the server's stderr, or nothing."""
    try:
        errlog.flush()
        errlog.seek(0, os.SEEK_END)
        size = errlog.tell()
        errlog.seek(max(0, size - STDERR_TAIL * 4))
        text = " ".join(errlog.read().split())[-STDERR_TAIL:]
        errlog.seek(0, os.SEEK_END)
    except (OSError, ValueError):
        return ""
    return f"; it said: {text}" if text else ""
