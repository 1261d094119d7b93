"""Making a router fit from marks: the logistic weights of the instant features, the
marks as the examples of similar asks, the cascade's reading of the model's token
probabilities, and the figures that judge a fit. What `podium calibrate` and
`bench/calibration/fit.py` run (`fit_calibration`; numpy, loaded only here)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from podium.core.models import answer_checks
from podium.core.models.calibration_suite import request_for
from podium.core.models.neighbours import Example, Neighbours, wrong_share
from podium.core.models.router_fit import (
    EASIER,
    L2,
    PRIOR_WEIGHT,
    PRIORS,
    REMOTE_ABOVE,
    CascadeFit,
    RouterFit,
)
from podium.core.models.router_metrics import apgr, cpt, curve, threshold_for
from podium.core.models.routing import feature_score, logit, signals

# What the cascade weighs: a greedy forward selection by cross-validation on the
# embedded model's answers picked these two; any third added under half a point.
CASCADE_FEATURES = ("complexity", "min_logprob")
# A harder ask can only make a wrong answer likelier; a surer token only less likely.
_CASCADE_SIGNS = {"complexity": 1.0, "min_logprob": -1.0}
CASCADE_L2 = 1.0  # leaving each kind out in turn: flat from 1 to 10, a point lower at 100
# Fewer answers with token probabilities than this (or all right, or all wrong): no
# cascade fit; the shipped one serves.
MIN_CASCADE_ANSWERS = 30


@dataclass(frozen=True, slots=True)
class Answer:
    """A local model's answer to a calibration prompt, as the fit reads it."""

    prompt: str
    reply: str
    finish_reason: str | None
    signals: dict[str, float] | None  # `routing.answer_signals`; None: none given
    right: bool


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


def fit_cascade(answers: Sequence[Answer], scores: Sequence[float]) -> CascadeFit | None:
    """The cascade's reading of one model's answers (`scores`: each prompt's complexity
    score, taken without itself among the examples): the weights are fitted on the
    answers that pass the checks a program can make (the others escalate anyway); the
    escalation threshold is where the cascade recovered half the quality gap on all
    of them. None when there are too few answers to fit."""
    import numpy as np

    flagged = [answer_checks.problem(a.prompt, a.reply, a.finish_reason) is not None
               for a in answers]
    rows = [(a.signals, s, a.right) for a, s, f in zip(answers, scores, flagged, strict=True)
            if a.signals is not None and not f]
    wrong = sum(not r for _, _, r in rows)
    if len(rows) < MIN_CASCADE_ANSWERS or wrong in (0, len(rows)):
        return None
    x = np.array([[logit(s) if k == "complexity" else sig[k] for k in CASCADE_FEATURES]
                  for sig, s, _ in rows])
    y = np.array([0.0 if r else 1.0 for _, _, r in rows])
    w, bias = _logistic(x, y, np.array([_CASCADE_SIGNS[k] for k in CASCADE_FEATURES]),
                        CASCADE_L2)
    fitted = CascadeFit(round(bias, 4), {k: round(float(v), 4) for k, v in
                                         zip(CASCADE_FEATURES, w, strict=True)}, 0.0)
    # How far each answer is from passing: 2 for a failed check, 1 - its confidence;
    # an answer without token probabilities is not checked, so it passes.
    doubt = [2.0 if f else 0.0 if a.signals is None else
             1.0 - fitted.confidence({**a.signals, "complexity": logit(s)})
             for a, s, f in zip(answers, scores, flagged, strict=True)]
    threshold = threshold_for(doubt, cpt(curve(doubt, [a.right for a in answers])))
    return CascadeFit(fitted.bias, fitted.weights, round(1 - min(threshold, 1.0) + 0.0005, 3))


def fit_calibration(answers: Sequence[Answer], marks: Sequence[tuple[str, bool]],
                    model: str) -> tuple[RouterFit, list[float]]:
    """The fit `podium calibrate` stores: the router from `marks` (one per answer, in
    the same order: "keep it local", which a remote model's answers can change), the
    cascade from the local `answers`; and each prompt's complexity score taken
    without itself (for the figures)."""
    fit = fit_router(marks, model)
    scores = loo_scores(fit, [p for p, _ in marks])
    fit.cascade = fit_cascade(answers, scores)
    return fit, scores
