"""The checks a program makes of a local answer before the cascade trusts it."""

from __future__ import annotations

import json

import pytest

from podium.core.models.answer_checks import (
    evaluate,
    false_arithmetic,
    missed_sum,
    problem,
    repeated_line,
)


@pytest.mark.parametrize("text", [
    "2 + 3 = 5", "3 + 4 + 5 = 12", "10 / 3 = 3.33", "$5 + $3 = $8", "2 x 3 = 6",
    "1,000 * 2 = 2,000", "(2 + 3) * 4 = 20", "5 * 2 = 10 + 1 = 11",
    "She has 3 * 49 = 147 books.", "On 2024-05-01 = a Wednesday", "no equation here"])
def test_true_or_no_arithmetic_passes(text: str) -> None:
    assert false_arithmetic(text) is None


@pytest.mark.parametrize("text, said", [
    ("Sam has 7 - 3 = 2 more coins.", "says 7 - 3 = 2, which is false"),
    ("So, 95 * 27 = 27 * 27 = 69.", "says 27 * 27 = 69, which is false"),
    ("66 + 52 = 188.", "says 66 + 52 = 188, which is false"),
    ("10 / 4 = 2.4", "says 10 / 4 = 2.4, which is false"),
    ("2 + 2 = 4. 3 + 3 = 7.", "says 3 + 3 = 7, which is false"),
    ("\u22125 + 3 = \u22123", "says -5 + 3 = -3, which is false")])
def test_false_arithmetic_is_named(text: str, said: str) -> None:
    assert false_arithmetic(text) == said


def test_a_bare_sum_must_be_answered() -> None:
    assert missed_sum("What is 56 - 22?", "56 - 22 gives you 11.") == (
        "does not give 56 - 22 = 34")
    assert missed_sum("Calculate 826 * 36.", "It is 29,736.") is None
    assert missed_sum("What is 56 - 22?", "The answer is 34") is None
    # Not a bare sum: a word problem, or a sentence that merely holds numbers.
    assert missed_sum("Tom has 3 apples and eats 1 - how many are left?", "5") is None
    assert missed_sum("Call 555-1234 for help", "ok") is None


def test_a_loop_is_caught_but_code_may_repeat() -> None:
    loop = "The answer is not known here.\nThe answer is not known here.\n"
    assert repeated_line("?", loop, "length") == (
        "repeats itself ('The answer is not known here.' 2 times)")
    assert repeated_line("?", loop, "stop") is None  # said twice and finished: a chorus
    assert repeated_line("?", "It is not known here. " * 3, "stop") is not None
    code = "```python\nprint('hello there')\nprint('hello there')\n```"
    assert repeated_line("?", code * 3, "length") is None
    assert repeated_line("?", "Yes. Yes. Yes.", "length") is None  # too short to be a loop


@pytest.mark.parametrize("text", [
    "Stir for 2 minutes. Add salt. Stir for 2 minutes.",
    "**Advantages:**\n- fast\n**Advantages:**\n- cheap\n**Advantages:**\n- small",
    "+------------+------------+\n| a | b |\n+------------+------------+\n" * 2,
    "~~~\nprint('hello there you')\nprint('hello there you')\nprint('hello there you')\n~~~",
    "    print('hello there you')\n    print('hello there you')\n    print('hello there you')"])
def test_ordinary_repetition_is_not_a_loop(text: str) -> None:
    assert repeated_line("Write something", text, "length") is None


def test_repetition_the_ask_asked_for_is_not_a_loop() -> None:
    line = "I will not talk in class."
    assert repeated_line(f"Write '{line}' three times.", f"{line}\n" * 3, "stop") is None


def test_structured_answers_may_repeat_their_keys() -> None:
    listing = json.dumps([{"status": "active"}] * 3, indent=2)
    assert problem("?", listing, "stop", {"type": "array"}) is None


@pytest.mark.parametrize("text", [
    "x^2 - 4 = 0", "10^3 - 1 = 999", "2**3 + 1 = 9", "√16 + 2 = 6", "9:15 + 45 = 10:00",
    "12:30 - 1 = 11:30", "19 / 5 = 3 remainder 4", "23 / 4 = 5 R3", "1/2 = 50%",
    "Pages 10-12 = 3 pages", "0-4 = 1 point", "-(2 + 3) = -5", "- 5 + 3 = -2",
    "So 1" + "0" * 400 + " x 2 = 5."])
def test_times_ranges_powers_and_remainders_are_not_false_arithmetic(text: str) -> None:
    assert false_arithmetic(text) is None


@pytest.mark.parametrize(("ask", "answer"), [
    ("What is 2 / 3?", "0.67"), ("What is 10/3?", "About 3.3"), ("What is 5 - 7?", "\u22122"),
    ("What is 2 - 10?", "\u20138"), ("What is 3 + 3?", "Six."),
    ("What is 10 / 3?", "3 remainder 1"), ("What is 2^10 + 1?", "1025"),
    ("Is 7 x 8 = 56?", "Yes.")])
def test_a_sum_answered_in_another_form_passes(ask: str, answer: str) -> None:
    assert missed_sum(ask, answer) is None


def test_evaluate_is_arithmetic_only() -> None:
    assert evaluate("(2 + 3) x 4") == 20.0 and evaluate("-5 + 3") == -2.0
    assert evaluate("1 / 0") is None
    assert evaluate("__import__('os')") is None and evaluate("2 ** 8") is None


def test_problem_orders_the_checks() -> None:
    assert problem("?", "  ", "stop") == "was empty"
    assert problem("?", '{"a": 1', "stop", {"type": "object"}) == "was not valid JSON"
    assert problem("?", '{"a": 1}', "length", {"type": "object"}) == "was cut off"
    assert problem("What is 2 + 2?", "2 + 2 = 5", "stop") == "says 2 + 2 = 5, which is false"
    assert problem("What is 2 + 2?", "4", "stop") is None


def test_no_right_calibration_answer_is_flagged() -> None:
    """On the embedded model's cached answers, the checks flag only wrong ones."""
    from bench.calibration.confidence import load_answers
    from bench.calibration.metrics import load

    items, labels = load()
    answers, _ = load_answers()
    flagged = [it["id"] for it in items if problem(
        it["prompt"], answers[it["id"]].text, answers[it["id"]].finish_reason) is not None]
    assert len(flagged) >= 65
    assert not [i for i in flagged if labels[i]]


def test_long_runs_of_terms_do_not_hang_the_checks() -> None:
    """A local answer that rambles '1 + 1 + ... ' with no '=' once made the equation
    pattern backtrack exponentially (10 terms took 0.2 s, 25 would take hours); the
    checks now scan stretches linearly and parse them."""
    import time

    for n in (10, 30, 3000):
        terms = " + ".join(["1"] * n) + " is the sum"
        t0 = time.perf_counter()
        assert problem("What is " + terms, terms, "stop") is None
        assert time.perf_counter() - t0 < 1.0
