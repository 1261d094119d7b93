"""Routing: `decide` under each policy, the complexity score, and the shipped
calibration data (scored from cached labels: no model is called here)."""

from __future__ import annotations

import time

import pytest

from bench.calibration.build import SYSTEM
from bench.calibration.metrics import apgr, curve, load, split
from core.provider import Message, ModelRequest
from core.routing import REMOTE_THRESHOLD, Policy, complexity, decide

MODELS = {"small": "local", "big": "remote"}
HARD = ("Zoe buys 4 boxes of marbles with 36 marbles in each box. Then Zoe gives 9 marbles "
        "to Sam and loses 7 more. After that she shares the remaining marbles equally "
        "among 5 friends, keeping the remainder. How many marbles does each friend get, "
        "and how many are left over? Explain each step.")


def ask(text: str, **kw: object) -> ModelRequest:
    """A one-message request."""
    return ModelRequest((Message("user", text),), **kw)


def test_privacy_local_pins_local_even_with_route_remote() -> None:
    d = decide(ask(HARD), Policy(route="remote", privacy="local"), MODELS, "small")
    assert (d.model, d.tier) == ("small", "local")
    assert any("privacy" in r for r in d.reasons)


def test_privacy_local_keeps_an_asked_for_local_model() -> None:
    models = {**MODELS, "other": "local"}
    d = decide(ask("hi"), Policy(model="other", privacy="local"), models, "small")
    assert d.model == "other"


def test_privacy_local_refuses_an_asked_for_remote_model() -> None:
    d = decide(ask("hi"), Policy(model="big", privacy="local"), MODELS, "small")
    assert d.tier == "local"


def test_no_remote_model_stays_local_and_says_why() -> None:
    d = decide(ask(HARD), Policy(), {"small": "local"}, "small",
               unavailable={"big": "OPENAI_API_KEY is not set"})
    assert (d.model, d.tier) == ("small", "local")
    assert any("OPENAI_API_KEY" in r for r in d.reasons)
    d = decide(ask(HARD), Policy(route="remote"), {"small": "local"}, "small")
    assert d.tier == "local" and any("no remote model configured" in r for r in d.reasons)


def test_explicit_model_wins() -> None:
    assert decide(ask("hi"), Policy(model="big"), MODELS, "small").model == "big"
    assert decide(ask(HARD), Policy(route="small"), MODELS, "small").model == "small"


def test_missing_explicit_model_says_why() -> None:
    d = decide(ask("hi"), Policy(model="gone"), MODELS, "small",
               unavailable={"gone": "no key"})
    assert d.model in MODELS and any("gone" in r and "no key" in r for r in d.reasons)


def test_route_local_and_remote() -> None:
    assert decide(ask(HARD), Policy(route="local"), MODELS, "small").tier == "local"
    d = decide(ask("hi"), Policy(route="remote"), MODELS, "small")
    assert (d.model, d.tier) == ("big", "remote")


def test_auto_follows_the_threshold() -> None:
    easy = decide(ask("What is the capital of France?"), Policy(), MODELS, "small")
    hard = decide(ask(HARD), Policy(), MODELS, "small")
    assert easy.score < REMOTE_THRESHOLD <= hard.score
    assert (easy.tier, hard.tier) == ("local", "remote")
    assert hard.to_dict()["reasons"]


@pytest.mark.parametrize("text", ["Hello!", "Thanks for your help!", "Good morning",
                                  "Is this review positive or negative? \"Great service and "
                                  "friendly staff!\""])
def test_small_talk_and_given_text_stay_local(text: str) -> None:
    assert decide(ask(text), Policy(), MODELS, "small").tier == "local"


@pytest.mark.parametrize("text", [
    "Sort these numbers in ascending order and list them separated by commas: "
    "83, 12, 57, 39, 91, 24",
    "What does this Python code print?\n```python\ntotal = 0\nfor i in range(7):\n"
    "    if i % 2 == 0:\n        total += i * 3\nprint(total)\n```",
    "Compute (734 - 58) * 7 + 58."])
def test_multi_step_work_goes_remote(text: str) -> None:
    assert decide(ask(text), Policy(), MODELS, "small").tier == "remote"


def test_hard_request_scores_above_hi() -> None:
    assert complexity(ask(HARD))[0] > complexity(ask("hi"))[0]
    code = ask("What does this print?\n```python\nx = [3, 1, 2]\nfor i in x:\n"
               "    print(i * 2)\n```")
    assert complexity(code)[0] > complexity(ask("What is the capital of France?"))[0]


@pytest.mark.parametrize("text", ["", "hi", HARD, HARD * 40, "```\n" + "x = 1;\n" * 300,
                                  "9" * 500 + " * " + "7" * 500])
def test_score_is_between_0_and_1(text: str) -> None:
    score, features = complexity(ask(text, max_tokens=100_000, schema={"type": "object"}))
    assert 0.0 <= score <= 1.0
    assert all(isinstance(f, str) for f in features)


def test_score_ignores_whether_a_remote_model_exists() -> None:
    with_remote = decide(ask(HARD), Policy(), MODELS, "small")
    without = decide(ask(HARD), Policy(), {"small": "local"}, "small")
    assert with_remote.score == without.score


def test_complexity_is_fast() -> None:
    request = ask(HARD)
    t0 = time.perf_counter()
    for _ in range(200):
        complexity(request)
    assert (time.perf_counter() - t0) / 200 < 1e-3


def test_calibration_data_loads_and_heuristic_beats_random() -> None:
    items, labels = load()
    assert len(items) >= 300 and set(labels) == {it["id"] for it in items}
    train, test = split(items)
    assert not {it["id"] for it in train} & {it["id"] for it in test}
    system = Message("system", SYSTEM)
    scores = [complexity(ModelRequest((system, Message("user", it["prompt"])),
                                      max_tokens=64))[0] for it in test]
    held_out = apgr(curve(scores, [labels[it["id"]] for it in test]))
    assert held_out > 0.54  # random routing scores 0.5 (bench/routing.py: 0.56)
