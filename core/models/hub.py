"""The models a front end hands to the engine, and the limits shared by every call
to them: fallback chains, spending budgets and request rates."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from podium.core.config import ModelSpec, Settings
from podium.core.errors import PodiumError
from podium.core.models.neighbours import Example
from podium.core.models.provider import Provider
from podium.core.models.router_fit import RouterFit, shipped_fit

log = logging.getLogger(__name__)


@dataclass
class Budget:
    """Spending caps. Past the daily cap, routing keeps calls on this machine; past a
    run's cap (USD or tokens) the engine pauses the run at a budget review, where a
    person raises the cap, keeps the rest local, or stops the run."""

    per_run: float | None = None
    per_day: float | None = None
    tokens_per_run: int | None = None
    spent_today: float = 0.0  # before this process started, from the store
    spent_runs: dict[str, float] = field(default_factory=dict)
    tokens_runs: dict[str, int] = field(default_factory=dict)
    caps: dict[str, tuple[float | None, int | None]] = field(default_factory=dict)
    local_runs: set[str] = field(default_factory=set)  # a person chose: the rest local
    stopped_runs: set[str] = field(default_factory=set)  # a person chose: stop
    applied: dict[str, set[int]] = field(default_factory=dict)  # reviews taken in, per run

    @classmethod
    def from_settings(cls, settings: Settings, spent_today: float) -> Budget:
        """The caps config.toml sets, with what was spent today before this process."""
        return cls(settings.budget_per_run, settings.budget_per_day, settings.tokens_per_run,
                   spent_today=spent_today)

    def start(self, run_id: str, *, usd: float | None, tokens: int | None, spent: float,
              used: int) -> None:
        """Track a run (started or resumed) with its caps and what it spent so far."""
        self.caps[run_id] = (usd if usd is not None else self.per_run,
                             tokens if tokens is not None else self.tokens_per_run)
        self.spent_runs[run_id] = spent
        self.tokens_runs[run_id] = used
        self.applied[run_id] = set()  # the answers are taken in again, onto these caps
        self.local_runs.discard(run_id)
        self.stopped_runs.discard(run_id)

    def capped(self, run_id: str) -> bool:
        """Whether the run has a cap to watch."""
        usd, tokens = self.caps.get(run_id, (self.per_run, self.tokens_per_run))
        return usd is not None or tokens is not None or run_id in self.stopped_runs

    def add(self, run_id: str, cost: float, tokens: int = 0) -> None:
        """Count a call's cost and tokens."""
        self.spent_runs[run_id] = self.spent_runs.get(run_id, 0.0) + cost
        self.tokens_runs[run_id] = self.tokens_runs.get(run_id, 0) + tokens
        self.spent_today += cost

    def over(self, run_id: str) -> dict[str, Any] | None:
        """The run's cap it has reached, as {what, spent, cap}, or None."""
        usd, tokens = self.caps.get(run_id, (self.per_run, self.tokens_per_run))
        spent = self.spent_runs.get(run_id, 0.0)
        if usd is not None and spent >= usd and run_id not in self.local_runs:
            return {"what": "cost", "spent": round(spent, 6), "cap": usd}
        used = self.tokens_runs.get(run_id, 0)
        if tokens is not None and used >= tokens:
            return {"what": "tokens", "spent": used, "cap": tokens}
        return None

    def take(self, review_id: int, run_id: str, action: str | None, what: str | None,
             amount: float | None) -> None:
        """Apply a person's answer to a budget review (once)."""
        taken = self.applied.setdefault(run_id, set())
        if review_id in taken:
            return
        taken.add(review_id)
        usd, tokens = self.caps.get(run_id, (self.per_run, self.tokens_per_run))
        if action == "local":
            self.local_runs.add(run_id)
        elif action == "stop":
            self.stopped_runs.add(run_id)
        elif what == "tokens" and tokens is not None:
            self.caps[run_id] = (usd, tokens + int(amount if amount else tokens))
        elif usd is not None:
            self.caps[run_id] = (usd + (amount if amount else usd or 0.0), tokens)

    def exceeded(self, run_id: str) -> str | None:
        """Why remote calls must stop for `run_id`, or None."""
        run = self.spent_runs.get(run_id, 0.0)
        if run_id in self.local_runs:
            return "budget: a person chose to keep the rest of this run local"
        usd = self.caps.get(run_id, (self.per_run, None))[0]
        if usd is not None and run >= usd:
            return f"budget: ${run:.4f} of ${usd:.4f} per run spent"
        if self.per_day is not None and self.spent_today >= self.per_day:
            return f"budget: ${self.spent_today:.4f} of ${self.per_day:.4f} per day spent"
        return None


