"""Run a finished model step again on the other tier, as a sibling, to compare.

The original stays as it is; the sibling answer is stored in `comparisons` with its
model, tokens and cost, so pairs can later extend the routing calibration set.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from podium.core.errors import PodiumError, StoreError, Timeout, Unavailable
from podium.core.models.caller import ModelCaller
from podium.core.models.hub import ModelHub
from podium.core.recipe import templates
from podium.core.recipe.load import pinned
from podium.core.steps import registry
from podium.core.steps.base import StepContext
from podium.core.store import Status, Store

VERDICTS = ("local", "remote", "both", "neither")


@dataclass
class Side:
    """One answer of a comparison."""

    model: str | None
    tier: str | None
    output: Any
    input_tokens: int
    output_tokens: int
    cost: float
    latency_ms: float | None


async def compare(store: Store, hub: ModelHub, run_id: str, step_id: str) -> tuple[Side, Side]:
    """(the stored answer, a fresh answer from the other tier)."""
    run = store.get_run(run_id)
    records = {s.step_id: s for s in store.get_steps(run.id)}
    record = records.get(step_id)
    if record is None:
        raise StoreError(f"run {run.id} has no step '{step_id}'",
                         "steps: " + ", ".join(records))
    comparable = [k for k in registry.names() if registry.get(k).comparable]
    if record.kind not in comparable or record.status != Status.SUCCEEDED:
        raise PodiumError(f"step '{step_id}' is a finished {record.kind} step with status "
                          f"{record.status}; only succeeded model steps can be compared",
                          "model steps: " + ", ".join(comparable))
    step = pinned(store, run).steps[step_id]
    other = "remote" if record.tier == "local" else "local"
    sibling = step.model_copy(update={"route": other, "model": None, "fallbacks": []})
    values = {"inputs": run.inputs,
              "steps": {s: r.output for s, r in records.items() if r.status == Status.SUCCEEDED}}
    ctx = ModelCaller(hub, run.id, values)
    started = time.perf_counter()
    result = await registry.of(step).run(sibling, StepContext(run.id, step_id, values, ctx))
    latency = (time.perf_counter() - started) * 1000
    tiers = {hub.providers[m].tier for m in ctx.answered if m in hub.providers}
    if tiers != {other}:  # nothing answered, or a fallback answered on the same tier
        raise _no_answer(hub, ctx, other)
    model = ",".join(sorted(set(ctx.answered)))
    source_text = str(getattr(step, "prompt", None) or getattr(step, "input", ""))
    store.add_comparison(run.id, step_id, original_model=record.model,
                         original_tier=record.tier, model=model, tier=other,
                         output=result.output, input_tokens=ctx.usage.input_tokens,
                         output_tokens=ctx.usage.output_tokens, cost=ctx.cost,
                         latency_ms=latency,
                         prompt=templates.render(source_text, values, what=step_id))
    original = Side(record.model, record.tier, record.output, record.input_tokens,
                    record.output_tokens, record.cost, record.latency_ms)
    fresh = Side(model, other, result.output, ctx.usage.input_tokens,
                 ctx.usage.output_tokens, ctx.cost, latency)
    return original, fresh


def _no_answer(hub: ModelHub, ctx: ModelCaller, tier: str) -> PodiumError:
    """Why no model of `tier` answered: those tried and what they said (a remote that
    cannot be reached is unreachable, not missing), those without a key, or none."""
    tried = {m: e for m, e in ctx.failed.items()
             if m in hub.providers and hub.providers[m].tier == tier}
    if tried:
        unreachable = all(isinstance(e, (Unavailable, Timeout)) for e in tried.values())
        names = ", ".join(tried)
        said = "; ".join(e.message for e in tried.values())
        return PodiumError(f"no {tier} model could answer: {names} "
                           f"{'is unreachable' if unreachable else 'failed'} ({said})",
                           "check it with `podium models --check`, then compare again"
                           if tier == "remote" else None)
    why = "; ".join(ctx.decisions[-1].reasons) if ctx.decisions else "no decision"
    configured = any(p.tier == tier for p in hub.providers.values())
    if tier == "remote" and not configured:
        hint = ("give it its key, or add one with `podium models add`" if hub.unavailable
                else "add one with `podium models add`")
        return PodiumError(f"no remote model can be used ({why})", hint)
    return PodiumError(f"no {tier} model could answer ({why})")


def judge(store: Store, run_id: str, step_id: str, verdict: str) -> None:
    """A person says which answer of a step's latest comparison was right."""
    if verdict not in VERDICTS:
        raise PodiumError(f"unknown verdict '{verdict}'", "verdicts: " + ", ".join(VERDICTS))
    store.judge_comparison(store.get_run(run_id).id, step_id, verdict)


def calibration_rows(store: Store) -> list[dict[str, Any]]:
    """Judged comparisons as rows for the routing calibration set
    (`bench/calibration/fit.py --extra FILE`): the prompt, and whether the local
    answer was right."""
    return [{"prompt": p["prompt"], "local_correct": p["verdict"] in ("local", "both"),
             "run_id": p["run_id"], "step_id": p["step_id"]} for p in store.judged_pairs()]
