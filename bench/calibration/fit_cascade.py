"""Fit the cascade's confidence check on the train half of the calibration set.

`route = "cascade"` answers locally first and escalates when the answer looks wrong.
A logistic regression (fit.py's: L2, signs fixed, numpy only) predicts "the local
model got it wrong" from the answer's own token probabilities and the request's
complexity score (`core.routing.confidence_features`), read from the cached answers
in `local_confidence.json` (`build.py --confidence`), on the answers that pass the checks a
program can make (`core.answer_checks`; the others escalate anyway). The features are the ones a
greedy forward selection by 5-fold cross-validation on the train half picked
(`--select` reruns it); the held-out half is never looked at. With `--write` the
weights and the escalation threshold replace the fitted-cascade block in
`core/models/routing.py`.

Run: `.venv/bin/python bench/calibration/fit_cascade.py [--select] [--write]`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from calibration.build import SYSTEM  # noqa: E402
from calibration.confidence import load_answers, request_for  # noqa: E402
from calibration.fit import cross_validate, fit, write_block  # noqa: E402
from calibration.metrics import apgr, cpt, curve, load, split, threshold_for  # noqa: E402

from podium.core.models.answer_checks import problem  # noqa: E402
from podium.core.models.neighbours import Neighbours  # noqa: E402
from podium.core.models.router_fit import shipped_fit  # noqa: E402
from podium.core.models.routing import confidence_features  # noqa: E402

# Chosen by `--select` (5-fold CV on train, L2 = 1): more features added < 0.5 points.
FEATURES = ("complexity", "min_logprob")
L2 = 1.0  # the CV share is flat (59%) from L2 = 0.3 to 10
# +1: a larger value can only make "wrong" likelier; -1: only less likely.
SIGNS = {"complexity": 1.0, "tokens": 1.0, "cut_off": 1.0}  # the rest: probabilities, -1


def table(items: list[dict[str, Any]]) -> tuple[dict[str, dict[str, float]], list[str]]:
    """id -> every feature, and the feature names. The complexity score is taken
    without the prompt itself among the router's examples (the train half)."""
    answers, _ = load_answers()
    examples = shipped_fit().with_examples([])
    examples._index = Neighbours(examples.examples, leave_one_out=True)
    rows = {}
    for it in items:
        a = answers[it["id"]]
        x = confidence_features(request_for(it["prompt"], SYSTEM), a.logprobs,
                                a.finish_reason, examples)
        if x is None:
            raise SystemExit(f"{it['id']}: no token probabilities in the cache")
        rows[it["id"]] = x
    return rows, list(next(iter(rows.values())))


def passing(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The prompts whose local answer passes the checks a program can make: the
    confidence decides only those (the others are escalated whatever it says)."""
    answers, _ = load_answers()
    return [it for it in items if problem(it["prompt"], answers[it["id"]].text,
                                          answers[it["id"]].finish_reason) is None]


def select(rows: dict[str, dict[str, float]], names: list[str], train: list[dict[str, Any]],
           y: np.ndarray, l2: float, steps: int = 6) -> list[str]:
    """Greedy forward selection by the train half's cross-validated share of the
    oracle's gain; prints each step."""
    chosen: list[str] = []
    for _ in range(steps):
        def score(k: str) -> float:
            ks = chosen + [k]
            x = np.array([[rows[it["id"]][f] for f in ks] for it in train])
            return cross_validate(x, y, np.array([SIGNS.get(f, -1.0) for f in ks]), l2)
        best = max((k for k in names if k not in chosen), key=score)
        chosen.append(best)
        print(f"  {score(best):.1%} of the oracle's gain (5-fold CV on train): {chosen}")
    return chosen


def fitted(l2: float = L2) -> dict[str, Any]:
    """The fit on the train half: weights, bias, the escalation threshold and figures.
    The weights are fitted on the answers that pass the checks; the threshold is placed
    on the whole half, where a flagged answer always escalates."""
    items, labels = load()
    everything = split(items)[0]  # the test half is not used here
    train = passing(everything)
    rows, _ = table(train)
    y = np.array([0.0 if labels[it["id"]] else 1.0 for it in train])
    x = np.array([[rows[it["id"]][f] for f in FEATURES] for it in train])
    signs = np.array([SIGNS.get(f, -1.0) for f in FEATURES])
    w, bias = fit(x, y, signs, l2)
    wrong = dict(zip((it["id"] for it in train), 1 / (1 + np.exp(-(x @ w + bias))),
                     strict=True))
    scores = [float(wrong.get(it["id"], 2.0)) for it in everything]  # 2: flagged
    points = curve(scores, [labels[it["id"]] for it in everything])
    threshold = threshold_for(scores, cpt(points))
    return {
        "weights": {f: round(float(v), 4) for f, v in zip(FEATURES, w, strict=True)},
        "bias": round(bias, 4),
        # Escalate below the confidence that recovered half the quality gap on train.
        "min_confidence": round(1 - min(threshold, 1.0) + 0.0005, 3),
        "train": len(everything), "passing": len(train), "wrong": int(y.sum()),
        "apgr": apgr(points), "cpt50": cpt(points),
        "cv_share": cross_validate(x, y, signs, l2)}


def main() -> None:
    """Fit, print the weights and the train APGR; `--write` puts them in core/models/routing.py."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update core/models/routing.py")
    parser.add_argument("--select", action="store_true", help="rerun the feature selection")
    parser.add_argument("--l2", type=float, default=L2)
    args = parser.parse_args()
    if args.select:
        items, labels = load()
        train = passing(split(items)[0])
        rows, names = table(train)
        select(rows, names, train, np.array([0.0 if labels[it["id"]] else 1.0
                                              for it in train]), args.l2)
    f = fitted(args.l2)
    weights, bias, minimum = f["weights"], f["bias"], f["min_confidence"]
    print(f"train: {f['train']} prompts, {f['passing']} pass the checks, of which the "
          f"local model got {f['wrong']} wrong; train APGR {f['apgr']:.3f}; 5-fold CV on "
          f"the passing {f['cv_share']:.0%} of the oracle's gain")
    for k, v in weights.items():
        print(f"  {k:<12} {v:+.4f}")
    print(f"  {'bias':<12} {bias:+.4f}\nCASCADE_MIN_CONFIDENCE {minimum} "
          f"(train CPT(50%) {f['cpt50']:.1%})")
    if args.write:
        lines = ",\n".join(f'    "{k}": {v}' for k, v in weights.items())
        block = (
            "# --- fitted cascade weights (bench/calibration/fit_cascade.py --write rewrites "
            "this block) ---\n"
            f"# A logistic regression (L2 = {args.l2}, signs fixed) of 'the local answer is\n"
            "# wrong' from its token probabilities (greedy, top 2 alternatives) and the\n"
            f"# complexity logit, on the {f['passing']} answers of the train half of\n"
            "# bench/calibration that pass core.answer_checks (SmolLM2-135M; the others\n"
            "# escalate anyway). Fitted for the embedded model: another model's\n"
            "# probabilities mean something else. The cascade escalates below the confidence\n"
            "# that recovered half the quality gap on the whole train half.\n"
            f"CASCADE_MIN_CONFIDENCE = {minimum}\nCASCADE_BIAS = {bias}\n"
            f"CASCADE_WEIGHTS: dict[str, float] = {{\n{lines},\n}}\n"
            "# --- end of fitted cascade weights ---")
        write_block("fitted cascade weights", block)


if __name__ == "__main__":
    main()
