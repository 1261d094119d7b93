"""`podium calibrate`: fit the router to the person's own local model, and find the fit
that routing uses.

`calibrate` asks the local model every prompt of the calibration suite
(`core.calibration_suite`), keeping each answer in the store as it comes, so a
calibration stopped half-way continues where it stopped. With a remote model and a
budget it also asks the remote model the prompts the local one got wrong (only there
does the remote answer change a label), until the budget is spent; without one, the
remote model counts as right. Each answer is marked by its check, the router and the
cascade's reading of the answers' token probabilities are fitted
(`core.router_fitting.fit_calibration`) and the fit stored, tied to the model file's
fingerprint.

`active_fit` is the fit of the local model configured: its newest calibration for the
file as it is now; else the shipped fit, with a note saying why (never calibrated, or
the file changed since), plus this machine's judged comparisons and the outcomes runs
saw of that file's answers (`outcome_keeper` keeps them as they come).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.core.config import EMBEDDED_MODEL, ModelSpec, Settings
from podium.core.errors import (
    ConfigError,
    PodiumError,
    PromptTooLong,
    ProviderError,
    did_you_mean,
)
from podium.core.models.calibration_suite import (
    SuiteItem,
    interleave,
    load_suite,
    mark,
    request_for,
    spread,
)
from podium.core.models.hub import ModelHub
from podium.core.models.neighbours import MAX_CHARS, Example
from podium.core.models.provider import ModelRequest, Provider, collect
from podium.core.models.router_fit import (
    MAX_SEEN,
    RouterFit,
    age_text,
    fingerprint,
    shipped_fit,
)
from podium.core.models.router_fitting import Answer, fit_calibration
from podium.core.models.router_metrics import apgr, curve
from podium.core.models.routing import CONFIDENCE_TOP_LOGPROBS, answer_signals
from podium.core.store import Store


@dataclass
class Progress:
    """Where a calibration is: for a progress bar or a line in a log."""

    phase: str  # "local" | "remote"
    done: int
    total: int
    right: int
    resumed: int  # answers found stored when this run began
    spent: float = 0.0


@dataclass
class Calibration:
    """What a calibration did and the fit it stored."""

    model: str
    fingerprint: str
    fit: RouterFit
    prompts: int
    resumed: int
    asked: int
    local_right: float
    remote: str | None
    remote_asked: int
    remote_right: int
    remote_note: str | None
    spent: float
    seconds: float
    loo_apgr: float
    kept_local: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"model": self.model, "fingerprint": self.fingerprint, "prompts": self.prompts,
                "resumed": self.resumed, "asked": self.asked,
                "local_right": round(self.local_right, 4), "remote": self.remote,
                "remote_asked": self.remote_asked, "remote_right": self.remote_right,
                "remote_note": self.remote_note, "spent_usd": round(self.spent, 6),
                "answer_seconds": round(self.seconds, 1),
                "threshold": self.fit.threshold, "loo_apgr": round(self.loo_apgr, 4),
                "cascade": self.fit.cascade.to_json() if self.fit.cascade else None,
                "kept_local": round(self.kept_local, 4), "notes": self.notes}


def local_spec(settings: Settings, model: str | None) -> tuple[str, ModelSpec]:
    """The local model to calibrate (default: the configured one) and its catalog
    entry; a clear error for a name not configured, a remote model or a missing file."""
    catalog = settings.catalog()
    name = model or settings.default_model
    if name not in catalog:
        local = [n for n, s in catalog.items() if s.provider == "llamacpp"]
        raise ConfigError(f"model '{name}' is not configured",
                          did_you_mean(name, list(catalog),
                                       "local models: " + ", ".join(local) +
                                       "; add one with `podium models add NAME --path FILE.gguf`"))
    spec = catalog[name]
    if spec.provider != "llamacpp":
        raise ConfigError(f"model '{name}' is a remote model; calibrate a local one",
                          "give it with --remote R --budget USD to ask it too")
    if not spec.path or not Path(spec.path).exists():
        raise ConfigError(f"model '{name}' has no model file ({spec.path or 'no path'})",
                          "check `podium models`")
    return name, spec


def remote_spec(settings: Settings, remote: str, budget: float | None) -> ModelSpec:
    """The remote model to ask too, checked before anything is asked."""
    catalog = settings.catalog()
    if remote not in catalog:
        raise ConfigError(f"remote model '{remote}' is not configured",
                          did_you_mean(remote, list(catalog), "see `podium models`"))
    spec = catalog[remote]
    if spec.resolved_tier != "remote":
        raise ConfigError(f"'{remote}' is a local model, not a remote one",
                          "--remote names a model of the remote tier")
    if budget is None:
        raise ConfigError(f"--remote {remote} needs --budget USD: the suite asks it up to "
                          f"{len(load_suite())} prompts",
                          "e.g. --budget 0.10; without --remote, the remote model counts as "
                          "right on every prompt")
    return spec


async def calibrate(store: Store, hub: ModelHub, model: str, spec: ModelSpec, *,
                    remote: str | None = None, budget: float | None = None,
                    limit: int | None = None, max_tokens: int | None = None,
                    on_progress: Callable[[Progress], None] | None = None) -> Calibration:
    """Ask, mark, fit and store (see the module docstring). Answers are stored one by
    one; a second call with the same model file continues where the first stopped."""
    assert spec.path is not None
    suite = load_suite()
    items = spread(suite, limit) if limit else list(suite)
    fp = fingerprint(spec.path)
    provider = hub.providers.get(model)
    if provider is None:
        raise ConfigError(f"model '{model}' cannot be loaded", "check `podium models`")
    stored = store.calibration_answers(fp, "local")
    resumed = sum(it.prompt in stored for it in items)
    right = sum(stored[it.prompt]["right"] for it in items if it.prompt in stored)
    done = resumed
    for item in interleave(items):
        if item.prompt in stored:
            continue
        if on_progress is not None:
            on_progress(Progress("local", done, len(items), right, resumed))
        t0 = time.perf_counter()
        text, finish, signals = await ask(provider, item.prompt, max_tokens)
        ok = mark(item, text)
        store.add_calibration_answer(fp, model, "local", item.prompt, text, ok,
                                     signals=signals, finish_reason=finish, cost=0.0,
                                     seconds=time.perf_counter() - t0)
        stored[item.prompt] = {"reply": text, "right": ok, "signals": signals,
                               "finish_reason": finish, "seconds": time.perf_counter() - t0}
        done += 1
        right += ok
    if on_progress is not None:
        on_progress(Progress("local", done, len(items), right, resumed))
    local = {it.prompt: mark(it, stored[it.prompt]["reply"]) for it in items}
    remote_answers: dict[str, dict[str, Any]] = {}
    remote_note = None
    spent = 0.0
    if remote is not None:
        remote_answers, spent, remote_note = await _ask_remote(
            store, hub, remote, budget or 0.0,
            [it for it in items if not local[it.prompt]], on_progress)
    marks = _labels(items, local, remote_answers)
    answers = [Answer(it.prompt, stored[it.prompt]["reply"], stored[it.prompt]["finish_reason"],
                      stored[it.prompt]["signals"], local[it.prompt]) for it in items]
    fit, scores = fit_calibration(answers, marks, model)
    fit.fingerprint, fit.created_at = fp, time.time()
    labels = [r for _, r in marks]
    calibration = Calibration(
        model=model, fingerprint=fp, fit=fit, prompts=len(items), resumed=resumed,
        asked=len(items) - resumed, local_right=sum(local.values()) / len(items),
        remote=remote, remote_asked=len(remote_answers),
        remote_right=sum(a["right"] for a in remote_answers.values()),
        remote_note=remote_note, spent=spent,
        seconds=sum(float(stored[it.prompt].get("seconds") or 0.0) for it in items),
        loo_apgr=apgr(curve(scores, labels)),
        kept_local=sum(s < fit.threshold for s in scores) / len(scores))
    if remote is None:
        calibration.notes.append("no remote model asked: it counts as right on every prompt")
    store.save_router_fit(model, fp, fit.to_json(), marks, calibration.to_dict())
    return calibration


async def ask(provider: Provider, prompt: str,
              max_tokens: int | None = None) -> tuple[str, str | None, dict[str, float] | None]:
    """Ask a local model one suite prompt as a calibration does (the suite's request,
    with token probabilities): its reply, finish reason and `answer_signals`. A prompt
    longer than the model's context is an empty answer ("too_long"), marked wrong, not
    an abort."""
    request = request_for(prompt, max_tokens or request_for("").max_tokens)
    request = ModelRequest(request.messages, temperature=request.temperature,
                           max_tokens=request.max_tokens, seed=request.seed,
                           top_logprobs=CONFIDENCE_TOP_LOGPROBS)
    try:
        response = await collect(provider, request)
    except PromptTooLong:
        return "", "too_long", None
    return response.text, response.finish_reason, answer_signals(response.logprobs,
                                                                 response.finish_reason)


def _labels(items: list[SuiteItem], local: dict[str, bool],
            remote: dict[str, dict[str, Any]]) -> list[tuple[str, bool]]:
    """(prompt, keep it local): the local answer was right, or the remote one was
    asked and was wrong too (sending it would gain nothing)."""
    return [(it.prompt, local[it.prompt] or (it.prompt in remote and
                                             not remote[it.prompt]["right"])) for it in items]


async def _ask_remote(store: Store, hub: ModelHub, remote: str, budget: float,
                      items: list[SuiteItem],
                      on_progress: Callable[[Progress], None] | None
                      ) -> tuple[dict[str, dict[str, Any]], float, str | None]:
    """The remote model's answers to `items`, stored one by one (under its own name, so
    they serve any local model), until `budget` USD is spent."""
    from podium.core.models.caller import call_with_retries

    key = f"remote:{remote}"
    stored = store.calibration_answers(key, remote)
    spent = sum(float(a["cost"] or 0.0) for a in stored.values())
    provider = hub.providers.get(remote)
    spec = hub.specs[remote]
    note = None
    if provider is None:
        why = hub.unavailable.get(remote, "it cannot be used here")
        raise PodiumError(f"remote model '{remote}' cannot be asked: {why}",
                          "check `podium models --check`")
    got = {it.prompt: stored[it.prompt] for it in items if it.prompt in stored}
    resumed = len(got)
    for item in items:
        if item.prompt in got:
            continue
        if spent >= budget:
            note = (f"the ${budget:g} budget was spent after {len(got)} of {len(items)} "
                    "prompts; on the rest the remote model counts as right")
            break
        if on_progress is not None:
            on_progress(Progress("remote", len(got), len(items),
                                 sum(a["right"] for a in got.values()), resumed, spent))
        t0 = time.perf_counter()
        try:
            response = await call_with_retries(provider, request_for(item.prompt), None,
                                               hub.limiter(remote), hub.call_timeout(remote))
        except ProviderError as e:
            note = (f"{remote} failed after {len(got)} of {len(items)} prompts "
                    f"({e.message}); on the rest it counts as right")
            break
        cost = spec.cost(response.usage.input_tokens, response.usage.output_tokens)
        spent += cost
        ok = mark(item, response.text)
        store.add_calibration_answer(key, remote, remote, item.prompt, response.text, ok,
                                     signals=None, finish_reason=response.finish_reason,
                                     cost=cost, seconds=time.perf_counter() - t0)
        got[item.prompt] = {"reply": response.text, "right": ok, "cost": cost}
    if on_progress is not None:
        on_progress(Progress("remote", len(got), len(items),
                             sum(a["right"] for a in got.values()), resumed, spent))
    return got, spent, note


# --- the fit routing uses -----------------------------------------------------------------


def stored_fit(row: dict[str, Any]) -> RouterFit:
    """A fit from the store's row (`Store.router_fit`)."""
    data = {**row["fit"], "model": row["model"], "fingerprint": row["fingerprint"],
            "created_at": row["created_at"]}
    return RouterFit.from_json(data, [Example(p, bool(r)) for p, r in row["examples"]])


