"""The tools core cannot build itself, for the engine's `tool_sources` hook
(`core.tools.catalog.ToolSource`): `http_get` (it speaks HTTP) and the tools of MCP
servers (started over stdio with the `mcp` SDK), each opened for one agent step and
closed after it. `tui/factory.py` hands this to the engine."""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from podium.core.errors import ConfigError
from podium.core.tools.base import ToolDef
from podium.core.tools.config import ToolsConfig


def _factory(module: str, name: str) -> Any:
    """A tool factory of the providers package, imported when first needed."""
    try:
        return getattr(importlib.import_module(f"podium.providers.{module}"), name)
    except (ImportError, AttributeError):
        raise ConfigError(f"this Podium has no {module.replace('_', ' ')} tools",
                          "install the tools support, or remove the tool from the "
                          "step") from None


@asynccontextmanager
async def provided_tools(config: ToolsConfig, base_dir: Path,
                         names: list[str]) -> AsyncIterator[dict[str, list[ToolDef]]]:
    """Each of `names` this module can provide, with the tools it stands for."""
    found: dict[str, list[ToolDef]] = {}
    async with AsyncExitStack() as stack:
        for name in names:
            if name == "http_get":
                make = _factory("http_get", "http_get_tool")
                found[name] = [make(config.http_hosts)]
            elif name.startswith("mcp.") and name[4:] in config.mcp:
                server = config.mcp[name[4:]]
                open_server = _factory("mcp", "mcp_tools")
                tools = await stack.enter_async_context(open_server(
                    server.command, env=server.env or None, name=name[4:],
                    call_timeout_s=server.timeout))
                found[name] = list(tools)
        yield found
