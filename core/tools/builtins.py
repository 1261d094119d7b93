"""The built-in tools, each made from a recipe's `[tools]` by a small factory the
catalog's lazy table names (`core.tools.catalog.BUILTINS`): a recipe that uses none
of them imports none."""

from __future__ import annotations

from pathlib import Path

from podium.core.errors import ConfigError
from podium.core.tools.base import ToolDef
from podium.core.tools.catalog import ToolContext


def read_file(ctx: ToolContext) -> ToolDef:
    """`read_file` confined to `[tools] read_roots` (relative to the recipe)."""
    from podium.core.tools.files import read_file_tool

    return read_file_tool(_roots(ctx))


def list_dir(ctx: ToolContext) -> ToolDef:
    """`list_dir` confined to `[tools] read_roots`."""
    from podium.core.tools.files import list_dir_tool

    return list_dir_tool(_roots(ctx))


def _roots(ctx: ToolContext) -> list[Path]:
    return [ctx.base_dir / Path(root).expanduser() for root in ctx.config.read_roots]


def calculator(ctx: ToolContext) -> ToolDef:
    """Safe arithmetic, no `eval`."""
    from podium.core.tools.calculator import calculator_tool

    return calculator_tool()


def shell(ctx: ToolContext) -> ToolDef:
    """A shell in the recipe's folder; each command waits for a person's approval."""
    from podium.core.tools.shell import shell_tool

    return shell_tool(ctx.base_dir)


def search_docs(ctx: ToolContext) -> ToolDef:
    """`search_docs` over `[tools] corpus`, indexing `[tools] corpus_path` (relative to
    the recipe) into it first when given."""
    from podium.core.tools.search_docs import search_docs_tool

    config = ctx.config
    if ctx.store is None or config.corpus is None:
        raise ConfigError("search_docs needs a corpus", "set [tools] corpus = \"NAME\" (an "
                          "index made by `podium index DIR --name NAME`), or corpus_path")
    folder = ctx.base_dir / config.corpus_path if config.corpus_path else None
    return search_docs_tool(ctx.store, config.corpus, folder=folder)