def calibration_state(store: Store | None, name: str, spec: ModelSpec,
                      now: float | None = None) -> tuple[str, RouterFit | None, str | None]:
    """How `name` stands: ("calibrated" | "stale" | "shipped" | "none", its stored fit
    when calibrated, and a note for the reasons when the shipped fit stands in)."""
    now = now or time.time()
    fp = model_fingerprint(spec)
    if fp is None:
        return "none", None, None
    row = store.router_fit(fingerprint=fp) if store is not None else None
    if row is not None:
        return "calibrated", stored_fit(row), None
    old = store.router_fit(model=name) if store is not None else None
    if old is not None:
        return "stale", None, (
            f"the calibration of {name} ({age_text(now - old['created_at'])} old) is stale: "
            "its model file changed since, so the shipped fit for the embedded model "
            f"serves; run `podium calibrate --model {name}`")
    if name == EMBEDDED_MODEL:
        shipped = shipped_fit()
        if shipped.fingerprint and shipped.fingerprint != fp:
            return "shipped", None, ("the embedded model's file differs from the one the "
                                     "shipped fit was made on; run `podium calibrate`")
        return "shipped", None, None
    return "none", None, (f"{name} is not calibrated, so the shipped fit for the embedded "
                          f"model serves; run `podium calibrate --model {name}`")


