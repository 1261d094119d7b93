"""Router metrics in the manner of RouteLLM, from cached labels (no model calls).

A router gives each prompt a score (higher: send it to the strong model). Sweeping a
threshold sends the top-scored share `x` of prompts to the strong model; quality is
the share answered right (the weak model's marks on the rest, the strong model's on
those sent). Prompts with equal scores cannot be split by a threshold, so the curve
is linear across a tie: the expected value of breaking it at random.

* PGR(x): (quality - weak) / (strong - weak), the share of the gap recovered.
* APGR: area under PGR over x in [0, 1]; random routing scores 0.5.
* CPT(p): the smallest share of strong calls that reaches PGR = p.

The metrics themselves live in `podium.core.models.router_metrics`.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from podium.core.models.router_metrics import apgr, cpt, curve, pgr_curve, threshold_for

__all__ = ["apgr", "cpt", "curve", "load", "pgr_curve", "split", "threshold_for"]

HERE = Path(__file__).resolve().parent
SPLIT_SEED = 7


def load() -> tuple[list[dict[str, Any]], dict[str, bool]]:
    """The shipped prompts and the embedded model's marks (id -> right)."""
    items = [json.loads(line) for line in
             (HERE / "prompts.jsonl").read_text(encoding="utf-8").splitlines()]
    labels = json.loads((HERE / "local_correct.json").read_text(encoding="utf-8"))
    return items, {k: bool(v) for k, v in labels["correct"].items()}


def split(items: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]],
                                                    list[dict[str, Any]]]:
    """A seeded 50/50 split, halved within each kind so both halves hold every kind."""
    train: list[dict[str, Any]] = []
    test: list[dict[str, Any]] = []
    rng = random.Random(SPLIT_SEED)
    for kind in sorted({it["kind"] for it in items}):
        ids = sorted(it["id"] for it in items if it["kind"] == kind)
        rng.shuffle(ids)
        chosen = set(ids[:len(ids) // 2])
        for it in items:
            if it["kind"] == kind:
                (train if it["id"] in chosen else test).append(it)
    return train, test
