"""How well the router sends the right calls to the strong model, on prompts its fit
never saw (RouteLLM's method, scored from cached answers: no model is called).

The labels are a local model's marks on the shipped calibration suite
(`core/data/calibration_suite.jsonl`: 1010 prompts, 32 kinds, ~200 templates, three
sources), cached in `bench/calibration/answers/<model>.json` by `calibrate_adapt.py`
(which runs `podium calibrate`'s code). No strong model is at hand: it counts as
always right. Every router below is fitted by `podium.core.models.router_fitting.fit_router`
(what `podium calibrate` runs) on the training part of each split and scored only on
the held-out part, so no held-out prompt or label is ever among the examples it looks
up; the shipped fit (all of the suite) is not used here. Splits:

* random half: a seeded half within each kind (memory of templates counts here);
* leave one kind out: every kind scored by a fit made without any prompt of it (32 fits);
* leave families out: the ~200 templates in 10 groups, each scored by a fit without it;
* leave one source out: exam kinds, everyday kinds, the breadth kinds (3 fits).

Scores of the held-out parts are pooled, then each strategy is swept over every
threshold: APGR (random = 0.5) and its share of the oracle's gain over random.

* random: the expected value. * prompt length: longer -> remote.
* kind rate (ceiling): each prompt scored by its kind's true failure rate on the very
  prompts scored: perfect knowledge of the category and how the model does on it.
* features: the fit's logistic score alone. * auto: `routing.complexity` (features
  blended with similar asks). * cascade: `route = "cascade"` on the cached local
  answer: a failed program check (`answer_checks`) escalates first, then 1 - the
  answer's confidence (`routing.confidence_from`, with the fold's complexity score).
* oracle: sends exactly the prompts the local model got wrong.

Decision time: `routing.decide` under the shipped fit, each prompt seen for the first
time (target < 1 ms). Run: `.venv/bin/python bench/routing.py [--model NAME] [--json]`.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from common import load_note, mark, table  # noqa: E402

from podium.core.models import answer_checks  # noqa: E402
from podium.core.models.calibration_suite import (  # noqa: E402
    SuiteItem,
    load_suite,
    request_for,
)
from podium.core.models.calibration_suite import mark as check  # noqa: E402
from podium.core.models.router_fit import RouterFit, shipped_fit  # noqa: E402
from podium.core.models.router_fitting import fit_router  # noqa: E402
from podium.core.models.router_metrics import apgr, curve  # noqa: E402
from podium.core.models.routing import (  # noqa: E402
    Policy,
    _ask_signals,
    complexity,
    confidence_from,
    decide,
    feature_score,
)

AIM = 0.64  # the share of the oracle's gain that perfect category knowledge gave (issue 14)
STRATEGIES = ("prompt length", "kind rate (ceiling)", "features", "auto", "cascade", "oracle")


def load_labels(model: str) -> tuple[list[SuiteItem], dict[str, bool], dict[str, Any]]:
    """The suite items the model answered, their marks, and the cached answers."""
    data = json.loads((HERE / "calibration" / "answers" / f"{model}.json").read_text(
        encoding="utf-8"))
    answers = data["answers"]
    items = [it for it in load_suite() if it.id in answers]
    return items, {it.id: check(it, answers[it.id]["reply"]) for it in items}, answers


def splits(items: list[SuiteItem]) -> dict[str, list[list[SuiteItem]]]:
    """Each evaluation's held-out parts (every item held out exactly once, but for the
    random half, which holds out one half)."""
    by: dict[str, dict[str, list[SuiteItem]]] = {"kind": {}, "source": {}, "family": {}}
    for it in items:
        by["kind"].setdefault(it.kind, []).append(it)
        by["source"].setdefault(it.source, []).append(it)
        by["family"].setdefault(it.family, []).append(it)
    families = sorted(by["family"])
    random.Random(7).shuffle(families)
    groups = [[it for f in families[g::10] for it in by["family"][f]] for g in range(10)]
    rng = random.Random(7)
    half: list[SuiteItem] = []
    for members in by["kind"].values():
        chosen = sorted(members, key=lambda it: it.id)
        rng.shuffle(chosen)
        half += chosen[:len(chosen) // 2]
    return {"random half": [half], "leave one kind out": list(by["kind"].values()),
            "leave families out (10 groups)": groups,
            "leave one source out": list(by["source"].values())}


def score_parts(items: list[SuiteItem], parts: list[list[SuiteItem]], labels: dict[str, bool],
                answers: dict[str, Any]) -> dict[str, Any]:
    """Fit without each part, score the part; pool the scores of every part."""
    held = [it for part in parts for it in part]
    scores: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    for part in parts:
        out = {it.id for it in part}
        fit = fit_router([(it.prompt, labels[it.id]) for it in items if it.id not in out],
                         "fold")
        for it in part:
            request = request_for(it.prompt)
            auto = complexity(request, fit)[0]
            scores["auto"].append(auto)
            scores["features"].append(feature_score(request, fit)[0])
            scores["cascade"].append(cascade_score(it, answers[it.id], auto))
            scores["prompt length"].append(float(len(it.prompt)))
            scores["oracle"].append(0.0 if labels[it.id] else 1.0)
    rate = kind_rates(held, labels)
    scores["kind rate (ceiling)"] = [rate[it.kind] for it in held]
    weak = [labels[it.id] for it in held]
    oracle = apgr(curve(scores["oracle"], weak))
    rows = {name: apgr(curve(s, weak)) for name, s in scores.items()}
    return {"prompts": len(held), "parts": len(parts), "local_right": sum(weak) / len(weak),
            "apgr": rows, "share": {k: (v - 0.5) / (oracle - 0.5) for k, v in rows.items()}}


def cascade_score(item: SuiteItem, answer: dict[str, Any], auto: float) -> float:
    """The cascade's P(wrong) for a cached local answer (2: a program check failed)."""
    if answer_checks.problem(item.prompt, answer["reply"], answer["finish_reason"]):
        return 2.0
    if answer["signals"] is None:
        return auto
    return 1.0 - confidence_from(answer["signals"], auto)


