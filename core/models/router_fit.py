"""A router fit: what `route = "auto"` knows about one local model.

A fit holds the weights of the instant features' logistic score, the escalation
threshold, each weighted feature's typical value (reasons name what rose above it),
the examples the similar-asks lookup searches (`core.neighbours`): asks with a
mark saying whether this model answered them right, and how `route = "cascade"` reads
this model's token probabilities (`CascadeFit`: another model's mean something else).
The shipped fit (`core/data/router_fit.json` + `routing_examples.jsonl`) describes the
embedded model; `podium calibrate` makes one for the person's own model
(`core.router_fitting`) and stores it tied to the model file's fingerprint
(`fingerprint`), so a changed file asks for a new calibration.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from podium.core import paths
from podium.core.models.neighbours import Example, K, Neighbours, load_examples

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
# Outcomes seen at run time a fit holds at most: enough for every step of many
# recipes, and the similar-asks lookup stays well under 1 ms. A new process loads the
# newest half, leaving room to learn.
MAX_SEEN = 2000
# Outcomes of nearly the same ask (cosine of trigrams at least `SAME_ASK`: one step's
# template with other names and numbers, about 0.8) a fit keeps: as many as the
# lookup weighs.
SAME_ASK = 0.7
SAME_ASK_KEPT = K


@dataclass(frozen=True)
class CascadeFit:
    """How the cascade judges one local model's answers: a logistic regression of "the
    answer is wrong" from its token probabilities (`routing.answer_signals`) and the
    ask's complexity logit, fitted on the calibration answers that pass the checks a
    program can make; it escalates below `min_confidence`, the confidence that
    recovered half the quality gap on the calibration suite (`router_fitting.fit_cascade`)."""

    bias: float
    weights: dict[str, float]
    min_confidence: float

    def confidence(self, x: Mapping[str, float]) -> float:
        """The chance (0..1) that the answer is right, from its features."""
        z = self.bias + sum(w * x[k] for k, w in self.weights.items())
        return 1.0 - 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0)))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"bias": self.bias, "weights": self.weights,
                "min_confidence": self.min_confidence}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CascadeFit:
        """From `to_json`."""
        return cls(float(data["bias"]), {k: float(v) for k, v in data["weights"].items()},
                   float(data["min_confidence"]))


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
    # None: made before the cascade was calibrated too; the shipped one's serves.
    cascade: CascadeFit | None = None
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
        seen = sum(e.seen is not None for e in self.examples)
        if judged:
            said += f", with {judged} judged comparison{'s' if judged != 1 else ''}"
        if seen:
            said += f", with {seen} outcome{'s' if seen != 1 else ''} seen here"
        if not self.shipped and self.cascade is None:
            said += ("; the cascade reads its token probabilities as the embedded model's "
                     "(too few answers, or calibrated before cascades were)")
        return said + (f"; {self.note}" if self.note else "")

    def learn(self, example: Example) -> bool:
        """Add an outcome seen at run time, searchable at once (the index is extended,
        not rebuilt); False when it was not taken. A recipe step sends one template
        again and again: once the `SAME_ASK_KEPT` nearest examples of an ask are all
        outcomes of nearly the same ask, more add little the lookup would weigh, and
        would crowd it (trigrams most examples share are skipped as common). At most
        `MAX_SEEN` in all. Never
        call this on the shipped fit, which every process shares: learn on
        `with_examples([])`."""
        if sum(e.seen is not None for e in self.examples) >= MAX_SEEN:
            return False
        near = self.index().nearest(example.prompt, SAME_ASK_KEPT)
        if len(near) == SAME_ASK_KEPT and all(n.example.seen is not None and
                                              n.similarity >= SAME_ASK for n in near):
            return False  # what the lookup weighs for this ask is all outcomes already
        self.examples.append(example)
        self.index().add(example)
        return True

    def with_examples(self, extra: Sequence[Example], note: str | None = None) -> RouterFit:
        """The same fit with more examples (a person's verdicts) and a note."""
        return replace(self, examples=[*self.examples, *extra], _index=None,
                       note=note if note is not None else self.note)

    def to_json(self) -> dict[str, Any]:
        """The fit without its examples (stored beside them)."""
        return {"model": self.model, "weights": self.weights, "bias": self.bias,
                "threshold": self.threshold, "typical": self.typical,
                "fingerprint": self.fingerprint, "created_at": self.created_at,
                "prompts": self.prompts, "local_right": self.local_right,
                **({"cascade": self.cascade.to_json()} if self.cascade else {})}

    @classmethod
    def from_json(cls, data: dict[str, Any], examples: list[Example], *,
                  shipped: bool = False) -> RouterFit:
        """A fit from `to_json` and its examples."""
        return cls(model=str(data["model"]), weights={**data["weights"], **PRIORS},
                   bias=float(data["bias"]), threshold=float(data["threshold"]),
                   typical=dict(data["typical"]), examples=examples, shipped=shipped,
                   fingerprint=data.get("fingerprint"), created_at=data.get("created_at"),
                   prompts=int(data.get("prompts", len(examples))),
                   local_right=data.get("local_right"),
                   cascade=CascadeFit.from_json(data["cascade"]) if data.get("cascade")
                   else None)


_SHIPPED: list[RouterFit] = []


def shipped_fit() -> RouterFit:
    """The fit made on the embedded model, shipped with Podium (loaded once)."""
    if not _SHIPPED:
        data = json.loads(SHIPPED_FIT.read_text(encoding="utf-8"))
        _SHIPPED.append(RouterFit.from_json(data, load_examples(SHIPPED_EXAMPLES),
                                            shipped=True))
    return _SHIPPED[0]


def cascade_of(fit: RouterFit | None) -> CascadeFit:
    """The cascade's reading of the local model's answers: `fit`'s, else the shipped
    fit's (a fit stored before calibrations fitted the cascade has none)."""
    cascade = (fit or shipped_fit()).cascade or shipped_fit().cascade
    assert cascade is not None, "the shipped fit has a cascade (bench/calibration/fit.py)"
    return cascade


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


def write_shipped(fit: RouterFit) -> None:
    """Make `fit` the shipped one (`bench/calibration/ship_fit.py`)."""
    data = fit.to_json()
    data["weights"] = {k: v for k, v in fit.weights.items() if k not in PRIORS}
    SHIPPED_FIT.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    SHIPPED_EXAMPLES.write_text("".join(
        json.dumps({"prompt": e.prompt, "local_right": e.local_right}, ensure_ascii=False)
        + "\n" for e in fit.examples if not e.judged and e.seen is None), encoding="utf-8")
    _SHIPPED.clear()
