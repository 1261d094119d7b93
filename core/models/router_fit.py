"""A router fit: what `route = "auto"` knows about one local model.

A fit holds the weights of the instant features' logistic score, the escalation
threshold, each weighted feature's typical value (reasons name what rose above it),
and the examples the similar-asks lookup searches (`core.neighbours`): asks with a
mark saying whether this model answered them right. The shipped fit
(`core/data/router_fit.json` + `routing_examples.jsonl`) describes the embedded model;
`podium calibrate` makes one for the person's own model (`fit_router`) and stores it
tied to the model file's fingerprint (`fingerprint`), so a changed file asks for a new
calibration.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from podium.core import paths
from podium.core.models.neighbours import Example, Neighbours, load_examples, wrong_share
from podium.core.models.router_metrics import apgr, cpt, curve, threshold_for

SHIPPED_FIT = paths.shipped_data("router_fit.json")
SHIPPED_EXAMPLES = paths.shipped_data("routing_examples.jsonl")
# Hand-set weights of features the suite does not vary (one turn, no schema, short
# answers): kept as they are by every fit.
PRIORS = {"long_answer": 0.5, "schema": 0.3, "turns": 0.15, "context": 0.3}
# Features that can only make a request easier; all others only harder, so the score is
# monotone in each (a longer, more numeric ask never scores lower).
EASIER = frozenset({"closed", "short_plain", "social", "quoted"})
L2 = 3.0  # 5-fold CV on the embedded model's marks: flat from 0.3 to 30
# How much the features' score counts against the similar asks', in units of one
# perfectly similar ask.
PRIOR_WEIGHT = 1.0
# Route remote when the estimated chance that the local model gets the ask wrong is at
# least this. A preference (quality against remote calls), not a property of a model:
# every fit uses it, so a stronger model, wrong less often, keeps more local. Placed
# where it recovered half the quality gap on the embedded model's marks
# (`bench/calibration/fit.py` prints that point, `cpt50_threshold`).
REMOTE_ABOVE = 0.78
_EDGE = 1 << 20  # bytes hashed at each end of a model file


@dataclass
class RouterFit:
    """The router's knowledge of one local model (see the module docstring)."""

    model: str
    weights: dict[str, float]
    bias: float
    threshold: float
    typical: dict[str, float]
    examples: list[Example]
    shipped: bool = False
    fingerprint: str | None = None
    created_at: float | None = None
    prompts: int = 0
    local_right: float | None = None  # share of the suite the model got right
    note: str | None = None  # why this fit serves (a stale or missing calibration)
    _index: Neighbours | None = field(default=None, repr=False, compare=False)

    def index(self) -> Neighbours:
        """The examples' search index, built on first use (~15 ms per 1000 examples)."""
        if self._index is None:
            self._index = Neighbours(self.examples)
        return self._index

    def describe(self, now: float | None = None) -> str:
        """Which fit this is, for a decision's reasons: whose, and how old."""
        if self.shipped:
            said = "router fit: shipped, for the embedded model"
        else:
            age = age_text((now or time.time()) - (self.created_at or 0.0))
            said = f"router fit: {self.model}, calibrated {age} ago ({self.prompts} prompts)"
        judged = sum(e.judged for e in self.examples)
        if judged:
            said += f", with {judged} judged comparison{'s' if judged != 1 else ''}"
        return said + (f"; {self.note}" if self.note else "")

    def with_examples(self, extra: Sequence[Example], note: str | None = None) -> RouterFit:
        """The same fit with more examples (a person's verdicts) and a note."""
        return replace(self, examples=[*self.examples, *extra], _index=None,
                       note=note if note is not None else self.note)

    def to_json(self) -> dict[str, Any]:
        """The fit without its examples (stored beside them)."""
        return {"model": self.model, "weights": self.weights, "bias": self.bias,
                "threshold": self.threshold, "typical": self.typical,
                "fingerprint": self.fingerprint, "created_at": self.created_at,
                "prompts": self.prompts, "local_right": self.local_right}

    @classmethod
    def from_json(cls, data: dict[str, Any], examples: list[Example], *,
                  shipped: bool = False) -> RouterFit:
        """A fit from `to_json` and its examples."""
        return cls(model=str(data["model"]), weights={**data["weights"], **PRIORS},
                   bias=float(data["bias"]), threshold=float(data["threshold"]),
                   typical=dict(data["typical"]), examples=examples, shipped=shipped,
                   fingerprint=data.get("fingerprint"), created_at=data.get("created_at"),
                   prompts=int(data.get("prompts", len(examples))),
                   local_right=data.get("local_right"))


_SHIPPED: list[RouterFit] = []


def shipped_fit() -> RouterFit:
    """The fit made on the embedded model, shipped with Podium (loaded once)."""
    if not _SHIPPED:
        data = json.loads(SHIPPED_FIT.read_text(encoding="utf-8"))
        _SHIPPED.append(RouterFit.from_json(data, load_examples(SHIPPED_EXAMPLES),
                                            shipped=True))
    return _SHIPPED[0]


