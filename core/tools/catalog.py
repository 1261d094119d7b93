"""The tools of one agent step: names resolved to `ToolDef`s, with the approval policy
the step gives each.

Where tools come from:
- built-ins, by name (`read_file`, `calculator`, ...): a lazy table of factories, so a
  recipe that uses none imports none; `register` adds one (a plug-in, a test);
- `mcp.NAME`: every tool of the MCP server `[tools.mcp.NAME]` starts;
- the names a recipe's own module defines (`[tools] module`).
Tools that need what core may not import (HTTP, MCP's SDK) come through a
`ToolSource` the front end hands the engine (`tui/factory.py`).

Approval: `auto` runs at once, `ask` waits in the review queue, `deny` refuses with a
message the agent reads. A step may change a tool's default (`approval = {name =
"ask"}`), except that `shell` never runs without a person: it asks at least.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from podium.core.errors import ConfigError, did_you_mean
from podium.core.tools import base
from podium.core.tools.base import Approval, ToolDef
from podium.core.tools.config import ToolsConfig

if TYPE_CHECKING:
    from podium.core.store import Store

# Tools the agent loop adds itself; a recipe cannot name them.
RESERVED = frozenset({"final_answer", "handoff", "say"})
ALWAYS_ASK = frozenset({"shell"})  # never lowered below `ask`
APPROVAL_ORDER: dict[str, int] = {"auto": 0, "ask": 1, "deny": 2}


@dataclass(frozen=True)
class ToolContext:
    """What a tool factory may use: the recipe's `[tools]`, the folder its relative
    paths start from, and the store (retrieval reads its corpora)."""

    config: ToolsConfig
    base_dir: Path
    store: Store | None = None


Factory = Callable[[ToolContext], ToolDef]
# (config, base folder, the names wanted) -> each name it provides with the tools it
# stands for (`http_get`: one; `mcp.NAME`: every tool of that server), open for the
# length of the `async with` (an MCP server runs that long).
ToolSource = Callable[[ToolsConfig, Path, list[str]],
                      AbstractAsyncContextManager[dict[str, list[ToolDef]]]]


@dataclass(frozen=True)
class Builtin:
    """A built-in tool: where its factory lives (imported on first use), and what the
    recipe's `[tools]` must say before it can be offered."""

    target: str  # "module:function", or "" for a tool a `ToolSource` provides
    needs: str | None = None  # the [tools] field that must be set, e.g. "read_roots"


# Names here are checked in recipes at load time; a target of "" is provided by the
# front end's `ToolSource` (it needs HTTP or a subprocess protocol core does not import).
BUILTINS: dict[str, Builtin] = {
    "read_file": Builtin("podium.core.tools.builtins:read_file", "read_roots"),
    "list_dir": Builtin("podium.core.tools.builtins:list_dir", "read_roots"),
    "calculator": Builtin("podium.core.tools.builtins:calculator"),
    "shell": Builtin("podium.core.tools.builtins:shell", "shell"),
    "http_get": Builtin("", "http_hosts"),
    "search_docs": Builtin("podium.core.tools.builtins:search_docs", "corpus"),
}
_FACTORIES: dict[str, Factory] = {}


def register(name: str, factory: Factory, *, needs: str | None = None) -> None:
    """Add (or replace) a built-in tool made by `factory` (plug-ins and tests)."""
    BUILTINS[name] = Builtin("", needs)
    _FACTORIES[name] = factory


def unregister(name: str) -> None:
    """Remove a built-in added by `register`."""
    BUILTINS.pop(name, None)
    _FACTORIES.pop(name, None)


def _factory(name: str) -> Factory | None:
    if name in _FACTORIES:
        return _FACTORIES[name]
    spec = BUILTINS.get(name)
    if spec is None or not spec.target:
        return None
    module, _, attr = spec.target.partition(":")
    factory: Factory = getattr(importlib.import_module(module), attr)
    _FACTORIES[name] = factory
    return factory


# --- checks at load time --------------------------------------------------------------

Problems = list[tuple[tuple[Any, ...], str, str | None]]


def check_names(config: ToolsConfig, names: list[str], approval: dict[str, str],
                loc: tuple[Any, ...]) -> Problems:
    """What is wrong with a step's `tools` and `approval` under the recipe's `[tools]`:
    unknown names (with "did you mean"), tools the recipe has not switched on, and
    approvals that would let `shell` run unasked."""
    found: Problems = []
    known = sorted(set(BUILTINS) | {f"mcp.{s}" for s in config.mcp})
    for i, name in enumerate(names):
        where = loc + ("tools", i)
        if name in RESERVED:
            found.append((where, f"'{name}' is added by Podium itself",
                          "remove it from tools"))
        elif name.startswith("mcp."):
            server = name.removeprefix("mcp.")
            if server not in config.mcp:
                found.append((where, f"no MCP server '{server}' in [tools.mcp]", did_you_mean(
                    server, config.mcp, f"declare it: [tools.mcp.{server}] command = [...]",
                    always=True)))
        elif name in BUILTINS:
            needs = BUILTINS[name].needs
            if needs and not getattr(config, needs):
                found.append((where, f"{name} is off: the recipe's [tools] does not set "
                              f"{needs}", f"add it under [tools], e.g. {needs} = "
                              + ("true" if needs == "shell" else '["..."]')))
        elif config.module is None:
            found.append((where, f"unknown tool '{name}'", did_you_mean(
                name, known, "tools: " + ", ".join(known) + " (or your own: [tools] "
                "module = \"file.py\")", always=True)))
    for name, policy in approval.items():
        if name not in names:
            found.append((loc + ("approval", name), f"'{name}' is not one of this step's "
                          "tools", did_you_mean(name, names, "tools: " + ", ".join(names))))
        elif name in ALWAYS_ASK and policy == "auto":
            found.append((loc + ("approval", name), f"{name} cannot run without a person's "
                          "approval", 'use "ask" or "deny"'))
    return found