def model_fingerprint(spec: ModelSpec) -> str | None:
    """The fingerprint of a local model's file (None: not a local model, or no file)."""
    if spec.provider != "llamacpp" or not spec.path or not Path(spec.path).exists():
        return None
    return fingerprint(spec.path)


def active_fit(store: Store | None, settings: Settings) -> RouterFit:
    """The router fit of the local model configured, with this store's judged
    comparisons (a verdict of `local` or `both` marks the local answer right) and the
    outcomes runs saw of this model file's answers."""
    name = settings.default_model
    spec = settings.catalog()[name]
    _, fit, note = calibration_state(store, name, spec)
    base = fit or shipped_fit()
    fp = model_fingerprint(spec)
    extra = judged_examples(store) if store is not None else []
    if store is not None and fp is not None:
        extra += [Example(p, right, seen=source) for p, right, source
                  in store.route_outcomes(fp, MAX_SEEN // 2)]
    if not extra and note is None:
        return base
    return base.with_examples(extra, note)


def outcome_keeper(store: Store, settings: Settings) -> Callable[[Example, str], None] | None:
    """What `ModelHub.on_outcome` calls: keeps an outcome in `store`, under the model
    file of the local model configured (None: no file to tie it to)."""
    name = settings.default_model
    fp = model_fingerprint(settings.catalog()[name])
    if fp is None:
        return None
    def keep(example: Example, run_id: str) -> None:
        # The lookup reads an ask's head only; a long document need not be kept whole.
        store.add_route_outcome(fp, name, example.prompt[:MAX_CHARS], example.local_right,
                                example.seen or "run", run_id, keep=MAX_SEEN)

    return keep


def judged_examples(store: Store) -> list[Example]:
    """A person's verdicts on compared steps, one per prompt (the latest: judging an
    ask again corrects it)."""
    latest = {p["prompt"]: p["verdict"] for p in store.judged_pairs() if p["prompt"].strip()}
    return [Example(prompt, verdict in ("local", "both"), judged=True)
            for prompt, verdict in latest.items()]


def review_learner(store: Store, settings: Settings) -> Callable[[str, str, bool, str],
                                                                 None] | None:
    """What a person's decision teaches the router when no engine is at hand (`podium
    review` records it, and a later process loads it): keeps it for the local model
    configured, as `Engine.decide` does through `ModelHub.learn`."""
    keep = outcome_keeper(store, settings)
    if keep is None:
        return None

    def learn(model: str, ask: str, right: bool, run_id: str) -> None:
        if model == settings.default_model:
            keep(Example(ask, right, seen="review"), run_id)

    return learn