class RateLimiter:
    """At most `rpm` starts per minute, spread evenly (a token bucket of one)."""

    def __init__(self, rpm: float) -> None:
        self.interval = 60.0 / rpm
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait for this call's turn."""
        async with self._lock:
            now = time.monotonic()
            wait = self._next - now
            self._next = max(now, self._next) + self.interval
        if wait > 0:
            await asyncio.sleep(wait)


@dataclass
class ModelHub:
    """The providers a front end handed to the engine, with their catalog entries."""

    providers: Mapping[str, Provider]
    specs: Mapping[str, ModelSpec]
    default_local: str
    unavailable: Mapping[str, str] = field(default_factory=dict)  # model -> why not
    resources: list[Any] = field(default_factory=list)  # things with `aclose()`, e.g. a client
    budget: Budget = field(default_factory=Budget)
    # The router fit of the local model configured (None: the shipped one), with this
    # machine's judged comparisons, found by the front end (`core.calibrate.active_fit`).
    fit: RouterFit | None = None
    # Where an outcome seen at run time is kept, so later processes learn from it too
    # (the front end's store; None: this process only). Called with the example and
    # the run it came from.
    on_outcome: Callable[[Example, str], None] | None = None
    _limiters: dict[str, RateLimiter] = field(default_factory=dict)
    _learning: RouterFit | None = None  # this hub's own copy of `fit`, once it learns

    def learn(self, prompt: str, right: bool, source: str, run_id: str) -> None:
        """An outcome of the default local model seen at run time (`Example.seen`):
        the router takes it as an example at once, and `on_outcome` keeps it. Keeping
        it is a side job: a store that fails (locked, full) costs the outcome, never
        the step."""
        if not prompt.strip():
            return
        if self.fit is None or self.fit is not self._learning:
            # A fit may be shared (the shipped one by every hub): learn on a copy.
            self.fit = self._learning = (self.fit or shipped_fit()).with_examples([])
        example = Example(prompt, right, seen=source)
        if not self.fit.learn(example) or self.on_outcome is None:
            return
        try:
            self.on_outcome(example, run_id)
        except (PodiumError, sqlite3.Error) as e:
            log.warning("an outcome of run %s was not kept: %s", run_id, e)

    def tiers(self) -> dict[str, Any]:
        """Model name -> tier, for the models that have a provider."""
        return {name: p.tier for name, p in self.providers.items()}

    def limiter(self, model: str) -> RateLimiter | None:
        """The request-rate limiter of `model`, if its spec sets `rpm`."""
        spec = self.specs.get(model)
        if spec is None or spec.rpm is None:
            return None
        if model not in self._limiters:
            self._limiters[model] = RateLimiter(spec.rpm)
        return self._limiters[model]

    def pace(self, model: str, limiter: RateLimiter) -> None:
        """Pace `model` with `limiter` instead of a limiter of this process: one shared
        by every process of a cluster holds its `rpm` across all of them."""
        self._limiters[model] = limiter

    def call_timeout(self, model: str) -> float | None:
        """Seconds one whole call to `model` may take; None for in-process models,
        which cannot hang on a network and stop at max_tokens (a step's own
        `timeout` still applies)."""
        spec = self.specs.get(model)
        if spec is None or spec.provider == "llamacpp":
            return None
        return spec.timeout

    def fallbacks(self, model: str, extra: list[str], *, routed: bool = True) -> list[str]:
        """The models to try after `model`, in order: the step's, the catalog's, and for
        a remote model that routing chose (not one the step named) finally the default
        local one."""
        spec = self.specs.get(model)
        chain = list(extra) + (list(spec.fallbacks) if spec else [])
        provider = self.providers.get(model)
        if routed and provider is not None and provider.tier == "remote":
            chain.append("local")  # no network, no quota: this machine still answers
        names = [self.default_local if m == "local" else m for m in chain]
        return [m for m in dict.fromkeys(names) if m != model]

    async def aclose(self) -> None:
        """Release shared resources (the HTTP client) inside the loop that used them."""
        for resource in self.resources:
            await resource.aclose()
        self.resources.clear()
