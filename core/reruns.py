"""Reruns: what in a run is out of date, and the cache keys that let unchanged work be
taken from the cache instead of done again."""

from __future__ import annotations

import difflib
import hashlib
from typing import Any

from core.errors import StoreError
from core.hub import ModelHub
from core.plan import Plan
from core.recipe import MODEL_KINDS, Recipe, loads
from core.store import Finished, StepRecord, Store, dumps


def out_of_date(store: Store, run_id: str, from_step: str | None = None
                ) -> tuple[Recipe, dict[str, StepRecord], set[str]]:
    """(pinned recipe, step records, steps a rerun recomputes) of a run: the stale
    ones, those that did not succeed, `from_step`, and everything downstream."""
    run = store.get_run(run_id)
    _, path, source = store.recipe_source(run.recipe_hash)
    recipe = loads(source, path, checked=True)
    records = {s.step_id: s for s in store.get_steps(run.id)}
    if from_step is not None and from_step not in records:
        close = difflib.get_close_matches(from_step, list(records), n=1)
        raise StoreError(f"run {run.id} has no step '{from_step}'",
                         f"did you mean '{close[0]}'?" if close else
                         "steps: " + ", ".join(records))
    redo = {s for s, r in records.items() if r.stale or r.status not in ("succeeded",
                                                                           "skipped")}
    if from_step is not None:
        redo.add(from_step)
    for sid in list(redo):
        redo |= recipe.plan.descendants(sid)
    return recipe, records, redo


class KeyMaker:
    """Cache keys of one run's steps: a hash of the step's definition (its model and
    route settings included), the run's inputs, its dependencies' outputs and, for
    steps that call models, the models routing can choose from. Computed when a
    step starts, so the key names what the output was made from. The parts that do
    not change during a run are hashed once."""

    def __init__(self, recipe: Recipe, plan: Plan, values: dict[str, Any],
                 hub: ModelHub) -> None:
        self.recipe = recipe
        self.plan = plan
        self.values = values
        self.inputs_digest = hashlib.sha256(dumps(values["inputs"]).encode()).digest()
        models = sorted(f"{name}:{tier}" for name, tier in hub.tiers().items())
        self.models_digest = hashlib.sha256(
            ",".join([hub.default_local, *models]).encode()).digest()
        self.chosen: dict[str, frozenset[str]] = {}  # branch results, handed to the loop
        # Set when a review made a step's output again mid-run: steps that were running
        # on the old output then finish stale (this says why).
        self.remade: str | None = None

    def key(self, sid: str) -> str:
        """The cache key of `sid` given what its dependencies output now."""
        h = hashlib.sha256(self.recipe.step_digest(sid))
        h.update(self.inputs_digest)
        steps = self.values["steps"]
        h.update(dumps({d: steps.get(d) for d in sorted(self.plan.deps[sid])}).encode())
        if self.recipe.steps[sid].kind in MODEL_KINDS:
            h.update(self.models_digest)
        return h.hexdigest()


def from_cache(store: Store, recipe: Recipe, sid: str, keys: KeyMaker) -> Finished | None:
    """A rerun's step whose cache key is unchanged: its stored output, not run again."""
    if recipe.steps[sid].kind == "review":  # a person's decision is not a cache hit
        return None
    key = keys.key(sid)
    try:
        output, model = store.cache_entry(key)
    except KeyError:
        return None
    return Finished(sid, 0, "succeeded", output=output, has_output=True, model=model,
                    cache_key=key, reason="from the cache: same definition, inputs and "
                    f"models (key {key[:12]})")
