"""How well the router sends the right calls to the strong model, on prompts its fit
never saw (RouteLLM's method, scored from cached answers: no model is called).

The labels are a local model's marks on the shipped calibration suite
(`core/data/calibration_suite.jsonl`: 1010 prompts, 32 kinds, ~200 templates, three
sources), cached in `bench/calibration/answers/<model>.json` by `calibrate_adapt.py`
(which runs `podium calibrate`'s code). No strong model is at hand: it counts as
always right. Every router below is fitted by
`podium.core.models.router_fitting.fit_calibration` (what `podium calibrate` runs: the
router and the cascade) on the training part of each split and scored only on the
held-out part, so no held-out prompt or label is ever among the examples it looks up;
the shipped fit (all of the suite) is not used here. Splits:

* random half: a seeded half within each kind (memory of templates counts here);
* leave one kind out: every kind scored by a fit made without any prompt of it (32 fits);
* leave families out: the ~200 templates in 10 groups, each scored by a fit without it;
* leave one source out: exam kinds, everyday kinds, the breadth kinds (3 fits);
* independent sets: five sets of 150 prompts (`bench/calibration/heldout/`), each
  written by hand by a separate session for one kind of user (developers, office
  workers, students, households, a support desk) under rules that kept the writers
  away from the suite and the router, with their own categories. Scored by the fit of
  the whole suite: what ships. `dev`, `office` and `school` were in view while the
  router was tuned (development sets); `home` and `desk` were written, answered and
  first scored after it was (the test sets). Answers are cached by
  `calibration/heldout_answers.py`.

Scores of the held-out parts are pooled, then each strategy is swept over every
threshold: APGR (random = 0.5) and its share of the oracle's gain over random.

* random: the expected value. * prompt length: longer -> remote.
* kind rate (ceiling): each prompt scored by its kind's true failure rate on the very
  prompts scored: perfect knowledge of the category and how the model does on it
  (for an independent set, its writer's categories).
* features: the fit's logistic score alone. * auto: `routing.complexity` (features
  blended with similar asks).
* auto, learning: `auto` as the held-out prompts arrive one by one, each routed and
  then, for one in three (or for all), its outcome learnt (as a cascade's `verify`
  teaches the router in a run: `RouterFit.learn`). What a new recipe step looks like
  after some of its asks have been checked.
* cascade: `route = "cascade"` on the cached local
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

from calibration.heldout_answers import ANSWERS, load_set, set_names  # noqa: E402
from common import load_note, mark, table  # noqa: E402

from podium.core.models import answer_checks  # noqa: E402
from podium.core.models.calibration_suite import (  # noqa: E402
    SuiteItem,
    load_suite,
    request_for,
)
from podium.core.models.calibration_suite import mark as check  # noqa: E402
from podium.core.models.neighbours import Example  # noqa: E402
from podium.core.models.router_fit import RouterFit, shipped_fit  # noqa: E402
from podium.core.models.router_fitting import Answer, fit_calibration  # noqa: E402
from podium.core.models.router_metrics import apgr, curve  # noqa: E402
from podium.core.models.routing import (  # noqa: E402
    Policy,
    _ask_signals,
    complexity,
    confidence_from,
    decide,
    feature_score,
)

# The independent sets looked at while the router was tuned; the others were scored
# only once it was (see the docstring).
DEVELOPMENT = ("dev", "office", "school")
# Learning as it runs: the held-out prompts arrive one by one (seeded order) and the
# outcome of every `LEARN_EVERY`-th (or of each) joins the fit's examples once it is
# routed (`RouterFit.learn`, as a cascade's `verify` teaches it in a run).
LEARN_EVERY = 3
LEARNING = {f"auto, learning 1 in {LEARN_EVERY}": LEARN_EVERY, "auto, learning all": 1}
STRATEGIES = ("prompt length", "kind rate (ceiling)", "features", "auto", *LEARNING,
              "cascade", "oracle")


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


def item_scores(item: SuiteItem, answer: dict[str, Any], fit: RouterFit,
                right: bool) -> dict[str, float]:
    """Every prompt-level strategy's score of one item under `fit` (higher: remote)."""
    request = request_for(item.prompt)
    auto = complexity(request, fit)[0]
    return {"auto": auto, "features": feature_score(request, fit)[0],
            "cascade": cascade_score(item, answer, auto, fit),
            "prompt length": float(len(item.prompt)), "oracle": 0.0 if right else 1.0}


def pooled(held: list[SuiteItem], scores: dict[str, list[float]],
           labels: dict[str, bool]) -> dict[str, Any]:
    """APGR of each strategy on the pooled held-out items, with the kind-rate ceiling,
    and each as a share of the oracle's gain over random."""
    rate = kind_rates(held, labels)
    scores["kind rate (ceiling)"] = [rate[(it.source, it.kind)] for it in held]
    weak = [labels[it.id] for it in held]
    oracle = apgr(curve(scores["oracle"], weak))
    rows = {name: apgr(curve(scores[name], weak)) for name in STRATEGIES}
    return {"prompts": len(held), "local_right": sum(weak) / len(weak),
            "apgr": rows, "share": {k: (v - 0.5) / (oracle - 0.5) for k, v in rows.items()}}


def score_parts(items: list[SuiteItem], parts: list[list[SuiteItem]], labels: dict[str, bool],
                answers: dict[str, Any]) -> dict[str, Any]:
    """Fit without each part, score the part; pool the scores of every part."""
    held = [it for part in parts for it in part]
    scores: dict[str, list[float]] = {s: [] for s in STRATEGIES}
    for part in parts:
        out = {it.id for it in part}
        fit = calibration_fit([it for it in items if it.id not in out], labels, answers)
        for it in part:
            for name, score in item_scores(it, answers[it.id], fit, labels[it.id]).items():
                scores[name].append(score)
        for name, every in LEARNING.items():
            learnt = learning_scores(part, labels, fit, every)
            scores[name] += [learnt[it.id] for it in part]
    return {**pooled(held, scores, labels), "parts": len(parts)}


