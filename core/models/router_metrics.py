"""Router metrics in the manner of RouteLLM: how well a score sends the right calls to
the strong model, from labels alone (no model calls). `podium calibrate` places its
threshold with them, and `bench/routing.py` scores routers with them.

A router gives each prompt a score (higher: send it to the strong model). Sweeping a
threshold sends the top-scored share `x` of prompts to the strong model; quality is
the share answered right (the weak model's marks on the rest, the strong model's on
those sent). Prompts with equal scores cannot be split by a threshold, so the curve
is linear across a tie: the expected value of breaking it at random.

* PGR(x): (quality - weak) / (strong - weak), the share of the gap recovered.
* APGR: area under PGR over x in [0, 1]; random routing scores 0.5.
* CPT(p): the smallest share of strong calls that reaches PGR = p.
"""

from __future__ import annotations

from collections.abc import Sequence


def curve(scores: Sequence[float], weak: Sequence[bool],
          strong: Sequence[bool] | None = None) -> list[tuple[float, float]]:
    """(share sent to strong, quality) at every threshold, highest scores sent first."""
    n = len(scores)
    strong = strong if strong is not None else [True] * n
    order = sorted(range(n), key=lambda i: -scores[i])
    quality = sum(weak)
    points = [(0.0, quality / n)]
    i = 0
    while i < n:  # one point per distinct score: ties go together
        j = i
        while j < n and scores[order[j]] == scores[order[i]]:
            quality += int(strong[order[j]]) - int(weak[order[j]])
            j += 1
        points.append((j / n, quality / n))
        i = j
    return points


def pgr_curve(points: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """The curve as the share of the weak-to-strong gap recovered."""
    weak, strong = points[0][1], points[-1][1]
    gap = (strong - weak) or 1.0
    return [(x, (q - weak) / gap) for x, q in points]


def apgr(points: list[tuple[float, float]]) -> float:
    """Area under the PGR curve (trapezoids: linear across ties)."""
    pgr = pgr_curve(points)
    return sum((x1 - x0) * (y0 + y1) / 2 for (x0, y0), (x1, y1) in zip(pgr, pgr[1:], strict=False))


def cpt(points: list[tuple[float, float]], target: float = 0.5) -> float:
    """Smallest share of strong calls whose PGR reaches `target` (interpolated)."""
    pgr = pgr_curve(points)
    for (x0, y0), (x1, y1) in zip(pgr, pgr[1:], strict=False):
        if y1 >= target - 1e-12:
            if y1 == y0 or y0 >= target:
                return x0 if y0 >= target else x1
            return x0 + (x1 - x0) * (target - y0) / (y1 - y0)
    return 1.0


def threshold_for(scores: Sequence[float], share: float) -> float:
    """The lowest score among the top `share` of prompts: a threshold that sends
    about that share to the strong model (score >= threshold goes remote)."""
    ranked = sorted(scores, reverse=True)
    k = max(1, min(len(ranked), round(share * len(ranked) + 0.5)))
    return ranked[k - 1]
