"""What a step runner receives (`StepContext`) and returns (`StepResult`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from core.config import ModelSpec
from core.errors import ConfigError
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
        response = await collect(provider, request, self.on_text if stream else None)
        self.account(decision, response.usage)
        return response

    def route(self, options: ModelOptions, messages: list[Message],
              schema: dict[str, Any] | None = None, *, model: str | None = None,
              max_tokens: int | None = None) -> tuple[Provider, Decision]:
        """Pick the provider for a call under the step's policy."""
        request = ModelRequest(messages=tuple(messages), schema=schema,
                               max_tokens=max_tokens or options.max_tokens)
        policy = Policy(route=options.route, model=model or options.model)
        decision = decide(request, policy, self.hub.tiers(), self.hub.default_local)
        provider = self.hub.providers.get(decision.model)
        if provider is None:
            raise ConfigError(f"model '{decision.model}' has no provider",
                              "check `podium models`")
        self.decisions.append(decision)
        return provider, decision

    def account(self, decision: Decision, usage: Usage) -> None:
        """Add a call's usage and cost."""
        self.usage = self.usage + usage
        spec = self.hub.specs.get(decision.model)
        if spec is not None:
            self.cost += spec.cost(usage.input_tokens, usage.output_tokens)
