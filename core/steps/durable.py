"""Items made one by one, each kept as it finishes: how a `map` runs its items and an
`ensemble` asks its members.

Items stream through a window of `concurrency` workers (never one task per item, so
a 100,000-item map holds `concurrency` coroutines and its output list, nothing more).
Each finished item goes to the step's journal (`StepContext.items`, given by the
engine), which commits it in small groups; an item the journal already holds, made
from the same thing (its digest), is taken from it instead of made again. So a
killed run, resumed, makes only the items that were not finished.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Literal, Protocol

from podium.core.errors import PodiumError
from podium.core.models.caller import ModelCaller
from podium.core.models.provider import Usage
from podium.core.steps.base import StepContext
from podium.core.store import Status, dumps
from podium.core.store.items import ItemRow, KeptItem

# A worker gives the event loop a turn every this many items, so items that never
# wait (templates) do not starve the group commit, the TUI or Ctrl-C.
YIELD_EVERY = 32

Errors = Literal["raise", "null", "keep"]
# (index, item, the item's own context) -> its output; raises when the item fails.
MakeItem = Callable[[int, Any, StepContext], Awaitable[Any]]


class ItemJournal(Protocol):
    """Where a step's finished items go (the engine's, bound to one attempt)."""

    def kept(self) -> dict[int, KeptItem]:
        """Items finished earlier from the same definition and inputs, by index."""

    def record(self, row: ItemRow) -> None:
        """Keep a finished item (committed within a moment, with others)."""

    def flush(self) -> None:
        """Commit what is recorded now."""


def digest(value: Any) -> str:
    """A short content hash of what an item is made from."""
    return hashlib.sha256(dumps(value).encode()).hexdigest()[:16]


def _item_ctx(ctx: StepContext) -> StepContext:
    """A context whose model calls are counted apart, so an item's tokens and cost are
    its own (items run at once; the step's totals are the sum)."""
    caller = dataclasses.replace(ctx.caller, usage=Usage(), cost=0.0, decisions=[],
                                 answered=[], failed={})
    return dataclasses.replace(ctx, caller=caller)


def _absorb(into: ModelCaller, caller: ModelCaller) -> None:
    into.usage = into.usage + caller.usage
    into.cost += caller.cost
    into.decisions.extend(caller.decisions)
    into.answered.extend(caller.answered)
    into.failed.update(caller.failed)


def _reuse(into: ModelCaller, kept: KeptItem) -> None:
    """A kept item's cost counts in the step's totals: it was paid for, once."""
    into.usage = into.usage + Usage(kept.input_tokens, kept.output_tokens)
    into.cost += kept.cost
    if kept.model:
        into.answered.extend(kept.model.split(","))


async def each_item(ctx: StepContext, items: Sequence[Any], make: MakeItem, *,
                    concurrency: int, calls_model: bool, errors: Errors = "raise",
                    digest_of: Callable[[int, Any], str] | None = None) -> list[Any]:
    """The output of `make` for every item, in order, at most `concurrency` at a time.

    `errors`: "raise" stops the others at the first failure and raises it; "null"
    gives None for an item that failed with a `PodiumError`; "keep" gives the
    exception itself. `digest_of` names what an item is made from (default: the
    item's value), so a kept item is used only for the same input. `calls_model`:
    count each item's tokens apart."""
    journal: ItemJournal | None = ctx.items
    kept = journal.kept() if journal is not None else {}
    name = digest_of or (lambda i, item: digest(item))
    results: list[Any] = [None] * len(items)
    order = iter(range(len(items)))

    async def one(index: int) -> None:
        item = items[index]
        key = name(index, item) if journal is not None else ""
        earlier = kept.pop(index, None)
        if earlier is not None and earlier.digest == key:
            results[index] = earlier.output
            _reuse(ctx.caller, earlier)
            return
        own = _item_ctx(ctx) if calls_model else ctx
        started = time.perf_counter()
        try:
            output = await make(index, item, own)
        except Exception as e:
            if own is not ctx:
                _absorb(ctx.caller, own.caller)
            if journal is not None:
                journal.record(_row(index, key, Status.FAILED, None, own, ctx, started,
                                    e.message if isinstance(e, PodiumError) else str(e)))
            if errors == "raise" or (errors == "null" and not isinstance(e, PodiumError)):
                raise  # (a bug is never a null)
            results[index] = e if errors == "keep" else None
            return
        if own is not ctx:
            _absorb(ctx.caller, own.caller)
        if journal is not None:
            journal.record(_row(index, key, Status.SUCCEEDED, output, own, ctx, started))
        results[index] = output

    async def worker() -> None:
        since = 0
        for index in order:
            await one(index)
            since += 1
            if since >= YIELD_EVERY:
                since = 0
                await asyncio.sleep(0)

    workers = [asyncio.ensure_future(worker())
               for _ in range(min(concurrency, len(items)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for w in workers:  # one item failed the step (or it was cancelled): stop the rest
            w.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    finally:
        if journal is not None:
            journal.flush()
    return results


def _row(index: int, key: str, status: str, output: Any, own: StepContext,
         ctx: StepContext, started: float, error: str | None = None) -> ItemRow:
    caller = own.caller if own is not ctx else None
    return ItemRow(index, key, status, output,
                   model=",".join(sorted(set(caller.answered))) or None if caller else None,
                   input_tokens=caller.usage.input_tokens if caller else 0,
                   output_tokens=caller.usage.output_tokens if caller else 0,
                   cost=caller.cost if caller else 0.0,
                   latency_ms=(time.perf_counter() - started) * 1000, error=error)