# --- the catalog of a running step ----------------------------------------------------


@dataclass
class Catalog:
    """The tools one step may call, by name, each with its approval settled."""

    tools: dict[str, ToolDef]

    def names(self) -> list[str]:
        """The tool names, in the order the step listed them."""
        return list(self.tools)


def with_approval(tool: ToolDef, policy: str | None) -> ToolDef:
    """`tool` under the step's policy (never below the least its tool allows: a
    `ConfigError`); `shell` asks at least, whatever its maker said."""
    if tool.name in ALWAYS_ASK and APPROVAL_ORDER[tool.approval] < APPROVAL_ORDER["ask"]:
        tool = replace(tool, approval="ask", least="ask")
    if policy is None or policy == tool.approval:
        return tool
    approval: Approval = policy  # type: ignore[assignment]  # checked at load
    return base.with_approval(tool, approval)


def user_tools(config: ToolsConfig, base_dir: Path) -> dict[str, ToolDef]:
    """The tools of the recipe's own module: the typed functions in its `__all__`
    (`core.tools.functions`), or a `TOOLS` list of ready `ToolDef`s."""
    if config.module is None:
        return {}
    module = _import(config.module, base_dir)
    listed = getattr(module, "TOOLS", None)
    if listed is not None:
        return {t.name: t for t in listed if isinstance(t, ToolDef)}
    from podium.core.tools.functions import tools_from_module

    return {t.name: t for t in tools_from_module(config.module, base=base_dir)}


def _import(name: str, base_dir: Path) -> Any:
    path = (base_dir / name) if name.endswith(".py") else None
    try:
        if path is None:
            return importlib.import_module(name)
        key = f"podium_user_tools_{abs(hash(str(path.resolve())))}"
        if key in sys.modules:
            return sys.modules[key]
        spec = importlib.util.spec_from_file_location(key, path)
        if spec is None or spec.loader is None or not path.is_file():
            raise ConfigError(f"no tools module at {path}",
                              "[tools] module is relative to the recipe file")
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
        return module
    except ConfigError:
        raise
    except Exception as e:  # the person's own code: say where it broke
        raise ConfigError(f"cannot load the tools module {name}: {type(e).__name__}: {e}",
                          "fix the module, or remove [tools] module") from None


@asynccontextmanager
async def open_catalog(config: ToolsConfig, base_dir: Path, names: Iterable[str],
                       approval: dict[str, str], *, store: Store | None = None,
                       source: ToolSource | None = None,
                       extra: dict[str, ToolDef] | None = None) -> AsyncIterator[Catalog]:
    """The step's tools, open for as long as the `async with` lasts. `extra` are
    tools the caller adds by name (tests, plug-ins) ahead of the others."""
    wanted = list(dict.fromkeys(names))
    ctx = ToolContext(config, base_dir, store)
    found: dict[str, ToolDef] = dict(extra or {})
    own = user_tools(config, base_dir) if config.module else {}
    elsewhere: list[str] = []
    for name in wanted:
        if name in found:
            continue
        factory = _factory(name)
        if factory is not None:
            found[name] = factory(ctx)
        elif name in own:
            found[name] = own[name]
        else:
            elsewhere.append(name)
    if elsewhere and source is None:
        raise ConfigError(f"no tool source for {', '.join(elsewhere)}",
                          "these tools need a front end that provides them (podium run)"
                          + (did_you_mean(elsewhere[0], own, prefix="; ") or ""))
    if not elsewhere:
        yield _ordered(wanted, found, approval)
        return
    assert source is not None
    async with source(config, base_dir, elsewhere) as provided:
        names_out: list[str] = []
        for name in wanted:
            if name not in provided:
                if name in found:
                    names_out.append(name)
                    continue
                raise ConfigError(f"unknown tool '{name}'", did_you_mean(
                    name, set(found) | set(own) | set(provided)))
            for tool in provided[name]:  # an MCP server stands for all its tools
                found[tool.name] = tool
                names_out.append(tool.name)
                if name in approval and tool.name not in approval:  # mcp.NAME = "ask"
                    approval = {**approval, tool.name: approval[name]}
        yield _ordered(names_out, found, approval)


def _ordered(names: list[str], found: dict[str, ToolDef],
             approval: dict[str, str]) -> Catalog:
    out: dict[str, ToolDef] = {}
    for name in names:
        tool = found.get(name)
        if tool is not None:
            out[tool.name] = with_approval(tool, approval.get(name))
    return Catalog(out)
