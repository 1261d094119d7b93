"""Refit the shipped router fit, optionally with people's verdicts added.

The shipped fit is what `podium calibrate` makes for the embedded model
(`podium.core.models.router_fitting.fit_router`) from its marks on the calibration suite,
cached in `answers/smollm2.json` by `bench/calibrate_adapt.py`. `--extra PAIRS.jsonl`
(from `podium compare --pairs`) adds judged pairs to the marks, to see what they change;
they never enter the shipped examples (the engine adds them from that person's
database anyway). `--write` writes `core/data/router_fit.json` and
`routing_examples.jsonl`. `fit` and `cross_validate` below serve `fit_cascade.py`.

Run: `.venv/bin/python bench/calibration/fit.py [--extra PAIRS.jsonl] [--write]`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from calibration.metrics import apgr, curve  # noqa: E402

from podium.core.config import EMBEDDED_MODEL, embedded_model_path  # noqa: E402
from podium.core.models.calibration_suite import load_suite, mark  # noqa: E402
from podium.core.models.router_fit import (  # noqa: E402
    L2,
    REMOTE_ABOVE,
    fingerprint,
    write_shipped,
)
from podium.core.models.router_fitting import (  # noqa: E402
    _logistic,
    cpt50_threshold,
    fit_apgr,
    fit_router,
)

HERE = Path(__file__).resolve().parent


def fit(x: np.ndarray, y: np.ndarray, signs: np.ndarray,
        l2: float = L2) -> tuple[np.ndarray, float]:
    """The router's logistic regression (signs fixed), for `fit_cascade.py`."""
    w, bias = _logistic(x, y, signs, l2)
    return np.asarray(w), bias


def cross_validate(x: np.ndarray, y: np.ndarray, signs: np.ndarray, l2: float,
                   folds: int = 5) -> float:
    """Mean share of the oracle's gain over random over `folds` seeded folds."""
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


def main() -> None:
    """Fit and print; `--write` makes it the shipped fit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write the shipped fit")
    parser.add_argument("--extra", type=Path, metavar="PAIRS.jsonl",
                        help="judged pairs from `podium compare --pairs`, added to the marks")
    args = parser.parse_args()
    answers = json.loads((HERE / "answers" / f"{EMBEDDED_MODEL}.json").read_text(
        encoding="utf-8"))["answers"]
    marks = [(it.prompt, mark(it, answers[it.id]["reply"])) for it in load_suite()
             if it.id in answers]
    extra = []
    if args.extra:
        for line in args.extra.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                extra.append((str(row["prompt"]), bool(row["local_correct"])))
        print(f"extra: {len(extra)} judged pairs")
    fitted = fit_router(marks + extra, EMBEDDED_MODEL)
    print(f"fit: {len(marks)} suite marks + {len(extra)} pairs, local right "
          f"{fitted.local_right:.1%}, APGR (each without itself) {fit_apgr(fitted):.3f}; "
          f"half the quality gap recovered at {cpt50_threshold(fitted)} "
          f"(REMOTE_ABOVE = {REMOTE_ABOVE})")
    for k, v in fitted.weights.items():
        print(f"  {k:<13} {v:+.3f}")
    if args.write:
        shipped = fit_router(marks, EMBEDDED_MODEL) if extra else fitted
        path = embedded_model_path()
        shipped.fingerprint = fingerprint(path) if path else None
        shipped.created_at = time.time()
        write_shipped(shipped)
        print(f"wrote the shipped fit ({len(shipped.examples)} examples)")


def write_block(name: str, block: str) -> None:
    """Replace the `# --- NAME ... # --- end of NAME ---` block of core/models/routing.py."""
    path = ROOT / "core" / "models" / "routing.py"
    text = path.read_text(encoding="utf-8")
    text = re.sub(rf"# --- {name}.*?# --- end of {name} ---", lambda _: block, text,
                  flags=re.S)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
