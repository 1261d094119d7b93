"""`route = "cascade"` judged by the local answer's own token probabilities: the
embedded model reports them, the engine asks for them only on the cascade's local
call, and escalates on low confidence, saying the figure in the step's reasons."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bench.calibration.build import SYSTEM
from bench.calibration.confidence import load_answers, request_for
from podium.core.config import ModelSpec
from podium.core.models.hub import ModelHub
from podium.core.models.provider import (
    Chunk,
    Message,
    ModelRequest,
    Provider,
    TokenLogprob,
    Usage,
    collect,
)
from podium.core.models.router_fit import cascade_of
from podium.core.models.routing import CONFIDENCE_TOP_LOGPROBS, answer_confidence
from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.providers.llamacpp import LlamaCppProvider
from tests.conftest import ScriptedProvider


class RemoteScripted(ScriptedProvider):
    """The strong model, scripted."""

    tier = "remote"


class WithLogprobs(ScriptedProvider):
    """A local model that reports token probabilities when asked: sure of "Paris",
    unsure of anything else. For engine logic only; the real model is tested below."""

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        self.calls.append(request)
        paris = "capital" in request.messages[-1].content
        text, lp, alt = ("Paris", -0.01, -6.0) if paris else ("12", -3.5, -3.6)
        logprobs = (TokenLogprob(text, lp, {text: lp, "x": alt}),) if (
            request.top_logprobs) else ()
        yield Chunk(text=text)
        yield Chunk(usage=Usage(5, 2), finish_reason="stop", logprobs=logprobs)


def engine_with(local: Provider, remote: ScriptedProvider) -> Engine:
    hub = ModelHub({local.name: local, remote.name: remote},
                   {local.name: ModelSpec(provider="llamacpp", path="x"),
                    remote.name: ModelSpec(provider="openai", base_url="http://x")},
                   local.name)
    return Engine(Store.open(), hub)


def steps_of(engine: Engine, toml: str) -> dict[str, Any]:
    result = asyncio.run(engine.run(loads(toml), {}))
    assert result.status == "succeeded"
    return {s.step_id: s for s in engine.store.get_steps(result.run_id)}


def test_cascade_escalates_on_low_confidence_and_says_the_figure() -> None:
    local = WithLogprobs("small")
    remote = RemoteScripted("big", answer="from the big model")
    engine = engine_with(local, remote)
    steps = steps_of(engine, """
[steps.sure]
kind = "llm"
route = "cascade"
prompt = "What is the capital of France?"
[steps.unsure]
kind = "llm"
route = "cascade"
prompt = "How many eggs are left?"
[steps.plain]
kind = "llm"
route = "local"
prompt = "What is the capital of Italy?"
""")
    sure, unsure = steps["sure"], steps["unsure"]
    assert (sure.output, sure.tier) == ("Paris", "local")
    assert "cascade: the local answer passed" in sure.route["reasons"]
    said = [r for r in sure.route["reasons"] if "confidence was" in r]
    minimum = cascade_of(None).min_confidence
    assert said and said[0].endswith(f"(>= {minimum:.3g})")
    assert (unsure.output, unsure.tier) == ("from the big model", "remote")
    why = [r for r in unsure.route["reasons"] if r.startswith("cascade: escalated")]
    assert why and why[0].startswith("cascade: escalated because the local answer had low "
                                     "confidence: 0.") and why[0].endswith(
        f"(< {minimum:.3g})")
    # Only the cascade's local call asks for token probabilities.
    asked = {r.messages[-1].content: r.top_logprobs for r in local.calls}
    assert asked == {"What is the capital of France?": CONFIDENCE_TOP_LOGPROBS,
                     "How many eggs are left?": CONFIDENCE_TOP_LOGPROBS,
                     "What is the capital of Italy?": 0}
    assert [r.top_logprobs for r in remote.calls] == [0]


def test_cascade_without_token_probabilities_skips_the_check() -> None:
    local = ScriptedProvider("small", answer="12")  # gives no token probabilities
    remote = RemoteScripted("big", answer="from the big model")
    steps = steps_of(engine_with(local, remote), """
