"""The models a front end hands to the engine, and the limits shared by every call
to them: fallback chains, spending budgets and request rates."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import ModelSpec
from core.provider import Provider


@dataclass
class Budget:
    """Spending caps in USD. Past a cap, routing keeps calls on this machine."""

    per_run: float | None = None
    per_day: float | None = None
    spent_today: float = 0.0  # before this process started, from the store
    spent_runs: dict[str, float] = field(default_factory=dict)

    def add(self, run_id: str, cost: float) -> None:
        """Count a call's cost."""
        self.spent_runs[run_id] = self.spent_runs.get(run_id, 0.0) + cost
        self.spent_today += cost

    def exceeded(self, run_id: str) -> str | None:
        """Why remote calls must stop for `run_id`, or None."""
        run = self.spent_runs.get(run_id, 0.0)
        if self.per_run is not None and run >= self.per_run:
            return f"budget: ${run:.4f} of ${self.per_run:.4f} per run spent"
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
    _limiters: dict[str, RateLimiter] = field(default_factory=dict)

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
