"""Fit the router on the train half of the calibration set.

Two parts, as `core.routing.complexity` blends them. A logistic regression (L2,
projected gradient steps; numpy only) predicts "the local model gets this wrong" from
`core.routing.signals`; features that are constant on the set (the priors: long answer,
schema, turns, context) keep their hand-set weights. And the train half, with the
embedded model's marks, becomes the examples the router looks up similar asks in
(`core.neighbours`). The escalation threshold is the one that recovered half the
quality gap on train, each train prompt scored without itself among the examples.
With `--write` the weights and threshold replace the fitted-weights block in
`core/models/routing.py`, and the examples `core/data/routing_examples.jsonl`.

Refit after changing the prompts, the labels or the signals:
`.venv/bin/python bench/calibration/build.py --label` (only if prompts or model changed),
then `.venv/bin/python bench/calibration/fit.py --write`, then `bench/routing.py`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from calibration.build import SYSTEM  # noqa: E402
from calibration.metrics import apgr, cpt, curve, load, split, threshold_for  # noqa: E402

from podium.core.models import neighbours, routing  # noqa: E402
from podium.core.models.provider import Message, ModelRequest  # noqa: E402

PRIORS = {"long_answer": 0.5, "schema": 0.3, "turns": 0.15, "context": 0.3}
# Features that can only make a request easier; all others can only make it harder, so
# the score is monotone in each (a longer, more numeric ask never scores lower).
EASIER = {"closed", "short_plain", "social", "quoted"}
L2 = 3.0  # `--cv` on the train half: flat from 0.3 to 30 (37-39% of the oracle's gain)


def request_for(prompt: str) -> ModelRequest:
    """The request the labels were made with."""
    return ModelRequest((Message("system", SYSTEM), Message("user", prompt)),
                        temperature=0.0, max_tokens=64)


def fit(x: np.ndarray, y: np.ndarray, signs: np.ndarray,
        l2: float = L2) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2 logistic regression on standardised columns, each
    weight kept to its sign (+1: the feature can only raise the score, -1: only lower
    it), returned for the raw columns. Projected gradient descent: numpy only."""
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0  # the bias is not shrunk
    lipschitz = 0.25 * np.linalg.eigvalsh(z.T @ z).max() + l2
    w = np.zeros(z.shape[1])
    w[0] = np.log(y.mean() / (1 - y.mean()))
    for _ in range(20000):
        p = 1 / (1 + np.exp(-z @ w))
        step = (z.T @ (p - y) + penalty * w) / lipschitz
        w -= step
        w[1:] = np.where(signs > 0, np.maximum(w[1:], 0), np.minimum(w[1:], 0))
        if np.abs(step).max() < 1e-8:
            break
    raw = w[1:] / sd
    return raw, float(w[0] - (raw * mu).sum())


def cross_validate(x: np.ndarray, y: np.ndarray, signs: np.ndarray, l2: float,
                   folds: int = 5) -> float:
    """Mean share of the oracle's gain over random, (APGR - 0.5) / (oracle - 0.5), over
    `folds` seeded folds of the train half: for choosing features and L2 without
    looking at the test half."""
    order = np.random.default_rng(0).permutation(len(y))
    shares = []
    for f in range(folds):
        held = order[f::folds]
        kept = np.setdiff1d(order, held)
        w, bias = fit(x[kept], y[kept], signs, l2)
        right = [not bool(v) for v in y[held]]
        scores = list(1 / (1 + np.exp(-(x[held] @ w + bias))))
        oracle = apgr(curve([0.0 if r else 1.0 for r in right], right))
        shares.append((apgr(curve(scores, right)) - 0.5) / (oracle - 0.5))
    return float(np.mean(shares))


def write_block(name: str, block: str) -> None:
    """Replace the `# --- NAME ... # --- end of NAME ---` block of core/models/routing.py."""
    path = ROOT / "core" / "models" / "routing.py"
    text = path.read_text(encoding="utf-8")
    text = re.sub(rf"# --- {name}.*?# --- end of {name} ---", lambda _: block, text,
                  flags=re.S)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