def fingerprint(path: str | Path) -> str:
    """A cheap identity of a model file: its size and a SHA-256 of its first and last
    MiB (a GGUF's header names its type and quantization; its tail holds the last
    tensors). Not the modification time: a copied or touched file is the same model."""
    file = Path(path)
    size = file.stat().st_size
    digest = hashlib.sha256(str(size).encode())
    with file.open("rb") as f:
        digest.update(f.read(_EDGE))
        if size > 2 * _EDGE:
            f.seek(size - _EDGE)
            digest.update(f.read(_EDGE))
    return f"{size}:{digest.hexdigest()[:20]}"


def age_text(seconds: float) -> str:
    """'40 s', '12 min', '3 h', '5 days'."""
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


# --- fitting ------------------------------------------------------------------------------


def _logistic(x: Any, y: Any, signs: Any, l2: float) -> tuple[Any, float]:
    """Weights and bias of an L2 logistic regression on standardised columns, each
    weight kept to its sign, returned for the raw columns (projected gradient steps)."""
    import numpy as np

    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    penalty = np.full(z.shape[1], l2)
    penalty[0] = 0.0  # the bias is not shrunk
    lipschitz = 0.25 * np.linalg.eigvalsh(z.T @ z).max() + l2
    w = np.zeros(z.shape[1])
    rate = (y.sum() + 0.5) / (len(y) + 1.0)  # never 0 or 1: a suite all right still fits
    w[0] = math.log(rate / (1 - rate))
    for _ in range(20000):
        p = 1 / (1 + np.exp(-z @ w))
        step = (z.T @ (p - y) + penalty * w) / lipschitz
        w -= step
        w[1:] = np.where(signs > 0, np.maximum(w[1:], 0), np.minimum(w[1:], 0))
        if np.abs(step).max() < 1e-8:
            break
    raw = w[1:] / sd
    return raw, float(w[0] - (raw * mu).sum())


def fit_router(marks: Sequence[tuple[str, bool]], model: str, *,
               l2: float = L2) -> RouterFit:
    """Fit a router from `(prompt, local model right)` marks: the features' weights and
    the marks as the examples to look up; the threshold is `REMOTE_ABOVE`."""
    import numpy as np

    from podium.core.models.calibration_suite import request_for
    from podium.core.models.routing import signals

    names = [k for k in signals(request_for("x")) if k not in PRIORS]
    feats = [signals(request_for(p)) for p, _ in marks]
    x = np.array([[f[k] for k in names] for f in feats], dtype=float).reshape(len(marks),
                                                                              len(names))
    y = np.array([0.0 if right else 1.0 for _, right in marks])
    signs = np.array([-1.0 if k in EASIER else 1.0 for k in names])
    w, bias = _logistic(x, y, signs, l2) if len(marks) else (np.zeros(len(names)), 0.0)
    weights = {k: round(float(v), 4) for k, v in zip(names, w, strict=True)}
    means = dict(zip(names, x.mean(0) if len(marks) else np.zeros(len(names)), strict=True))
    typical = {k: round(float(means[k]), 4) for k in names if weights[k] != 0}
    examples = [Example(p, right) for p, right in marks]
    return RouterFit(model, {**weights, **PRIORS}, round(bias, 4), REMOTE_ABOVE, typical,
                     examples, prompts=len(marks),
                     local_right=(sum(r for _, r in marks) / len(marks)) if marks else None)


def cpt50_threshold(fit: RouterFit) -> float:
    """The score that recovered half the quality gap on the fit's own examples (each
    scored without itself): where `REMOTE_ABOVE` was placed for the embedded model."""
    scores = loo_scores(fit, [e.prompt for e in fit.examples])
    right = [e.local_right for e in fit.examples]
    if all(right) or not any(right):
        return REMOTE_ABOVE
    return round(threshold_for(scores, cpt(curve(scores, right))) - 0.0005, 4)


def loo_scores(fit: RouterFit, prompts: Sequence[str]) -> list[float]:
    """The fit's complexity score of each of `prompts`, each scored without itself
    among the examples (for placing a threshold on the examples themselves)."""
    from podium.core.models.calibration_suite import request_for
    from podium.core.models.routing import feature_score

    index = Neighbours(fit.examples, leave_one_out=True)
    out = []
    for prompt in prompts:
        prior = feature_score(request_for(prompt), fit)[0]
        wrong, weight = wrong_share(index.nearest(prompt))
        out.append((wrong * weight + PRIOR_WEIGHT * prior) / (weight + PRIOR_WEIGHT))
    return out


def fit_apgr(fit: RouterFit) -> float:
    """APGR of the fit on its own examples, each scored without itself."""
    scores = loo_scores(fit, [e.prompt for e in fit.examples])
    return apgr(curve(scores, [e.local_right for e in fit.examples]))


def write_shipped(fit: RouterFit) -> None:
    """Make `fit` the shipped one (`bench/calibration/ship_fit.py`)."""
    data = fit.to_json()
    data["weights"] = {k: v for k, v in fit.weights.items() if k not in PRIORS}
    SHIPPED_FIT.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    SHIPPED_EXAMPLES.write_text("".join(
        json.dumps({"prompt": e.prompt, "local_right": e.local_right}, ensure_ascii=False)
        + "\n" for e in fit.examples if not e.judged), encoding="utf-8")
    _SHIPPED.clear()
