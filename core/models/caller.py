"""One model caller for every model call Podium makes: a step's, a chat turn's, a
comparison's, an agent's. It routes (heuristic, judge, cascade, pinned model, privacy,
budget), falls back along the model's chain, retries under the one retry policy and
the model's rate and time limits, and counts tokens and cost (for the owner and the
budget). Providers only turn a request into text; all of this policy lives here.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from podium.core.errors import CallTimedOut, ConfigError, ProviderError, StepError
from podium.core.models import answer_checks
from podium.core.models.hub import ModelHub, RateLimiter
from podium.core.models.provider import (
    Message,
    ModelRequest,
    ModelResponse,
    Provider,
    Tool,
    Usage,
    collect,
)
from podium.core.models.router_fit import cascade_of
from podium.core.models.routing import (
    CONFIDENCE_TOP_LOGPROBS,
    JUDGE_CHOICES,
    JUDGE_THRESHOLD,
    Decision,
    Policy,
    answer_confidence,
    decide,
    judge_request,
    judged_complex,
)
from podium.core.recipe import templates
from podium.core.recipe.schema import ModelOptions
from podium.core.retry import CALL_POLICY, RetryPolicy


@dataclass
class ModelCaller:
    """Makes the model calls of one owner (a step attempt, a chat turn, a comparison)
    and keeps what they cost. `run_id` is whose budget they count against; `values`
    the template context a cascade's `verify` reads; `attempt` > 1 varies the seed so
    a retried deterministic call does not repeat its failure."""

    hub: ModelHub
    run_id: str
    values: dict[str, Any] = field(default_factory=dict)
    on_text: Callable[[str], None] | None = None
    # What a person watching should know while nothing streams: a wait, a retry, a
    # fallback ("retrying big in 2.0 s: ...", "fell back to smollm2: cannot connect").
    on_note: Callable[[str], None] | None = None
    attempt: int = 1
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    decisions: list[Decision] = field(default_factory=list)
    answered: list[str] = field(default_factory=list)  # models that actually answered
    failed: dict[str, ProviderError] = field(default_factory=dict)  # fallen back from, why

    async def generate(self, options: ModelOptions, messages: list[Message], *,
                       schema: dict[str, Any] | None = None, temperature: float | None = None,
                       max_tokens: int | None = None, seed: int | None = None,
                       model: str | None = None, stream: bool = True,
                       top_logprobs: int = 0,
                       used: list[Decision] | None = None,
                       tools: tuple[Tool, ...] = ()) -> ModelResponse:
        """Route and run one model call, adding its usage and cost to this step;
        `top_logprobs` asks for token probabilities (the cascade's local call); the
        decision that answered is appended to `used`, for a caller that adds reasons
        (calls of one step may run at once, as a map's items do); `tools` are offered
        to a model that calls them natively (an agent's turn)."""
        if options.route == "cascade" and not (model or options.model):
            return await self._cascade(options, messages, schema=schema,
                                       temperature=temperature, max_tokens=max_tokens,
                                       seed=seed, stream=stream)
        judged = None
        if options.route == "judge" and not (model or options.model):
            route, judged = await self._judge(messages)
            options = options.model_copy(update={"route": route})
        provider, decision = self.route(options, messages, schema, model=model,
                                        max_tokens=max_tokens)
        if judged is not None:
            decision = self._amend(decision, Decision(decision.model, decision.tier,
                                                      decision.score,
                                                      (judged,) + decision.reasons))
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
            top_logprobs=top_logprobs,
            tools=tools,
        )
        on_text = self.on_text if stream else None
        routed = not (model or options.model)
        chain = [decision.model] + self.hub.fallbacks(decision.model, list(options.fallbacks),
                                                      routed=routed)
        if decision.tier == "local" and (options.privacy == "local" or
                                         self.hub.budget.exceeded(self.run_id)):
            # A private (or over-budget) call must not leave the machine by falling back.
            chain = [m for m in chain if m in self.hub.providers and
                     self.hub.providers[m].tier == "local"]
        for i, name in enumerate(chain):
            current = self.hub.providers.get(name)
            if current is None:
                continue
            try:
                response = await call_with_retries(current, request, on_text,
                                                   self.hub.limiter(name),
                                                   self.hub.call_timeout(name),
                                                   on_note=self.on_note)
            except ProviderError as e:
                self.failed[name] = e
                following = [m for m in chain[i + 1:] if m in self.hub.providers]
                if not following:
                    raise
                nxt = following[0]
                if self.on_note is not None:
                    self.on_note(f"fell back to {nxt}: {e.message}")
                decision = Decision(nxt, self.hub.providers[nxt].tier, decision.score,
                                    decision.reasons + (f"fell back from {name}: {e.message}",))
                self.decisions.append(decision)
                continue
            self.account(decision, response.usage)
            if used is not None:
                used.append(decision)
            return response
        raise ConfigError("no model could be called", "check `podium models`")

    def route(self, options: ModelOptions, messages: list[Message],
              schema: dict[str, Any] | None = None, *, model: str | None = None,
              max_tokens: int | None = None) -> tuple[Provider, Decision]:
        """Pick the provider for a call under the step's policy."""
        request = ModelRequest(messages=tuple(messages), schema=schema,
                               max_tokens=max_tokens or options.max_tokens)
        route = "auto" if options.route in ("cascade", "judge") else options.route
        policy = Policy(route=route, model=model or options.model, privacy=options.privacy)
        decision = decide(request, policy, self.hub.tiers(), self.hub.default_local,
                          unavailable=self.hub.unavailable, explain=False,
                          fit=self.hub.fit)
        spent = self.hub.budget.exceeded(self.run_id)
        if decision.tier == "remote" and spent and not (model or options.model):
            decision = Decision(self.hub.default_local, "local", decision.score,
                                decision.reasons + (spent + ": stays local",))
        provider = self.hub.providers.get(decision.model)
        if provider is None:
            raise ConfigError(f"model '{decision.model}' has no provider",
                              "check `podium models`")
        self.decisions.append(decision)
        return provider, decision

    def account(self, decision: Decision, usage: Usage) -> None:
        """Add a call's usage and cost (to the step and to the budget)."""
        self.usage = self.usage + usage
        self.answered.append(decision.model)
        spec = self.hub.specs.get(decision.model)
        cost = spec.cost(usage.input_tokens, usage.output_tokens) if spec is not None else 0.0
        self.cost += cost
        self.hub.budget.add(self.run_id, cost, usage.input_tokens + usage.output_tokens)

    async def _cascade(self, options: ModelOptions, messages: list[Message], *,
                       schema: dict[str, Any] | None, temperature: float | None,
                       max_tokens: int | None, seed: int | None,
                       stream: bool) -> ModelResponse:
        """Local first; escalate to a remote model when the local answer fails a check:
        empty, cut off or invalid JSON, false arithmetic, a missed sum, a loop
        (`core.answer_checks`), the recipe's own `verify` expression is false, or its
        own token probabilities say it is likely wrong (skipped when the backend gives
        none). What the checks and `verify` found is an outcome the router learns
        from (`ModelHub.learn`); the confidence, the router's own guess, is not."""
        kw: dict[str, Any] = dict(schema=schema, temperature=temperature,
                                  max_tokens=max_tokens, seed=seed, stream=stream)
        used: list[Decision] = []
        local = await self.generate(options.model_copy(update={"route": "local"}),
                                    messages, top_logprobs=CONFIDENCE_TOP_LOGPROBS,
                                    used=used, **kw)
        request = ModelRequest(messages=tuple(messages), schema=schema,
                               max_tokens=max_tokens or options.max_tokens)
        confidence = answer_confidence(request, local.logprobs, local.finish_reason,
                                       self.hub.fit)
        ask = next((m.content for m in reversed(messages) if m.role == "user"), "")
        minimum = cascade_of(self.hub.fit).min_confidence
        first = used[-1]
        checked = answer_checks.problem(ask, local.text, local.finish_reason, schema)
        verified, clean = (None, False) if checked else self._verify(options, local.text,
                                                                     schema)
        if first.model == self.hub.default_local:  # what the router's fit describes
            # Learnt: a clean verdict of `verify`, a failed check. Not an answer cut off
            # (the step's max_tokens may be what was short), nor a verify that could
            # not be evaluated.
            if checked and local.finish_reason != "length":
                self.hub.learn(ask, False, "check", self.run_id)
            elif clean:
                self.hub.learn(ask, verified is None, "verify", self.run_id)
        problem = checked or verified or low_confidence(confidence, minimum)
        remote = [m for m, t in self.hub.tiers().items() if t == "remote"]
        if problem is None or not remote or options.privacy == "local":
            notes = ("cascade: the local answer passed",
                     confidence_note(confidence, first.model, minimum)) if problem is None else (
                f"cascade: the local answer {problem}, but "
                + ("privacy = local keeps it on this machine" if options.privacy == "local"
                   else "no remote model is available to escalate to"),)
            self._amend(first, Decision(first.model, first.tier, first.score,
                                        first.reasons + notes))
            return local
        answer = await self.generate(options.model_copy(update={"route": "remote"}),
                                     messages, used=used, **kw)
        last = used[-1]
        self._amend(last, Decision(last.model, last.tier, last.score, last.reasons + (
            f"cascade: escalated because the local answer {problem}",)))
        return answer

    def _amend(self, old: Decision, new: Decision) -> Decision:
        """Put `new` in the place of `old` among this step's decisions (found by
        identity: other calls of the step may have appended theirs since)."""
        for i in range(len(self.decisions) - 1, -1, -1):
            if self.decisions[i] is old:
                self.decisions[i] = new
                break
        return new

    def _verify(self, options: ModelOptions, text: str,
                schema: dict[str, Any] | None) -> tuple[str | None, bool]:
        """The recipe's own check of a local answer (`verify`): what failed (None: it
        passed, or there is no `verify`), and whether it gave a clean verdict. Names
        were checked when the recipe loaded, so an error here comes from the answer's
        shape (a string where a number was meant): that fails the check too, though
        not cleanly."""
        if not options.verify:
            return None, False
        answer: Any = json.loads(text) if schema is not None else text  # checked: JSON
        try:
            if templates.evaluate(options.verify, {**self.values, "answer": answer},
                                  what="verify"):
                return None, True
        except StepError as e:
            return f"could not be checked by verify ({e.message})", False
        return f"failed the recipe's check (verify = {options.verify!r})", True

    async def _judge(self, messages: list[Message]) -> tuple[str, str | None]:
        """Ask the local model whether the request is simple or complex: the route
        ('local' or 'remote') and why. Without a scoring local model, the heuristic
        decides ('auto', None)."""
        from podium.core.models.provider import ChoiceScorer

        local = self.hub.providers.get(self.hub.default_local)
        if not isinstance(local, ChoiceScorer):
            return "auto", None
        ask = next((m.content for m in reversed(messages) if m.role == "user"), "")
        logps, usage = await local.score_choices(judge_request(ask), list(JUDGE_CHOICES))
        self.usage = self.usage + usage
        p = judged_complex(logps)
        verdict = "complex" if p >= JUDGE_THRESHOLD else "simple"
        return ("remote" if verdict == "complex" else "local",
                f"judge: {local.name} rates the request {verdict} "
                f"(P(complex) {p:.2f}, threshold {JUDGE_THRESHOLD})")


def cascade_problem(ask: str, text: str, schema: dict[str, Any] | None,
                    finish_reason: str | None, confidence: float | None = None,
                    minimum: float | None = None) -> str | None:
    """What is wrong with a local answer to `ask`, for `route = "cascade"`; None if
    nothing. The checks a program can make come first (`core.answer_checks`); then
    `confidence`, the `answer_confidence` of it (None: no token probabilities, not
    checked), against `minimum` (None: the shipped fit's).
    (A recipe's `verify` sits between the two, in `StepContext._cascade`.)"""
    return answer_checks.problem(ask, text, finish_reason, schema) or low_confidence(
        confidence, cascade_of(None).min_confidence if minimum is None else minimum)


def low_confidence(confidence: float | None, minimum: float) -> str | None:
    """The cascade's confidence check: what is wrong, or None (also when not checked)."""
    if confidence is not None and confidence < minimum:
        return f"had low confidence: {confidence:.2f} (< {minimum:.3g})"
    return None


def confidence_note(confidence: float | None, model: str, minimum: float) -> str:
    """How the confidence check went, for a passed answer's reasons."""
    if confidence is None:
        return f"cascade: confidence not checked ({model} gave no token probabilities)"
    return f"cascade: the local answer's confidence was {confidence:.2f} " \
           f"(>= {minimum:.3g})"


async def call_with_retries(provider: Provider, request: ModelRequest,
                            on_text: Callable[[str], None] | None,
                            limiter: RateLimiter | None = None,
                            timeout: float | None = None,
                            policy: RetryPolicy = CALL_POLICY, *,
                            on_note: Callable[[str], None] | None = None) -> ModelResponse:
    """One call, under the model's request rate, retried by `policy` (which honours
    Retry-After up to a cap, so a long wait becomes a fallback instead). `timeout`
    bounds the whole call, its retries and their waits included: a server that never
    answers costs one timeout, not one per try, and a wait that would end past it is
    not taken (the error stands at once)."""
    loop = asyncio.get_running_loop()
    deadline: float | None = None
    tries = 0
    last: ProviderError | None = None  # what the tries before this one ended in
    while True:
        try:
            if limiter is not None and tries == 0:
                await limiter.acquire()  # our own pacing, before the clock starts
            if timeout is None:
                return await collect(provider, request, on_text, on_note)
            if deadline is None:
                deadline = loop.time() + timeout
            try:
                async with asyncio.timeout_at(deadline):
                    if limiter is not None and tries > 0:
                        await limiter.acquire()
                    return await collect(provider, request, on_text, on_note)
            except TimeoutError:
                raise CallTimedOut(f"{provider.name}: no complete answer in {timeout:g} s"
                                   + (f" ({tries + 1} tries; before: {last.message})"
                                      if last is not None else ""),
                                   f"raise `timeout` under [models.{provider.name}] in "
                                   "config.toml, or add a fallback model") from None
        except ProviderError as e:
            last = e
            delay = policy.delay(tries, e)
            if delay is None:
                raise
            if deadline is not None and loop.time() + delay >= deadline:
                raise  # the wait alone would pass the model's timeout
            tries += 1
            if on_note is not None:
                on_note(f"retrying {provider.name} in {delay:.1f} s: {e.message}")
            await asyncio.sleep(delay)
