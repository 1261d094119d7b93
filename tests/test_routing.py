"""Routing: `decide` under each policy, the complexity score, the cascade's confidence
check, and the shipped calibration data (scored from cached labels and answers: no model
is called here)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench.calibration.confidence import load_answers
from podium.core.models.caller import cascade_problem
from podium.core.models.provider import Message, ModelRequest, TokenLogprob
from podium.core.models.router_fit import cascade_of, shipped_fit
from podium.core.models.routing import (
    CONFIDENCE_TOP_LOGPROBS,
    Policy,
    answer_confidence,
    answer_signals,
    complexity,
    decide,
    feature_score,
)

ROOT = Path(__file__).resolve().parent.parent
REMOTE_THRESHOLD = shipped_fit().threshold
CASCADE_MIN_CONFIDENCE = cascade_of(None).min_confidence

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
                                  "What language is this sentence in? \"Guten Abend, wie "
                                  "geht es?\"",
                                  'Give me JSON with keys "name" and "city": Ana lives in Porto.'])
def test_small_talk_and_given_text_stay_local(text: str) -> None:
    assert decide(ask(text), Policy(), MODELS, "small").tier == "local"


def test_similar_asks_the_local_model_got_wrong_go_remote() -> None:
    """Sentiment looks middling by its features, but the embedded model got most such
    asks wrong: the lookup of similar asks raises the score well above, and says so."""
    text = 'Is this review positive or negative? "Friendly staff, but the room was cold."'
    alone, _ = feature_score(ask(text))
    decision = decide(ask(text), Policy(), MODELS, "small")
    assert decision.score is not None and decision.score > alone + 0.15
    assert "similar asks" in decision.reasons[0] and "wrong locally" in decision.reasons[0]


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
    """A sanity bound on a long ask (the < 1 ms target is bench/routing.py's). CPU
    time, not wall time: the machine the suite runs on is shared."""
    request = ask(HARD)
    complexity(request)  # the shipped fit's index is built once, on first use
    t0 = time.process_time()
    for _ in range(200):
        complexity(request)
    assert (time.process_time() - t0) / 200 < 2e-3


def test_on_prompts_the_fit_never_saw_the_router_beats_length_and_random() -> None:
    """`bench/routing.py`'s random-half split of the suite, scored from the cached
    answers: a fit made without the held-out half (as `podium calibrate` fits) ranks
    its prompts better than their length does, and the cascade better still."""
    from bench.routing import load_labels, score_parts, splits

    items, labels, answers = load_labels("smollm2")
    result = score_parts(items, splits(items)["random half"], labels, answers)
    share = result["share"]
    assert share["cascade"] > share["auto"] > share["prompt length"] > 0.0
    assert share["auto"] > 0.5  # bench/routing.py: 58%


# --- the cascade's confidence check ------------------------------------------------------


def tokens(*steps: tuple[str, float, float]) -> tuple[TokenLogprob, ...]:
    """Greedy tokens: (text, its log probability, the runner-up's)."""
    return tuple(TokenLogprob(t, lp, {t: lp, "~" + t: alt}) for t, lp, alt in steps)


SURE = tokens(("Paris", -0.01, -6.0), (".", -0.02, -5.0))
UNSURE = tokens(("The", -2.0, -2.1), (" answer", -1.5, -1.7), (" is", -0.9, -1.2),
                (" 12", -4.5, -4.6))


def test_answer_signals() -> None:
    x = answer_signals(SURE, "stop")
    assert x is not None
    assert x["mean_logprob"] == pytest.approx(-0.015) and x["min_logprob"] == -0.02
    assert x["mean_margin"] == pytest.approx((5.99 + 4.98) / 2)
    assert x["min_margin"] == pytest.approx(4.98) and x["cut_off"] == 0.0
    assert answer_signals(SURE, "length")["cut_off"] == 1.0  # type: ignore[index]


def test_no_token_probabilities_no_confidence() -> None:
    assert answer_signals((), "stop") is None
    alone = (TokenLogprob("x", -0.5, {"x": -0.5}),)  # no alternative: no margin
    assert answer_signals(alone) is None
    assert answer_confidence(ask("What is 2 + 2?"), ()) is None


def test_confidence_follows_the_token_probabilities() -> None:
    request = ask("What is the capital of France?")
    sure, unsure = answer_confidence(request, SURE), answer_confidence(request, UNSURE)
    assert sure is not None and unsure is not None
    assert 0.0 <= unsure < CASCADE_MIN_CONFIDENCE <= sure <= 1.0
    # The same answer to a harder ask is trusted less (the complexity score weighs in).
    harder = answer_confidence(ask(HARD), SURE)
    assert harder is not None and harder < sure


def test_cascade_problem_checks_confidence() -> None:
    low = CASCADE_MIN_CONFIDENCE - 0.1
    assert cascade_problem("?", "12", None, "stop", low) == (
        f"had low confidence: {low:.2f} (< {CASCADE_MIN_CONFIDENCE:.3g})")
    assert cascade_problem("?", "12", None, "stop", CASCADE_MIN_CONFIDENCE) is None
    assert cascade_problem("?", "12", None, "stop", None) is None  # not checked
    assert cascade_problem("?", " ", None, "stop", 0.99) == "was empty"  # hard checks first
    assert cascade_problem("?", "{", {"type": "object"}, "stop", 0.99) == "was not valid JSON"
    assert cascade_problem("What is 6 + 5?", "6 + 5 = 12.", None, "stop", 0.99) == (
        "says 6 + 5 = 12, which is false")


def test_confidence_cache_matches_the_labels() -> None:
    """The earlier set's cached answers with token probabilities (which the suite's
    answers partly came from) are the labelled answers: the same greedy call. (The
    cascade against `auto` on prompts the fit never saw:
    `test_on_prompts_the_fit_never_saw_...` and bench/routing.py.)"""
    answers, header = load_answers()
    replies = json.loads((ROOT / "bench/calibration/local_correct.json").read_text())["replies"]
    assert set(answers) == set(replies) and header["settings"]["top_logprobs"] == \
        CONFIDENCE_TOP_LOGPROBS
    assert all(answers[k].text == replies[k] for k in answers)


def test_shipped_cascade_is_what_calibrate_fits() -> None:
    """The shipped fit's cascade is `fit_calibration`'s on the embedded model's cached
    suite answers (`bench/calibration/fit.py --write`), as `podium calibrate` makes it."""
    from podium.core.models.calibration_suite import load_suite, mark
    from podium.core.models.router_fitting import Answer, fit_calibration

    cached = json.loads((ROOT / "bench/calibration/answers/smollm2.json").read_text())
    answers = cached["answers"]
    local = [Answer(it.prompt, answers[it.id]["reply"], answers[it.id]["finish_reason"],
                    answers[it.id]["signals"], mark(it, answers[it.id]["reply"]))
             for it in load_suite() if it.id in answers]
    fit = fit_calibration(local, [(a.prompt, a.right) for a in local], "smollm2")[0]
    assert fit.cascade == shipped_fit().cascade


def test_independent_sets_are_whole_and_their_answers_marked_by_todays_checks() -> None:
    """bench/routing.py's independent sets: 150 checkable items each, several of their
    writers' own categories, every item answered; a change to a check that re-marks an
    answer is noticed here (re-run `bench/calibration/heldout_answers.py`)."""
    from bench.calibration.heldout_answers import ANSWERS, load_set, set_names
    from podium.core.models.calibration_suite import CHECKS, mark

    assert set(set_names()) == {"desk", "dev", "home", "office", "school"}
    for name in set_names():
        items = load_set(name)
        assert len(items) == 150 and len({it.prompt for it in items}) == 150, name
        assert all(it.check in CHECKS and it.source == name for it in items)
        assert len({it.kind for it in items}) >= 8
        answers = json.loads((ANSWERS / f"heldout-{name}.json").read_text())["answers"]
        assert set(answers) == {it.id for it in items}
        assert all(mark(it, answers[it.id]["reply"]) == answers[it.id]["right"]
                   for it in items), name
