"""The tools core cannot build itself, for the engine's `tool_sources` hook
(`core.tools.catalog.ToolSource`): `http_get` (it speaks HTTP) and the tools of MCP
servers (started over stdio with the `mcp` SDK), each opened for one agent step and
closed after it. `tui/factory.py` hands this to the engine."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

from podium.core.tools.base import ToolDef
from podium.core.tools.config import ToolsConfig


@asynccontextmanager
async def provided_tools(config: ToolsConfig, base_dir: Path,
                         names: list[str]) -> AsyncIterator[dict[str, list[ToolDef]]]:
    """Each of `names` this module can provide, with the tools it stands for. The MCP
    servers start on entry and stop on exit, in the one task that enters (the SDK's
    task groups want that)."""
    found: dict[str, list[ToolDef]] = {}
    async with AsyncExitStack() as stack:
        for name in names:
            if name == "http_get":
                from podium.providers.http_get import http_get_tool

                found[name] = [http_get_tool(config.http_hosts)]
            elif name.startswith("mcp.") and name[4:] in config.mcp:
                from podium.providers.mcp import mcp_tools

                server = config.mcp[name[4:]]
                tools = await stack.enter_async_context(mcp_tools(
                    server.command, env=server.env or None, server=name[4:],
                    cwd=str(base_dir), call_timeout_s=server.timeout))
                found[name] = list(tools)
        yield found
