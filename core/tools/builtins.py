"""The built-in tools, each made from a recipe's `[tools]` by a small factory the
catalog's lazy table names (`core.tools.catalog.BUILTINS`): a recipe that uses none
of them imports none."""

from __future__ import annotations

from podium.core.errors import ConfigError
from podium.core.tools.base import ToolDef
from podium.core.tools.catalog import ToolContext


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