def learning_scores(part: list[SuiteItem], labels: dict[str, bool], fit: RouterFit,
                    every: int) -> dict[str, float]:
    """`auto`'s score of each of `part` as the prompts arrive one by one (a seeded
    order), the outcome of every `every`-th joining a copy of `fit` once it is routed."""
    learner = fit.with_examples([])
    order = sorted(part, key=lambda it: it.id)
    random.Random(7).shuffle(order)
    out = {}
    for i, it in enumerate(order):
        out[it.id] = complexity(request_for(it.prompt), learner)[0]
        if i % every == 0:
            learner.learn(Example(it.prompt, labels[it.id], seen="verify"))
    return out


def independent(items: list[SuiteItem], labels: dict[str, bool],
                suite_answers: dict[str, Any]) -> dict[str, Any]:
    """The independent sets, each scored by the fit of the whole suite: per set, and
    pooled over the development sets, the test sets and all."""
    fit = calibration_fit(items, labels, suite_answers)
    held: dict[str, list[SuiteItem]] = {}
    marks: dict[str, bool] = {}
    scores: dict[str, dict[str, float]] = {}
    for name in set_names():
        path = ANSWERS / f"heldout-{name}.json"
        if not path.exists():
            continue
        answers = json.loads(path.read_text(encoding="utf-8"))
        held[name] = [it for it in load_set(name) if it.id in answers["answers"]]
        for it in held[name]:
            marks[it.id] = check(it, answers["answers"][it.id]["reply"])
            scores[it.id] = item_scores(it, answers["answers"][it.id], fit, marks[it.id])
        for strategy, every in LEARNING.items():
            for key, score in learning_scores(held[name], marks, fit, every).items():
                scores[key][strategy] = score
    groups = {**{name: [name] for name in held},
              "development sets": [n for n in held if n in DEVELOPMENT],
              "test sets": [n for n in held if n not in DEVELOPMENT], "all sets": list(held)}
    out = {}
    for group, names in groups.items():
        members = [it for n in names for it in held[n]]
        if members:
            out[group] = pooled(members, {s: [scores[it.id][s] for it in members]
                                          for s in STRATEGIES if s in scores[members[0].id]},
                                marks)
    return out


def calibration_fit(items: list[SuiteItem], labels: dict[str, bool],
                    answers: dict[str, Any]) -> RouterFit:
    """What `podium calibrate` would make from these items' cached answers alone: the
    router and the cascade's reading of the token probabilities."""
    local = [Answer(it.prompt, answers[it.id]["reply"], answers[it.id]["finish_reason"],
                    answers[it.id]["signals"], labels[it.id]) for it in items]
    return fit_calibration(local, [(a.prompt, a.right) for a in local], "fold")[0]


def cascade_score(item: SuiteItem, answer: dict[str, Any], auto: float,
                  fit: RouterFit) -> float:
    """The cascade's P(wrong) for a cached local answer (2: a program check failed)."""
    if answer_checks.problem(item.prompt, answer["reply"], answer["finish_reason"]):
        return 2.0
    if answer["signals"] is None:
        return auto
    return 1.0 - confidence_from(answer["signals"], auto, fit)


def kind_rates(items: Sequence[SuiteItem],
               labels: dict[str, bool]) -> dict[tuple[str, str], float]:
    """Each kind's true failure rate on `items` (a kind of one source)."""
    out: dict[tuple[str, str], list[bool]] = {}
    for it in items:
        out.setdefault((it.source, it.kind), []).append(labels[it.id])
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
            "independent": independent(items, labels, answers),
            "decide_us": decision_us(items, shipped_fit())}


def _table(columns: dict[str, dict[str, Any]]) -> str:
    names = list(columns)
    rows = [["random (expected)"] + ["0.500 (0%)"] * len(names)]
    for strategy in STRATEGIES:
        rows.append([strategy] + [f"{columns[n]['apgr'][strategy]:.3f} "
                                  f"({columns[n]['share'][strategy]:.0%})" for n in names])
    return table(["strategy"] + names, rows)


def _aims(columns: dict[str, dict[str, Any]]) -> list[str]:
    """The aim: auto and cascade recover at least the share of the oracle's gain that
    perfect knowledge of each prompt's category gives, on prompts the fit never saw."""
    lines = []
    for n, column in columns.items():
        ceiling = column["share"]["kind rate (ceiling)"]
        for strategy in ("auto", "auto, learning all", "cascade"):
            share = column["share"][strategy]
            lines.append(f"{mark(share >= ceiling)}  {n}: {strategy} {share:.0%} of the "
                         f"oracle's gain (aim: kind rate's {ceiling:.0%})")
    return lines


def report(result: dict[str, Any]) -> str:
    """The tables as text."""
    splits_, sets = result["splits"], result["independent"]
    lines = [f"{result['prompts']} suite prompts; local model {result['model']} right on "
             f"{result['local_right']:.1%}. Strong model: none, counted as always right.",
             "APGR (share of the oracle's gain over random), scores of held-out parts pooled:",
             "", _table(splits_), "",
             "Independent sets, scored by the fit of the whole suite (local right on "
             + ", ".join(f"{n} {c['local_right']:.0%}" for n, c in sets.items()
                         if n in set_names()) + "):", "",
             _table(sets), ""]
    lines += _aims({n: c for n, c in splits_.items() if n != "random half"})
    lines += _aims({n: c for n, c in sets.items() if n not in set_names()})
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

