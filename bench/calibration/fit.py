"""Refit the shipped router fit, optionally with people's verdicts added.

The shipped fit is what `podium calibrate` makes for the embedded model
(`podium.core.models.router_fitting.fit_calibration`: the router and the cascade) from
its answers to the calibration suite, cached in `answers/smollm2.json` by
`bench/calibrate_adapt.py`. `--extra PAIRS.jsonl`
(from `podium compare --pairs`) adds judged pairs to the marks, to see what they change;
they never enter the shipped examples (the engine adds them from that person's
database anyway). `--write` writes `core/data/router_fit.json` and
`routing_examples.jsonl`.

Run: `.venv/bin/python bench/calibration/fit.py [--extra PAIRS.jsonl] [--write]`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from podium.core.config import EMBEDDED_MODEL, embedded_model_path  # noqa: E402
from podium.core.models.calibration_suite import load_suite, mark  # noqa: E402
from podium.core.models.router_fit import (  # noqa: E402
    REMOTE_ABOVE,
    fingerprint,
    write_shipped,
)
from podium.core.models.router_fitting import (  # noqa: E402
    Answer,
    cpt50_threshold,
    fit_apgr,
    fit_calibration,
    fit_router,
)

HERE = Path(__file__).resolve().parent


def main() -> None:
    """Fit and print; `--write` makes it the shipped fit."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true", help="write the shipped fit")
    parser.add_argument("--extra", type=Path, metavar="PAIRS.jsonl",
                        help="judged pairs from `podium compare --pairs`, added to the marks")
    args = parser.parse_args()
    answers = json.loads((HERE / "answers" / f"{EMBEDDED_MODEL}.json").read_text(
        encoding="utf-8"))["answers"]
    local = [Answer(it.prompt, answers[it.id]["reply"], answers[it.id]["finish_reason"],
                    answers[it.id]["signals"], mark(it, answers[it.id]["reply"]))
             for it in load_suite() if it.id in answers]
    marks = [(a.prompt, a.right) for a in local]
    extra = []
    if args.extra:
        for line in args.extra.read_text(encoding="utf-8").splitlines():
            if line.strip():
                row = json.loads(line)
                extra.append((str(row["prompt"]), bool(row["local_correct"])))
        print(f"extra: {len(extra)} judged pairs")
    fitted = fit_router(marks + extra, EMBEDDED_MODEL)
    fitted.cascade = fit_calibration(local, marks, EMBEDDED_MODEL)[0].cascade
    print(f"fit: {len(marks)} suite marks + {len(extra)} pairs, local right "
          f"{fitted.local_right:.1%}, APGR (each without itself) {fit_apgr(fitted):.3f}; "
          f"half the quality gap recovered at {cpt50_threshold(fitted)} "
          f"(REMOTE_ABOVE = {REMOTE_ABOVE})")
    for k, v in fitted.weights.items():
        print(f"  {k:<13} {v:+.3f}")
    if fitted.cascade is not None:
        print(f"cascade: {fitted.cascade.to_json()}")
    if args.write:
        shipped = fit_calibration(local, marks, EMBEDDED_MODEL)[0] if extra else fitted
        path = embedded_model_path()
        shipped.fingerprint = fingerprint(path) if path else None
        shipped.created_at = time.time()
        write_shipped(shipped)
        print(f"wrote the shipped fit ({len(shipped.examples)} examples)")


if __name__ == "__main__":
    main()
