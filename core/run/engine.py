"""The engine's public verbs: run a recipe, resume a run, rerun what is out of date,
and record a person's decision and carry on. Each run is driven by a `RunLoop`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from podium.core.errors import RunBusy, StoreError
from podium.core.events import Event
from podium.core.models.hub import ModelHub
from podium.core.recipe.inputs import resolve_inputs
from podium.core.recipe.load import pinned
from podium.core.recipe.schema import Recipe
from podium.core.review.decisions import decide
from podium.core.run.loop import RunLoop, RunResult
from podium.core.run.reruns import out_of_date
from podium.core.steps.values import parse_value
from podium.core.store import Status, Store
from podium.core.tools.catalog import ToolSource

BY_HAND = "by hand: "


class Engine:
    """Runs recipes against a store with the models of a hub."""

    def __init__(self, store: Store, hub: ModelHub, *, max_parallel: int = 8,
                 on_event: Callable[[Event], None] | None = None,
                 tool_sources: ToolSource | None = None) -> None:
        self.store = store
        # Tools core cannot build itself (HTTP, MCP), from the front end (tui/factory.py).
        self.tool_sources = tool_sources
        self.hub = hub
        self.max_parallel = max_parallel
        self.on_event = on_event or (lambda e: None)
        self._active: dict[str, RunLoop] = {}  # runs this engine is executing, by id

    async def run(self, recipe: Recipe, inputs: dict[str, Any], *,
                  base_dir: str | None = None) -> RunResult:
        """Validate inputs, create the run, execute it."""
        values = resolve_inputs(recipe, inputs, base_dir=base_dir)
        run_id = self.store.create_run(recipe, values, recipe.plan.order)
        return await self._execute(run_id, recipe, values, {}, {})

    def create(self, recipe: Recipe, inputs: dict[str, Any], *,
               base_dir: str | None = None) -> str:
        """Create a run without executing it (the TUI starts it in a worker)."""
        values = resolve_inputs(recipe, inputs, base_dir=base_dir)
        return self.store.create_run(recipe, values, recipe.plan.order)

    async def start(self, run_id: str, recipe: Recipe, inputs: dict[str, Any]) -> RunResult:
        """Execute a run stored but never started (`store.create_run` with the resolved
        `inputs`): a batch makes each row's run this way, with its recipe loaded once."""
        return await self._execute(run_id, recipe, inputs, {}, {})

    async def resume(self, run_id: str, *, skip: list[str] | None = None,
                     settle: dict[str, Any] | None = None, force: bool = False) -> RunResult:
        """Continue a run from the store: finished steps stay; the rest run.

        `skip` marks unfinished steps skipped by hand; `settle` gives them an output
        by hand (for steps left in doubt by a crash)."""
        run = self.store.get_run(run_id)
        if run.status == Status.SUCCEEDED and not (skip or settle):
            return RunResult(run.id, run.status, run.outputs)
        # Claimed before anything changes: of two processes resuming at once (two people
        # deciding two reviews of one run), the second gets RunBusy and leaves it be.
        self.store.claim_run(run.id, force=force)
        self.store.settle_attempts(run.id)
        recipe = pinned(self.store, run)
        records = {s.step_id: s for s in self.store.get_steps(run.id)}
        for sid in list(skip or []) + list(settle or {}):
            if sid not in records:
                raise StoreError(f"run {run.id} has no step '{sid}'",
                                 "steps: " + ", ".join(records))
            if records[sid].status == Status.SUCCEEDED:
                raise StoreError(f"step '{sid}' already succeeded; nothing to settle")
        outputs: dict[str, Any] = {}
        done: dict[str, str] = {}
        asked = {r.step_id for r in self.store.reviews(run_id=run.id)}  # still undecided
        for sid, rec in records.items():
            if rec.status == Status.SUCCEEDED:
                outputs[sid] = rec.output
                done[sid] = Status.SUCCEEDED
            elif rec.status == Status.SKIPPED and (rec.reason or "").startswith(BY_HAND):
                done[sid] = Status.SKIPPED
            elif rec.status == Status.WAITING and sid in asked:
                done[sid] = Status.WAITING  # nothing to do until a person decides
        for sid, value in (settle or {}).items():
            if isinstance(value, str):  # typed by a person: shaped like the step's output
                value = parse_value(recipe.steps[sid], value, where=sid)
            self.store.finish_step(run.id, sid, 0, status=Status.SUCCEEDED, output=value,
                                   has_output=True, model="by hand")
            outputs[sid] = value
            done[sid] = Status.SUCCEEDED
        if skip:
            self.store.commit(run.id, skipped={s: BY_HAND + "skipped on resume" for s in skip})
            done.update({s: Status.SKIPPED for s in skip})
        again = [sid for sid in records if sid not in done]
        self.store.reset_steps(run.id, again)
        attempts = {sid: rec.attempts for sid, rec in records.items()}
        return await self._execute(run.id, recipe, run.inputs, outputs, done, attempts)

    async def rerun(self, run_id: str, *, from_step: str | None = None,
                    use_cache: bool = True) -> RunResult | None:
        """Recompute what is out of date in a run, as a new run linked to it (the old
        run is never changed): steps made stale by an edit, steps that did not
        succeed, `from_step` if given, and everything downstream of those. The rest
        is kept; recomputed steps whose cache key is unchanged come from the cache.
        None when nothing is out of date. `use_cache=False` runs them all."""
        old = self.store.get_run(run_id)
        if old.status == Status.RUNNING and not old.orphaned:
            raise RunBusy(old.id, old.pid, None)
        if old.status == Status.WAITING:
            raise StoreError(f"run {old.id} is waiting for review",
                             "decide its items first (podium review), or resume it")
        recipe, records, redo = out_of_date(self.store, old.id, from_step)
        if not redo:
            return None
        order = recipe.plan.order
        new_id = self.store.create_run(recipe, old.inputs, order, parent_run_id=old.id)
        keep = [s for s in order if s not in redo and records[s].status == Status.SUCCEEDED]
        skipped = {s: records[s].reason or Status.SKIPPED for s in order
                   if s not in redo and records[s].status == Status.SKIPPED}
        self.store.keep_steps(new_id, old.id, keep)
        if skipped:
            self.store.commit(new_id, skipped=skipped)
        outputs: dict[str, Any] = {s: records[s].output for s in keep}
        outputs.update(dict.fromkeys(skipped))
        done: dict[str, str] = {s: Status.SUCCEEDED for s in keep}
        done.update((s, Status.SKIPPED) for s in skipped)
        return await self._execute(new_id, recipe, old.inputs, outputs, done,
                                   cached=use_cache)

    async def decide(self, review_id: int | str, action: str, *, proceed: bool = True,
                     **details: Any) -> RunResult | None:
        """Record a person's decision (see `core.review.decisions.decide`), then carry
        on (`proceed`) unless told not to. A decision on the default local model's
        answer teaches the router (`ModelHub.learn`)."""
        record = decide(self.store, review_id, action, learn=self._learn, **details)
        return await self.proceed(record.run_id) if proceed else None

    def _learn(self, model: str, ask: str, right: bool, run_id: str) -> None:
        if model == self.hub.default_local:  # what the router's fit describes
            self.hub.learn(ask, right, "review", run_id)

    async def proceed(self, run_id: str) -> RunResult | None:
        """Carry on after a decision: a run this engine is executing picks it up at once;
        a run that was left waiting (or whose process died) is resumed here. None when
        nothing ran here (another live process runs it, and picks the decision up)."""
        loop = self._active.get(run_id)
        if loop is not None:
            loop.wake()
            return None
        run = self.store.get_run(run_id)
        if run.status == Status.WAITING or run.orphaned:
            try:
                return await self.resume(run_id)
            except RunBusy:  # someone else's decision resumed it a moment ago
                return None
        return None

    async def _execute(self, run_id: str, recipe: Recipe, inputs: dict[str, Any],
                       outputs: dict[str, Any], done: dict[str, str],
                       attempts: dict[str, int] | None = None, *,
                       cached: bool = False) -> RunResult:
        loop = RunLoop(self.store, self.hub, self.on_event, run_id, recipe, inputs, outputs,
                       done, limit=min(self.max_parallel, recipe.max_parallel),
                       attempts=attempts, cached=cached, tool_sources=self.tool_sources)
        self._active[run_id] = loop
        try:
            return await loop.run()
        finally:
            self._active.pop(run_id, None)


__all__ = ["Engine", "RunResult"]
