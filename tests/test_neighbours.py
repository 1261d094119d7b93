"""The router's lookup of similar asks with a known outcome."""

from __future__ import annotations

import time

from bench.calibration.metrics import load, split
from podium.core.models.neighbours import (
    MIN_SIMILARITY,
    Example,
    Neighbours,
    shipped,
    trigrams,
    wrong_share,
)

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


def test_shipped_examples_are_the_train_half_with_its_marks() -> None:
    """`bench/calibration/fit.py --write` wrote them from the current marks; the held-out
    half is not among them, so bench/routing.py measures what ships."""
    items, labels = load()
    train, test = split(items)
    assert [(e.prompt, e.local_right) for e in shipped().examples] == [
        (it["prompt"], labels[it["id"]]) for it in train]
    prompts = {e.prompt for e in shipped().examples}
    assert not prompts & {it["prompt"] for it in test}


def test_lookup_is_fast_even_for_a_long_document() -> None:
    index = shipped()
    long_ask = "Summarise this report. " + "The quarterly numbers rose again. " * 400
    t0 = time.perf_counter()
    for _ in range(20):
        index.nearest(long_ask)
    assert (time.perf_counter() - t0) / 20 < 5e-3
