"""`retrieve`: the top chunks of an indexed corpus for a query, with their sources.

The output is a list of `{source, position, line, end_line, title, text, score}`, best
first, so a later prompt can quote the text and cite `source:position`. With `path`,
the recipe ships its own documents: the folder (relative to the recipe file) is
indexed into `corpus` when the step runs, incrementally, so the first run indexes it
and later runs only look for changed files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, PrivateAttr

from podium.core.errors import PodiumError, StepError
from podium.core.recipe import templates
from podium.core.recipe.schema import Recipe, StepBase
from podium.core.retrieval.index import NAME, check_folder, index_folder, search
from podium.core.steps.base import StepContext, StepResult
from podium.core.steps.registry import Problems, StepKind, register
from podium.core.store.corpora import Hit


class RetrieveStep(StepBase):
    """Search a corpus indexed with `podium index` (or the step's own `path`)."""

    kind: Literal["retrieve"]
    corpus: str = Field(description="The corpus to search: a name given to `podium index "
                        "DIR --name NAME`, or the name `path` is indexed under.")
    query: str = Field(description="What to search for (template).")
    top_k: int = Field(5, ge=1, le=50, description="How many chunks to return.")
    path: str | None = Field(None, description="A folder of documents (.txt, .md, .html) "
                             "relative to the recipe file, indexed into `corpus` when the "
                             "step runs (only changed files are read again).")

    _folder: Path | None = PrivateAttr(None)  # `path` resolved against the recipe file


def hit_value(hit: Hit) -> dict[str, Any]:
    """A hit as a step's output item."""
    position = str(hit.line) if hit.line == hit.end_line else f"{hit.line}-{hit.end_line}"
    return {"source": hit.source, "position": position, "line": hit.line,
            "end_line": hit.end_line, "title": hit.title, "text": hit.text,
            "score": hit.score}


async def run_retrieve_step(step: RetrieveStep, ctx: StepContext) -> StepResult:
    """Index the step's folder if it has one, then search."""
    if ctx.run is None:
        raise StepError(f"{ctx.step_id}: retrieve needs the run's database")
    store = ctx.run.store
    query = templates.render(step.query, ctx.values, what=f"{ctx.step_id}.query")
    try:
        if step.path is not None:
            index_folder(store, step.corpus, step._folder or Path(step.path), move=False)
        hits = search(store, step.corpus, query, step.top_k)
    except PodiumError as e:  # the step's failure, said the step's way
        raise StepError(f"{ctx.step_id}: {e.message}", e.hint) from None
    return StepResult([hit_value(h) for h in hits])


def check_retrieve(recipe: Recipe, sid: str, step: RetrieveStep) -> tuple[set[str], Problems]:
    """A corpus name that can be one, and a `path` folder that is there."""
    problems: Problems = []
    if not NAME.fullmatch(step.corpus):
        problems.append((("steps", sid, "corpus"), f"'{step.corpus}' cannot name a corpus",
                         "use letters, digits, '-', '_' and '.', up to 64 characters"))
    if step.path is not None:
        where = Path(recipe.path).parent if recipe.path != "<recipe>" else Path.cwd()
        folder = where / Path(step.path).expanduser()
        try:
            step._folder = check_folder(folder)
        except PodiumError as e:
            problems.append((("steps", sid, "path"), e.message,
                             "path is relative to the recipe file"))
    return set(), problems


KIND = register(StepKind(
    "retrieve", RetrieveStep, run_retrieve_step, templates=("query",),
    check=check_retrieve,
    # The corpus changes outside the recipe: a rerun searches again, never the cache.
    cacheable=False,
))