def main() -> None:
    """Fit, print the weights and the train APGR; `--write` puts them in core/models/routing.py."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="update core/models/routing.py")
    parser.add_argument("--l2", type=float, default=L2)
    parser.add_argument("--cv", action="store_true", help="5-fold CV on the train half")
    parser.add_argument("--extra", type=Path, metavar="PAIRS.jsonl",
                        help="judged pairs from `podium compare --pairs`, added to the "
                        "train half")
    args = parser.parse_args()
    items, labels = load()
    train, _ = split(items)
    if args.extra:  # people's verdicts on real requests: train only, never the test half
        for n, line in enumerate(args.extra.read_text(encoding="utf-8").splitlines()):
            if line.strip():
                row = json.loads(line)
                train.append({"id": f"pair{n}", "prompt": row["prompt"], "kind": "pair"})
                labels[f"pair{n}"] = bool(row["local_correct"])
        print(f"extra: {sum(1 for it in train if it['kind'] == 'pair')} judged pairs")
    names = [k for k in routing.signals(request_for("x")) if k not in PRIORS]
    x = np.array([[routing.signals(request_for(it["prompt"]))[k] for k in names]
                  for it in train])
    y = np.array([0.0 if labels[it["id"]] else 1.0 for it in train])
    signs = np.array([-1.0 if k in EASIER else 1.0 for k in names])
    if args.cv:
        share = cross_validate(x, y, signs, args.l2)
        print(f"5-fold CV on train (L2 = {args.l2}): {share:.0%} of the oracle's gain")
    w, bias = fit(x, y, signs, args.l2)
    weights = {k: round(float(v), 3) for k, v in zip(names, w, strict=True)}
    weights.update(PRIORS)
    priors = list(1 / (1 + np.exp(-(x @ w + bias))))
    # Judged pairs (--extra) stay out of the shipped examples: they are someone's own
    # requests, and the engine adds them from that person's database anyway.
    examples = [neighbours.Example(it["prompt"], labels[it["id"]]) for it in train
                if it["kind"] != "pair"]
    index = neighbours.Neighbours(examples, leave_one_out=True)
    scores = [blend(prior, it["prompt"], index) for prior, it in zip(priors, train, strict=True)]
    points = curve(scores, [labels[it["id"]] for it in train])
    fitted = apgr(points)
    # Route remote from the score that recovered half the quality gap on train.
    threshold = round(threshold_for(scores, cpt(points)) - 0.0005, 3)
    print(f"train: {len(train)} prompts, local wrong on {int(y.sum())}; train APGR "
          f"{apgr(curve(priors, [labels[it['id']] for it in train])):.3f} by the features, "
          f"{fitted:.3f} with similar asks (each without itself)")
    for k, v in weights.items():
        print(f"  {k:<13} {v:+.3f}" + ("  (prior, not fitted)" if k in PRIORS else ""))
    print(f"  {'bias':<13} {bias:+.3f}\nREMOTE_THRESHOLD {threshold} (train CPT(50%) "
          f"{cpt(points):.1%})")
    if args.write:
        lines = ",\n".join(f'    "{k}": {v}' for k, v in weights.items())
        means = dict(zip(names, x.mean(0), strict=True))
        typical = ",\n".join(f'    "{k}": {round(float(means[k]), 3)}' for k in names
                             if weights[k] != 0)
        block = ("# --- fitted weights (bench/calibration/fit.py --write rewrites this block) ---\n"
                 f"# A logistic regression (L2 = {args.l2}, signs fixed) of 'the local model gets\n"
                 f"# it wrong' on the train half of bench/calibration ({len(train)} prompts,\n"
                 "# SmolLM2-135M). The last four weights are hand-set priors: the set does not\n"
                 "# vary them. The threshold (on the score blended with similar asks) recovered\n"
                 "# half the quality gap on train.\n"
                 f"REMOTE_THRESHOLD = {threshold}\n"
                 f"BIAS = {round(bias, 3)}\nWEIGHTS: dict[str, float] = {{\n{lines},\n}}\n"
                 "# Each weighted feature's mean on train: reasons name what rose above it.\n"
                 f"TYPICAL: dict[str, float] = {{\n{typical},\n}}\n"
                 "# --- end of fitted weights ---")
        write_block("fitted weights", block)
        neighbours.SHIPPED.write_text("".join(
            json.dumps({"prompt": e.prompt, "local_right": e.local_right}) + "\n"
            for e in examples), encoding="utf-8")
        print(f"wrote {neighbours.SHIPPED.relative_to(ROOT)} ({len(examples)} examples)")


def blend(prior: float, prompt: str, index: neighbours.Neighbours) -> float:
    """`core.routing.complexity`'s blend of a feature score with similar asks."""
    wrong, weight = neighbours.wrong_share(index.nearest(prompt))
    return (wrong * weight + routing.PRIOR_WEIGHT * prior) / (weight + routing.PRIOR_WEIGHT)


if __name__ == "__main__":
    main()
