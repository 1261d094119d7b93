"""`search_docs`: an agent's way into an indexed corpus (see `core.retrieval`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from podium.core.errors import ToolError
from podium.core.retrieval.index import index_folder, search
from podium.core.store import Store
from podium.core.store.corpora import Hit
from podium.core.tools.base import ToolDef


def search_docs_tool(store: Store, corpus: str, *, folder: str | Path | None = None,
                     top_k: int = 5, name: str = "search_docs",
                     description: str | None = None) -> ToolDef:
    """A tool that returns the `top_k` best chunks of `corpus` for a query, each headed
    by `[n] source:lines (title)` so the agent can cite it. With `folder`, the folder is
    indexed into `corpus` first (incrementally). An unknown corpus is refused here, when
    the tool is made (`StoreError`), not at the agent's first call."""
    if folder is not None:
        index_folder(store, corpus, folder)
    elif store.corpus(corpus) is None:
        search(store, corpus, "", 1)  # raises the StoreError that names the fix

    async def run(arguments: dict[str, Any]) -> str:
        query = str(arguments["query"])
        limit = min(int(arguments.get("top_k") or top_k), top_k)
        hits = search(store, corpus, query, limit)
        if not hits:
            raise ToolError(f"nothing in '{corpus}' matches {query!r}",
                            "try other words, fewer of them, or a synonym")
        return format_hits(hits)

    return ToolDef(
        name=name,
        description=description or (
            f"Search the documents of '{corpus}' and return the passages that best match, "
            "each with its source to cite as [source:lines]."),
        parameters={
            "type": "object",
            "properties": {
                "query": {"type": "string", "minLength": 1,
                          "description": "Words to look for; \"quotes\" keep a phrase."},
                "top_k": {"type": "integer", "minimum": 1, "maximum": top_k,
                          "description": f"How many passages (at most {top_k})."},
            },
            "required": ["query"],
            "additionalProperties": False,
        },
        run=run,
    )


def format_hits(hits: list[Hit]) -> str:
    """Hits as the text an agent reads: numbered, each with its source and lines."""
    parts = []
    for n, hit in enumerate(hits, start=1):
        lines = str(hit.line) if hit.line == hit.end_line else f"{hit.line}-{hit.end_line}"
        title = f" ({hit.title})" if hit.title else ""
        parts.append(f"[{n}] {hit.source}:{lines}{title}\n{hit.text}")
    return "\n\n".join(parts)
