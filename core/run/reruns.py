"""Reruns: what in a run is out of date, and the cache keys that let unchanged work be
taken from the cache instead of done again."""

from __future__ import annotations

import hashlib
from typing import Any

from podium.core.errors import StoreError, did_you_mean
from podium.core.models.hub import ModelHub
from podium.core.recipe.load import pinned
from podium.core.recipe.schema import Recipe
from podium.core.steps import registry
from podium.core.store import Finished, Status, StepRecord, Store, dumps


def out_of_date(store: Store, run_id: str, from_step: str | None = None
                ) -> tuple[Recipe, dict[str, StepRecord], set[str]]:
    """(pinned recipe, step records, steps a rerun recomputes) of a run: the stale
    ones, those that did not succeed, `from_step`, and everything downstream."""
    run = store.get_run(run_id)
    recipe = pinned(store, run)
    records = {s.step_id: s for s in store.get_steps(run.id)}
    if from_step is not None and from_step not in records:
        raise StoreError(f"run {run.id} has no step '{from_step}'",
                         did_you_mean(from_step, records, "steps: " + ", ".join(records)))
    redo = {s for s, r in records.items() if r.stale or r.status not in (Status.SUCCEEDED,
                                                                           Status.SKIPPED)}
    if from_step is not None:
        redo.add(from_step)
    for sid in list(redo):
        redo |= recipe.plan.descendants(sid)
    return recipe, records, redo


def digest(value: Any) -> str:
    """The content hash of an output: the name of its stored artifact."""
    return hashlib.sha256(dumps(value).encode()).hexdigest()


class KeyMaker:
    """Cache keys of one run's steps: a hash of the step's definition (its model and
    route settings included), the run's inputs, its dependencies' outputs and, for
    steps that call models, the models routing can choose from. Computed when a
    step starts, so the key names what the output was made from. Outputs enter by
    their content hash, which the store computes anyway to keep them, so a key
    costs one small hash, not a serialisation of every input."""

    def __init__(self, recipe: Recipe, values: dict[str, Any], hub: ModelHub) -> None:
        self.recipe = recipe
        self.plan = recipe.plan
        self.values = values
        self.inputs_digest = hashlib.sha256(dumps(values["inputs"]).encode()).digest()
        models = sorted(f"{name}:{tier}" for name, tier in hub.tiers().items())
        self.models_digest = hashlib.sha256(
            ",".join([hub.default_local, *models]).encode()).digest()
        self.digests: dict[str, str] = {}  # step -> content hash of its current output
        # Set when a review made a step's output again mid-run: steps that were running
        # on the old output then finish stale (this says why).
        self.remade: str | None = None

    def output_changed(self, sid: str) -> None:
        """`sid`'s output was replaced (a remake): forget its hash."""
        self.digests.pop(sid, None)

    def key(self, sid: str) -> str:
        """The cache key of `sid` given what its dependencies output now."""
        h = hashlib.sha256(self.recipe.step_digest(sid))
        h.update(self.inputs_digest)
        steps = self.values["steps"]
        for d in sorted(self.plan.deps[sid]):
            known = self.digests.get(d)
            if known is None:
                known = self.digests[d] = digest(steps.get(d))
            h.update(d.encode())
            h.update(known.encode())
        if registry.of(self.recipe.steps[sid]).calls_model:
            h.update(self.models_digest)
        return h.hexdigest()


def from_cache(store: Store, recipe: Recipe, sid: str, keys: KeyMaker) -> Finished | None:
    """A rerun's step whose cache key is unchanged: its stored output, not run again."""
    if not registry.of(recipe.steps[sid]).cacheable:  # a person's decision, say
        return None
    key = keys.key(sid)
    try:
        output, model = store.cache_entry(key)
    except KeyError:
        return None
    return Finished(sid, 0, Status.SUCCEEDED, output=output, has_output=True, model=model,
                    cache_key=key, reason="from the cache: same definition, inputs and "
                    f"models (key {key[:12]})")
