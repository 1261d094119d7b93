"""Making a router fit from marks: the logistic weights of the instant features, the
marks as the examples of similar asks, and the figures that judge a fit. What
`podium calibrate` and `bench/calibration/fit.py` run (numpy, loaded only here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from podium.core.models.calibration_suite import request_for
from podium.core.models.neighbours import Example, Neighbours, wrong_share
from podium.core.models.router_fit import (
    EASIER,
    L2,
    PRIOR_WEIGHT,
    PRIORS,
    REMOTE_ABOVE,
    RouterFit,
)
from podium.core.models.router_metrics import apgr, cpt, curve, threshold_for
from podium.core.models.routing import feature_score, signals


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