def kind_rates(items: Sequence[SuiteItem], labels: dict[str, bool]) -> dict[str, float]:
    """Each kind's true failure rate on `items`."""
    out: dict[str, list[bool]] = {}
    for it in items:
        out.setdefault(it.kind, []).append(labels[it.id])
    return {k: 1 - sum(v) / len(v) for k, v in out.items()}


def decision_us(items: list[SuiteItem], fit: RouterFit) -> tuple[float, float]:
    """Mean µs of `decide` per prompt, each seen for the first time (best of 5): wall
    time, and this process's CPU time (what it costs on a machine others share)."""
    models = {"local": "local", "remote": "remote"}
    requests = [request_for(it.prompt) for it in items]
    fit.index()  # built once per process, not per call
    wall = cpu = float("inf")
    for _ in range(5):
        _ask_signals.cache_clear()
        t0, c0 = time.perf_counter(), time.process_time()
        for r in requests:
            decide(r, Policy(), models, "local", explain=False, fit=fit)
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, time.process_time() - c0)
    return wall / len(requests) * 1e6, cpu / len(requests) * 1e6


def run(model: str) -> dict[str, Any]:
    """Every split and strategy, and the decision time."""
    items, labels, answers = load_labels(model)
    results = {name: score_parts(items, parts, labels, answers)
               for name, parts in splits(items).items()}
    return {"model": model, "prompts": len(items),
            "local_right": sum(labels.values()) / len(labels), "splits": results,
            "decide_us": decision_us(items, shipped_fit())}


def report(result: dict[str, Any]) -> str:
    """The table as text."""
    splits_ = result["splits"]
    names = list(splits_)
    rows = [["random (expected)"] + ["0.500 (0%)"] * len(names)]
    for strategy in STRATEGIES:
        rows.append([strategy] + [f"{splits_[n]['apgr'][strategy]:.3f} "
                                  f"({splits_[n]['share'][strategy]:.0%})" for n in names])
    lines = [f"{result['prompts']} suite prompts; local model {result['model']} right on "
             f"{result['local_right']:.1%}. Strong model: none, counted as always right.",
             "APGR (share of the oracle's gain over random), scores of held-out parts pooled:",
             "", table(["strategy"] + names, rows), ""]
    for n in names[1:]:
        for strategy in ("auto", "cascade"):
            share = splits_[n]["share"][strategy]
            ceiling = splits_[n]["share"]["kind rate (ceiling)"]
            lines.append(f"{mark(share >= AIM)}  {n}: {strategy} {share:.0%} of the oracle's "
                         f"gain (aim >= {AIM:.0%}; kind rate {ceiling:.0%})")
    wall, cpu = result["decide_us"]
    lines.append(f"{mark(wall < 1000)}  decide(): {wall:.0f} µs per prompt under the shipped "
                 f"fit, {cpu:.0f} µs of CPU (target < 1000 µs)")
    lines.append(load_note())
    return "\n".join(lines)


def main() -> None:
    """Print the table (or JSON)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="smollm2", help="whose cached answers")
    parser.add_argument("--json", action="store_true", help="one JSON object")
    args = parser.parse_args()
    result = run(args.model)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()