[steps.a]
kind = "llm"
route = "cascade"
prompt = "How many eggs are left?"
""")
    assert steps["a"].tier == "local" and not remote.calls
    assert "cascade: confidence not checked (small gave no token probabilities)" in \
        steps["a"].route["reasons"]


def test_privacy_local_keeps_an_unsure_answer_and_says_so() -> None:
    local = WithLogprobs("small")
    remote = RemoteScripted("big")
    steps = steps_of(engine_with(local, remote), """
[steps.a]
kind = "llm"
route = "cascade"
privacy = "local"
prompt = "How many eggs are left?"
""")
    assert steps["a"].tier == "local" and not remote.calls
    assert any("had low confidence" in r and "privacy = local keeps it on this machine" in r
               for r in steps["a"].route["reasons"])


# --- the embedded model ------------------------------------------------------------------


@pytest.fixture
def fresh_model_afterwards(model_path: Path) -> Iterator[None]:
    """Leave the in-process model as a fresh load: llama.cpp here gives different logits
    for a prompt evaluated in one batch of 32 tokens or more than in smaller ones, so
    what a call leaves in the context changes later calls (test_llamacpp.py's
    score_choices test flips after any generation)."""
    yield
    from podium.providers import llamacpp

    loaded = llamacpp._LOADED.get(str(model_path))
    if loaded is not None:
        loaded.reset()


@pytest.mark.usefixtures("fresh_model_afterwards")
def test_embedded_model_reports_token_probabilities(model_path: Path) -> None:
    provider = LlamaCppProvider("smollm2", model_path)
    messages = (Message("system", SYSTEM), Message("user", "Good morning!"))

    async def both() -> tuple[Any, Any]:
        plain = await collect(provider, ModelRequest(messages, temperature=0.0, max_tokens=16))
        asked = await collect(provider, ModelRequest(messages, temperature=0.0, max_tokens=16,
                                                     top_logprobs=2))
        return plain, asked

    plain, asked = asyncio.run(both())
    assert plain.logprobs == () and asked.text == plain.text  # asking changes nothing
    assert "".join(t.token for t in asked.logprobs) == asked.text
    # Every generated token but the end of turn, which is not reported.
    assert len(asked.logprobs) == asked.usage.output_tokens - 1
    for t in asked.logprobs:
        assert len(t.top) == 2 and t.logprob <= 0.0
        assert t.logprob == max(t.top.values())  # greedy: the likeliest token was chosen


@pytest.mark.usefixtures("fresh_model_afterwards")
def test_cascade_on_the_embedded_model_matches_the_calibration(model_path: Path) -> None:
    """The engine's confidence of the embedded model's answer is the one the cascade
    was fitted and scored on (the same call as `local_correct.json`, cached in
    `local_confidence.json`): a sure greeting stays local, an unsure spelling escalates.

    Not to the digit: llama.cpp's numbers depend on how a prompt is split into batches,
    which depends on what the model's context held before (the cache was made with each
    prompt after the previous one), so a cold call differs by a few hundredths."""
    local = LlamaCppProvider("smollm2", model_path)
    remote = RemoteScripted("big", answer="r-e-p-e-e-k-k-o-o-b")
    engine = engine_with(local, remote)
    answers, _ = load_answers()
    cases = {"greet": ("greeting-005", "Good morning!"),
             "spell": ("spelling-026", "Spell the word 'bookkeeper' backwards, letter by letter.")}
    recipe = "".join(f'''
[steps.{step}]
kind = "llm"
route = "cascade"
system = "{SYSTEM}"
temperature = 0.0
max_tokens = 64
seed = 0
prompt = "{prompt}"
''' for step, (_, prompt) in cases.items())
    steps = steps_of(engine, recipe)
    assert steps["greet"].tier == "local" and steps["spell"].tier == "remote"
    assert len(remote.calls) == 1
    said = {"greet": "cascade: the local answer's confidence was ",
            "spell": "cascade: escalated because the local answer had low confidence: "}
    for step, (key, prompt) in cases.items():
        a = answers[key]
        cached = answer_confidence(request_for(prompt, SYSTEM), a.logprobs, a.finish_reason)
        reason = next(r for r in steps[step].route["reasons"] if r.startswith(said[step]))
        assert cached is not None
        assert abs(float(reason[len(said[step]):].split()[0]) - cached) < 0.1, reason
