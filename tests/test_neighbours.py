"""The router's lookup of similar asks with a known outcome."""

from __future__ import annotations

import time

from podium.core.models.calibration_suite import load_suite, mark
from podium.core.models.neighbours import (
    MIN_SIMILARITY,
    Example,
    Neighbours,
    trigrams,
    wrong_share,
)
from podium.core.models.router_fit import shipped_fit

EXAMPLES = [Example("What is the capital of France?", True),
            Example("What is the capital of Mongolia?", False),
            Example("Spell the word 'banana' backwards.", False),
            Example("Hello there!", True)]


def test_nearest_finds_the_same_kind_of_ask() -> None:
    index = Neighbours(EXAMPLES)
    near = index.nearest("What is the capital of Peru?")
    assert {n.example.prompt for n in near[:2]} == {EXAMPLES[0].prompt, EXAMPLES[1].prompt}
    assert all(n.similarity >= MIN_SIMILARITY for n in near)
    assert near == sorted(near, key=lambda n: -n.similarity)


def test_digits_are_folded_so_sums_look_alike() -> None:
    assert trigrams("What is 56 - 22?") == trigrams("What is 13 - 98?")


def test_an_ask_like_nothing_seen_has_no_neighbours() -> None:
    index = Neighbours(EXAMPLES)
    assert index.nearest("Write a haiku about autumn leaves") == []
    assert wrong_share([]) == (0.0, 0.0)


def test_leave_one_out_skips_the_ask_itself() -> None:
    ask = EXAMPLES[1].prompt
    assert Neighbours(EXAMPLES).nearest(ask)[0].similarity > 0.99
    assert all(n.example.prompt != ask
               for n in Neighbours(EXAMPLES, leave_one_out=True).nearest(ask))


def test_wrong_share_weighs_by_similarity() -> None:
    index = Neighbours(EXAMPLES)
    wrong, weight = wrong_share(index.nearest("What is the capital of Mongolia?"))
    assert 0.5 < wrong < 1.0 and weight > 1.0  # the exact match counts most


def test_shipped_examples_are_the_suite_with_the_embedded_models_marks() -> None:
    """`bench/calibration/fit.py --write` wrote them from the cached answers
    (`bench/calibrate_adapt.py`), marked by the suite's checks. `bench/routing.py` never
    scores with them: it refits without each held-out part."""
    import json
    from pathlib import Path

    cached = Path(__file__).resolve().parent.parent / "bench/calibration/answers/smollm2.json"
    answers = json.loads(cached.read_text(encoding="utf-8"))["answers"]
    assert [(e.prompt, e.local_right) for e in shipped_fit().examples] == [
        (it.prompt, mark(it, answers[it.id]["reply"])) for it in load_suite()
        if it.id in answers]


def test_lookup_is_fast_even_for_a_long_document() -> None:
    index = shipped_fit().index()
    long_ask = "Summarise this report. " + "The quarterly numbers rose again. " * 400
    t0 = time.perf_counter()
    for _ in range(20):
        index.nearest(long_ask)
    assert (time.perf_counter() - t0) / 20 < 5e-3
