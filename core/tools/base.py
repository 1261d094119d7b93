"""What every tool is, and the one way a tool is called.

A `ToolDef` pairs the description a model sees (the port's `Tool`: name, description,
JSON Schema of the arguments) with the function that does the work and the approval
policy a recipe gave it. `call_tool` is the only caller: it checks the arguments
against the schema, enforces a time limit, turns every failure into a message the
agent can read, and caps the result with a visible truncation mark. Built-in tools,
user tools, MCP tools and `search_docs` are all `ToolDef`s.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Any, Literal

from podium.core.errors import ConfigError, PodiumError
from podium.core.models.provider import Tool
from podium.core.recipe import validate

Approval = Literal["auto", "ask", "deny"]
ToolFunction = Callable[[dict[str, Any]], "str | Awaitable[str]"]

MAX_RESULT_CHARS = 8_000  # what a tool may put in front of a model in one turn
DEFAULT_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class ToolDef:
    """One tool: what the model is told, what runs, and who must agree first."""

    name: str
    description: str
    parameters: dict[str, Any]  # JSON Schema of the arguments: always an object
    run: ToolFunction
    approval: Approval = "auto"
    timeout_s: float = DEFAULT_TIMEOUT_S
    # The least a recipe may lower `approval` to (`with_approval` enforces it): a shell
    # is "ask" however it is configured.
    least: Approval = "auto"

    def describe(self) -> Tool:
        """The tool as the model sees it."""
        return Tool(name=self.name, description=self.description, parameters=self.parameters)


_STRICTNESS: dict[str, int] = {"auto": 0, "ask": 1, "deny": 2}


def with_approval(tool: ToolDef, approval: Approval) -> ToolDef:
    """`tool` with the approval a recipe asked for; a `ConfigError` if that is less
    strict than the tool allows (`tool.least`)."""
    if _STRICTNESS[approval] < _STRICTNESS[tool.least]:
        raise ConfigError(f"tool '{tool.name}' cannot be set to approval = \"{approval}\"",
                          f"it always needs at least \"{tool.least}\": a person approves "
                          "each call")
    return replace(tool, approval=approval)


@dataclass(frozen=True)
class ToolOutcome:
    """What one call gave: the text the agent reads next, and what to store."""

    result: str  # the (possibly truncated) result, or the error as the agent reads it
    error: str | None = None  # set when the call failed; `result` then explains it
    truncated: bool = False
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


def cap(text: str, limit: int = MAX_RESULT_CHARS) -> tuple[str, bool]:
    """`text` cut to `limit` characters with a mark that says how much was left out."""
    if len(text) <= limit:
        return text, False
    dropped = len(text) - limit
    return f"{text[:limit]}\n[… truncated: {dropped:,} more characters not shown]", True


async def call_tool(tool: ToolDef, arguments: dict[str, Any],
                    limit: int = MAX_RESULT_CHARS) -> ToolOutcome:
    """Run `tool` on `arguments`. Never raises for the tool's own failures: bad
    arguments, a `ToolError`, a timeout or any exception become an outcome whose
    `result` tells the agent what went wrong, so it can try again."""
    started = time.perf_counter()

    def failed(message: str) -> ToolOutcome:
        return ToolOutcome(result=f"error: {message}", error=message,
                           duration_s=time.perf_counter() - started)

    wrong = validate.problems(arguments, tool.parameters)
    if wrong:
        return failed(f"{tool.name}: the arguments do not fit its schema: {'; '.join(wrong[:3])}")
    try:
        if inspect.iscoroutinefunction(tool.run):
            value = await asyncio.wait_for(tool.run(arguments), tool.timeout_s)
        else:  # a blocking function runs off the event loop, so a slow tool stalls nothing
            value = await asyncio.wait_for(asyncio.to_thread(tool.run, arguments), tool.timeout_s)
        if inspect.isawaitable(value):
            value = await asyncio.wait_for(value, tool.timeout_s)
    except TimeoutError:
        return failed(f"{tool.name}: no result within {tool.timeout_s:g} s")
    except PodiumError as e:
        return failed(f"{e.message}" + (f" ({e.hint})" if e.hint else ""))
    except Exception as e:  # a user's or an MCP server's tool: its failure is the agent's news
        return failed(f"{tool.name} failed: {type(e).__name__}: {e}")
    text, truncated = cap(value if isinstance(value, str) else str(value), limit)
    return ToolOutcome(result=text, truncated=truncated, duration_s=time.perf_counter() - started)
