"""What a step runner receives (`StepContext`) and returns (`StepResult`)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import ModelSpec
from core.errors import ConfigError, ProviderError, RateLimited
from core.provider import Message, ModelRequest, ModelResponse, Provider, Usage, collect
from core.recipe import ModelOptions
from core.routing import Decision, Policy, decide


@dataclass
class StepResult:
    """A step's output and what it cost."""

    output: Any
    chosen: frozenset[str] | None = None  # for branch: the steps it lets run


@dataclass
class ModelHub:
    """The providers a front end handed to the engine, with their catalog entries."""

    providers: Mapping[str, Provider]
    specs: Mapping[str, ModelSpec]
    default_local: str
    unavailable: Mapping[str, str] = field(default_factory=dict)  # model -> why not
    resources: list[Any] = field(default_factory=list)  # things with `aclose()`, e.g. a client

    async def aclose(self) -> None:
        """Release shared resources (the HTTP client) inside the loop that used them."""
        for resource in self.resources:
            await resource.aclose()
        self.resources.clear()

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

    def tiers(self) -> dict[str, Any]:
        """Model name -> tier, for the models that have a provider."""
        return {name: p.tier for name, p in self.providers.items()}


@dataclass
class StepContext:
    """Everything one attempt of one step may use. No global state, so steps can run
    anywhere (a thread, another process) given a context."""

    run_id: str
    step_id: str
    values: dict[str, Any]  # template context: inputs, steps
    hub: ModelHub
    on_text: Callable[[str], None] | None = None
    attempt: int = 1
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    decisions: list[Decision] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # models that actually answered

    async def generate(self, options: ModelOptions, messages: list[Message], *,
                       schema: dict[str, Any] | None = None, temperature: float | None = None,
                       max_tokens: int | None = None, seed: int | None = None,
                       model: str | None = None, stream: bool = True) -> ModelResponse:
        """Route and run one model call, adding its usage and cost to this step."""
        provider, decision = self.route(options, messages, schema, model=model,
                                        max_tokens=max_tokens)
        seed = options.seed if seed is None else seed
        temperature = options.temperature if temperature is None else temperature
        if self.attempt > 1:  # a retry of a deterministic call must not repeat the failure
            seed = (seed or 0) + 7919 * (self.attempt - 1)
            temperature = max(temperature, 0.3)
        request = ModelRequest(
            messages=tuple(messages),
            temperature=temperature,
            max_tokens=max_tokens or options.max_tokens,
            schema=schema,
            seed=seed,
            stop=tuple(options.stop),
        )
        on_text = self.on_text if stream else None
        routed = not (model or options.model)
        chain = [decision.model] + self.hub.fallbacks(decision.model, list(options.fallbacks),
                                                      routed=routed)
        for i, name in enumerate(chain):
            current = self.hub.providers.get(name)
            if current is None:
                continue
            try:
                response = await call_with_retries(current, request, on_text)
            except ProviderError as e:
                following = [m for m in chain[i + 1:] if m in self.hub.providers]
                if not following:
                    raise
                nxt = following[0]
                decision = Decision(nxt, self.hub.providers[nxt].tier, decision.score,
                                    decision.reasons + (f"fell back from {name}: {e.message}",))
                self.decisions.append(decision)
                continue
            self.account(decision, response.usage)
            return response
        raise ConfigError("no model could be called", "check `podium models`")

    def route(self, options: ModelOptions, messages: list[Message],
              schema: dict[str, Any] | None = None, *, model: str | None = None,
              max_tokens: int | None = None) -> tuple[Provider, Decision]:
        """Pick the provider for a call under the step's policy."""
        request = ModelRequest(messages=tuple(messages), schema=schema,
                               max_tokens=max_tokens or options.max_tokens)
        policy = Policy(route=options.route, model=model or options.model,
                        privacy=options.privacy)
        decision = decide(request, policy, self.hub.tiers(), self.hub.default_local,
                          unavailable=self.hub.unavailable)
        provider = self.hub.providers.get(decision.model)
        if provider is None:
            raise ConfigError(f"model '{decision.model}' has no provider",
                              "check `podium models`")
        self.decisions.append(decision)
        return provider, decision

    def account(self, decision: Decision, usage: Usage) -> None:
        """Add a call's usage and cost."""
        self.usage = self.usage + usage
        self.answered.append(decision.model)
        spec = self.hub.specs.get(decision.model)
        if spec is not None:
            self.cost += spec.cost(usage.input_tokens, usage.output_tokens)


CALL_RETRIES = 2
MAX_WAIT_S = 30.0


async def call_with_retries(provider: Provider, request: ModelRequest,
                            on_text: Callable[[str], None] | None) -> ModelResponse:
    """One call, retried on retryable errors with jittered exponential backoff that
    honours Retry-After (capped, so a long wait becomes a fallback instead)."""
    for attempt in range(CALL_RETRIES + 1):
        try:
            return await collect(provider, request, on_text)
        except ProviderError as e:
            if not e.retryable or attempt == CALL_RETRIES:
                raise
            delay = 0.25 * 2**attempt * (0.5 + random.random())
            if isinstance(e, RateLimited) and e.retry_after is not None:
                if e.retry_after > MAX_WAIT_S:
                    raise
                delay = max(delay, e.retry_after)
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")
