"""Which model answers a call, and why.

`decide` turns a request and a step's policy into a `Decision`. The complexity
score comes from instant features of the request (length, number of asks, code,
math, reasoning words, structured output); it is computed the same whether or
not a remote model is available, so decisions can be compared and calibrated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from core.provider import ModelRequest

Tier = Literal["local", "remote"]
REMOTE_THRESHOLD = 0.5

_REASONING = re.compile(r"\b(why|explain|prove|derive|compare|analy[sz]e|step[- ]by[- ]step|"
                        r"reason|plan|design|evaluate|trade-?offs?)\b", re.I)
_CODE = re.compile(r"```|\bdef |\bclass |\bfunction\b|;\s*$|\{\s*$", re.M)
_MATH = re.compile(r"\d+\s*[-+*/^]\s*\d+|\bintegral\b|\bequation\b|\bprobability\b", re.I)


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen model and the reasons, stored with the step."""

    model: str
    tier: Tier
    score: float
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {"model": self.model, "tier": self.tier, "score": round(self.score, 3),
                "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Policy:
    """A step's routing wishes."""

    route: str = "auto"  # auto | local | remote | <model name>
    model: str | None = None
    privacy: str | None = None  # "local" pins to this machine


def complexity(request: ModelRequest) -> tuple[float, list[str]]:
    """A 0..1 score (higher is harder) and the features that raised it."""
    text = "\n".join(m.content for m in request.messages if m.role != "assistant")
    words = len(text.split())
    features: list[str] = []
    score = min(words / 600, 0.35)
    if words > 150:
        features.append(f"long prompt ({words} words)")
    asks = text.count("?") + len(re.findall(r"^\s*(\d+[.)]|[-*])\s", text, re.M))
    if asks >= 3:
        score += 0.15
        features.append(f"{asks} asks")
    if _REASONING.search(text):
        score += 0.2
        features.append("reasoning words")
    if _CODE.search(text):
        score += 0.2
        features.append("code")
    if _MATH.search(text):
        score += 0.15
        features.append("math")
    if request.max_tokens > 800:
        score += 0.1
        features.append(f"long answer ({request.max_tokens} tokens)")
    if request.schema is not None:
        score += 0.05
        features.append("structured output")
    turns = sum(1 for m in request.messages if m.role == "assistant")
    if turns >= 2:
        score += 0.05 * min(turns, 4)
        features.append(f"{turns} earlier turns")
    return min(score, 1.0), features


def decide(request: ModelRequest, policy: Policy, models: Mapping[str, Tier],
           default_local: str, *, unavailable: Mapping[str, str] | None = None) -> Decision:
    """Pick a model from `models` (name -> tier) for `request` under `policy`;
    `unavailable` names catalog models that cannot be called now, and why."""
    score, features = complexity(request)
    reasons: list[str] = []
    remote = [m for m, t in models.items() if t == "remote"]
    missing = dict(unavailable or {})
    wanted = policy.model or (policy.route if policy.route not in ("auto", "local",
                                                                     "remote") else None)
    if policy.privacy == "local":
        reasons.append("privacy = local: stays on this machine")
        if wanted and models.get(wanted) == "local":
            return Decision(wanted, "local", score, tuple(reasons))
        return Decision(default_local, "local", score, tuple(reasons))
    if wanted:
        if wanted in models:
            return Decision(wanted, models[wanted], score, (f"model '{wanted}' asked for",))
        why = missing.get(wanted, "not in the catalog")
        reasons.append(f"model '{wanted}' is not available ({why})")
    if policy.route == "local":
        return Decision(default_local, "local", score, tuple(reasons + ["route = local"]))
    if not remote:
        reasons.append(f"complexity {score:.2f}" + (": " + ", ".join(features)
                                                      if features else ""))
        if missing:
            reasons.append("no remote model available: " + "; ".join(
                f"{m}: {why}" for m, why in missing.items()))
        else:
            reasons.append("no remote model configured")
        return Decision(default_local, "local", score, tuple(reasons))
    if policy.route == "remote" or score >= REMOTE_THRESHOLD:
        why = "route = remote" if policy.route == "remote" else (
            f"complexity {score:.2f} >= {REMOTE_THRESHOLD}: " + ", ".join(features))
        return Decision(remote[0], "remote", score, tuple(reasons + [why]))
    why = f"complexity {score:.2f} < {REMOTE_THRESHOLD}" + (
        ": " + ", ".join(features) if features else "")
    return Decision(default_local, "local", score, tuple(reasons + [why]))
