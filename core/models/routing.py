"""Which model answers a call, and why.

`decide` turns a request and a step's policy into a `Decision`. The complexity
score is the estimated chance that the local model gets the request wrong. It blends
two estimates: a logistic function of instant features (`signals`: length, asks,
numbers and operators, multi-step words, code, reasoning and letter-level words, lists,
small talk, text given in quotes, the share of symbols and of digits, structured output,
conversation depth), and the share
the local model got wrong among the most similar asks with a known outcome
(`core.neighbours`). Both come from the router fit of the local model configured
(`core.router_fit`: the embedded model's ships; `podium calibrate` makes one for the
person's own model), which the reasons name. It is computed the same whether or not a
remote model is available, so decisions can be compared (`bench/routing.py`).

`answer_confidence` serves `route = "cascade"`, which sees the local answer before
deciding: the estimated chance that the answer is right, from its own token
probabilities (`answer_signals`) and the complexity score, fitted on the same marks
for the same model (the fit's `CascadeFit`).
The cascade first runs the checks a program can make (`core.answer_checks`).
`judge_request` is what `route = "judge"` asks the local model.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from podium.core.models.neighbours import wrong_share
from podium.core.models.provider import Message, ModelRequest, TokenLogprob
from podium.core.models.router_fit import PRIOR_WEIGHT, RouterFit, cascade_of, shipped_fit

Tier = Literal["local", "remote"]

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_OPERATOR = re.compile(r"\d\s*[-+*/^%]\s*[\d(]|\)\s*[-+*/^%]|\b(?:times|plus|minus|divided|"
                       r"multipl\w+|squared|sum|product)\b", re.I)
_STEPS = re.compile(r"\b(?:then|each|left|total|together|remainder|remaining|equally|share|"
                    r"fewer|more|after|per|twice|half|altogether|in all|and then|finally)\b",
                    re.I)
_REASONING = re.compile(r"\b(?:why|explain|prove|derive|compare|analy[sz]e|step[- ]by[- ]step|"
                        r"reason|plan|design|evaluate|trade-?offs?|\w+er than|who is the \w+est|"
                        r"prime|divisible)\b", re.I)
_CODE = re.compile(r"```|\bdef |\bclass |\bfunction\b|\bprint\(|\bfor \w+ in\b|\breturn\b|"
                   r"^\s*\w+\s*[-+*/]?=\s*\S|[;{]\s*$", re.M)
_LETTERS = re.compile(r"\b(?:letters?|spell\w*|backwards?|reverse\w*|characters?|vowels?|"
                      r"syllables?|anagram)\b", re.I)
_SORT = re.compile(r"\b(?:sort\w*|order|alphabetical\w*|ascending|descending|rank\w*)\b", re.I)
_ASKS = re.compile(r"\?|^\s*(?:\d+[.)]|[-*])\s", re.M)
_PROPER = re.compile(r"(?<![.?!]\s)(?<!^)\b[A-Z][a-z]+", re.M)
_WORD = re.compile(r"[A-Za-z]+")
_CLOSED = re.compile(r"\byes or no\b|\btrue or false\b|\bwhich (?:one|of)\b|"
                     r"\bwho is the \w+est\b|\b(?:a|b|c)\)", re.I)
# A greeting, thanks or goodbye that opens a short message: small talk.
_SOCIAL = re.compile(r"^\W*(?:hi|hello|hey|hiya|howdy|greetings|good (?:morning|afternoon|"
                     r"evening|night|day)|morning|thanks|thank you|cheers|bye|goodbye|"
                     r"see you|nice to meet you|have a (?:nice|good|great)|take care|"
                     r"happy new year|how are you|how's it going|what's up)\b", re.I)
# Characters of code, markup, formulas and logs: symbolic text, which small models read
# poorly whatever the task (the share of them, like the share of digits, carries over
# to kinds of ask the fit never saw; counts of one pattern or another did not).
_SYMBOL = re.compile(r"[()\[\]{}<>=+*/|&%$#@_\\^~`;:]")
# Text given in quotes (three words or more): the answer is to be found in the ask.
_QUOTED = re.compile(r"\"([^\"]{5,2000})\"|\u201c([^\u201d]{5,2000})\u201d")


# `route = "judge"`: the local model's answer to `judge_request`, escalating when it
# finds "complex" likelier than "simple" (scored in bench/routing.py).
JUDGE_CHOICES = ("simple", "complex")
JUDGE_THRESHOLD = 0.5
# Alternatives per token the cascade asks the local model for: the margin needs the
# best token other than the chosen one.
CONFIDENCE_TOP_LOGPROBS = 2


@dataclass(frozen=True, slots=True)
class Decision:
    """The chosen model and the reasons, stored with the step."""

    model: str
    tier: Tier
    score: float | None  # None: not computed, as nothing in the decision depended on it
    reasons: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        score = None if self.score is None else round(self.score, 3)
        return {"model": self.model, "tier": self.tier, "score": score,
                "reasons": list(self.reasons)}


@dataclass(frozen=True, slots=True)
class Policy:
    """A step's routing wishes."""

    route: str = "auto"  # auto | local | remote | <model name>
    model: str | None = None
    privacy: str | None = None  # "local" pins to this machine


def signals(request: ModelRequest) -> dict[str, float]:
    """The instant features of a request that `complexity` weighs (all >= 0).

    Text features read the last user message (the ask), so a long fixed system prompt
    does not make every call look hard; the earlier conversation counts on its own.
    """
    users = [m.content for m in request.messages if m.role == "user"]
    ask = users[-1] if users else ""
    return _text_signals(ask, request)


def _count(pattern: re.Pattern[str], text: str, cap: int, needs: tuple[str, ...] = ()) -> float:
    """min(matches, cap); `needs` are substrings without which there can be no match,
    checked first because most asks have none and a regex pass costs 5-15 us."""
    if needs and not any(n in text for n in needs):
        return 0.0
    return float(min(len(pattern.findall(text)), cap))


_CODE_NEEDS = ("`", "def ", "class ", "function", "print(", "for ", "return", "=", ";", "{")


@lru_cache(maxsize=2048)
def _ask_signals(ask: str) -> tuple[tuple[str, float], ...]:
    """The features of the ask's text alone; cached, since a recipe sends the same
    rendered prompt again on every retry, resume and re-run. All are computed: which
    weigh depends on the fit of the model configured."""
    numbers = _NUMBER.findall(ask)
    words = _WORD.findall(ask)
    lower = ask.lower()
    size = max(len(ask), 1)
    digits_or_paren = bool(numbers) or ")" in ask
    return tuple({
        "log_chars": math.log1p(len(ask)),
        # Capped near the longest calibration prompt: no extrapolating past the data.
        "words": float(min(len(words), 40)) / 10,
        "has_numbers": float(bool(numbers)),
        "numbers": float(min(len(numbers), 10)),
        "max_digits": float(max((len(n.replace(",", "").split(".")[0]) for n in numbers),
                                default=0)),
        "operators": _count(_OPERATOR, ask, 6) if digits_or_paren or any(
            w in lower for w in ("times", "plus", "minus", "divided", "multipl", "squared",
                                 "sum", "product")) else 0.0,
        "step_words": float(min(len(_STEPS.findall(ask)), 6)),
        "asks": _count(_ASKS, ask, 6),
        "reasoning": _count(_REASONING, ask, 6),
        "code": _count(_CODE, ask, 6, _CODE_NEEDS),
        "lines": float(min(ask.count("\n"), 20)),
        "letters": float(min(len(_LETTERS.findall(ask)), 3)),
        "sorting": float(bool(_SORT.search(ask))),
        "closed": float(bool(_CLOSED.search(ask))),
        # A short question with no numbers: a look-up, where small models do best.
        "short_plain": float(len(words) <= 8 and not numbers and "?" in ask),
        "list_items": float(min(ask.count(","), 12)),
        "longest_word": float(max((len(w) for w in words), default=0)),
        "proper_nouns": float(min(len(_PROPER.findall(ask)), 6)),
        "social": float(len(words) <= 8 and not numbers and bool(_SOCIAL.match(ask))),
        "quoted": float(any(len((a or b).split()) >= 3 for a, b in _QUOTED.findall(ask)))
        if '"' in ask or "\u201c" in ask else 0.0,
        "symbols": min(len(_SYMBOL.findall(ask)) / size * 20, 3.0),
        "digit_share": min(sum(map(str.isdigit, ask)) / size * 10, 3.0),
    }.items())


def _text_signals(ask: str, request: ModelRequest) -> dict[str, float]:
    out = dict(_ask_signals(ask))
    earlier = sum(len(m.content.split()) for m in request.messages if m.role != "system")
    # Not in the calibration set (one turn, no schema, short answers): priors.
    out["long_answer"] = max(0.0, math.log2(max(request.max_tokens, 1) / 512))
    out["schema"] = float(request.schema is not None)
    out["turns"] = float(min(sum(m.role == "assistant" for m in request.messages), 4))
    out["context"] = max(0.0, math.log1p(earlier - len(ask.split())) - 4.0)
    return out


_LABELS = {"log_chars": "long ask", "numbers": "numbers", "max_digits": "big numbers",
           "operators": "arithmetic", "step_words": "multi-step words",
           "asks": "several asks", "reasoning": "reasoning words", "code": "code",
           "lines": "many lines", "letters": "letter-level task", "sorting": "sorting",
           "list_items": "list", "words": "many words",
           "has_numbers": "numbers", "closed": "closed answer",
           "short_plain": "short look-up", "longest_word": "rare long word",
           "proper_nouns": "names", "social": "small talk", "quoted": "given text",
           "symbols": "symbols (code, formulas)", "digit_share": "mostly digits",
           "long_answer": "long answer",
           "schema": "structured output", "turns": "earlier turns",
           "context": "long conversation"}


def feature_score(request: ModelRequest,
                  fit: RouterFit | None = None) -> tuple[float, dict[str, float]]:
    """The score from the instant features alone (the fit's logistic weights; None:
    the shipped fit), and each feature's part of its logit."""
    fit = fit or shipped_fit()
    users = [m.content for m in request.messages if m.role == "user"]
    x = _text_signals(users[-1] if users else "", request)
    parts = {k: fit.weights.get(k, 0.0) * v for k, v in x.items()}
    z = fit.bias + sum(parts.values())
    return 1.0 / (1.0 + math.exp(-max(min(z, 30.0), -30.0))), parts


def complexity(request: ModelRequest,
               fit: RouterFit | None = None) -> tuple[float, list[str]]:
    """A 0..1 score (higher is harder: the likelier the local model gets it wrong)
    and, in words, what raised it most.

    The score blends two estimates: the share the local model got wrong among the most
    similar asks with a known outcome (`core.neighbours`: the fit's examples; None: the
    shipped fit), weighted by their similarity, and the instant features' score, which
    counts as `PRIOR_WEIGHT` of a perfectly similar ask. An ask like nothing seen is
    scored by its features alone."""
    fit = fit or shipped_fit()
    prior, parts = feature_score(request, fit)
    users = [m.content for m in request.messages if m.role == "user"]
    index = fit.index()
    near = index.nearest(users[-1]) if users and len(index) else []
    wrong, weight = wrong_share(near)
    score = (wrong * weight + PRIOR_WEIGHT * prior) / (weight + PRIOR_WEIGHT)
    # A feature is named when it raised the score well above what it gives a typical ask.
    above = {k: c - fit.weights.get(k, 0.0) * fit.typical.get(k, 0.0)
             for k, c in parts.items()}
    raised = sorted((k for k, c in above.items() if c >= 0.25), key=lambda k: -above[k])
    said = [_LABELS[k] for k in raised[:4]]
    if weight >= PRIOR_WEIGHT / 2:
        said.append(f"similar asks {wrong:.0%} wrong locally, nearest: "
                    f"{_quote(near[0].example.prompt)}"
                    + (" (your verdict)" if near[0].example.judged else
                       f" (seen here: {near[0].example.seen})" if near[0].example.seen
                       else ""))
    elif not near:
        said.append("no similar ask seen: by its features alone")
    return score, said


def _quote(text: str, limit: int = 48) -> str:
    one_line = " ".join(text.split())
    return repr(one_line if len(one_line) <= limit else one_line[:limit - 1] + "…")


def answer_signals(logprobs: Sequence[TokenLogprob],
                   finish_reason: str | None = None) -> dict[str, float] | None:
    """Features of a generated answer's token probabilities that `answer_confidence`
    may weigh, or None when the backend gave none (or no alternatives: no margins).

    The margin of a token is its log probability minus the best alternative's: small
    where the model nearly said something else."""
    margins = [t.logprob - max(v for k, v in t.top.items() if k != t.token)
               for t in logprobs if any(k != t.token for k in t.top)]
    if not margins:
        return None
    lps = [t.logprob for t in logprobs]
    return {"mean_logprob": sum(lps) / len(lps), "min_logprob": min(lps),
            "first_logprob": lps[0], "sum_logprob": sum(lps),
            "mean_margin": sum(margins) / len(margins), "min_margin": min(margins),
            "first_margin": margins[0], "tokens": math.log1p(len(lps)),
            "cut_off": float(finish_reason == "length")}


def confidence_features(request: ModelRequest, logprobs: Sequence[TokenLogprob],
                        finish_reason: str | None = None,
                        fit: RouterFit | None = None) -> dict[str, float] | None:
    """`answer_signals` plus the request's complexity score as a logit: what the
    cascade's fit may weigh (None without token probabilities)."""
    x = answer_signals(logprobs, finish_reason)
    if x is None:
        return None
    x["complexity"] = logit(complexity(request, fit)[0])
    return x


def logit(score: float) -> float:
    """log(p / (1 - p)), kept finite."""
    score = min(max(score, 1e-6), 1 - 1e-6)
    return math.log(score / (1 - score))


def confidence_from(signals: Mapping[str, float], complexity_score: float,
                    fit: RouterFit | None = None) -> float:
    """`answer_confidence` from an answer's `answer_signals` and its request's
    complexity score (what `podium calibrate` stores for each answer), under `fit`'s
    cascade (None: the shipped fit's)."""
    return cascade_of(fit).confidence({**signals, "complexity": logit(complexity_score)})


def answer_confidence(request: ModelRequest, logprobs: Sequence[TokenLogprob],
                      finish_reason: str | None = None,
                      fit: RouterFit | None = None) -> float | None:
    """The estimated chance (0..1) that the local model's answer to `request` is right,
    from the answer's token probabilities and the request's complexity score, as the
    fit of the local model reads them (`router_fit.CascadeFit`); None when the backend
    returned no token probabilities (then nothing can be said)."""
    x = confidence_features(request, logprobs, finish_reason, fit)
    if x is None:
        return None
    return cascade_of(fit).confidence(x)


def judge_request(ask: str) -> ModelRequest:
    """What `route = "judge"` asks the local model, scoring the two `JUDGE_CHOICES`."""
    return ModelRequest(messages=(
        Message("system", "Rate the request: is it simple (a short fact, a small rewrite) "
                "or complex (several steps, reasoning, code, math)? Answer simple or "
                "complex."), Message("user", ask[:4000])), max_tokens=1)


def judged_complex(logprobs: Sequence[float]) -> float:
    """The judge's chance (0..1) that the ask is complex, from the log-likelihoods of
    `JUDGE_CHOICES`: the two renormalised."""
    simple, hard = logprobs
    return 1.0 / (1.0 + math.exp(max(min(simple - hard, 30.0), -30.0)))


def decide(request: ModelRequest, policy: Policy, models: Mapping[str, Tier],
           default_local: str, *, unavailable: Mapping[str, str] | None = None,
           explain: bool = True, fit: RouterFit | None = None) -> Decision:
    """Pick a model from `models` (name -> tier) for `request` under `policy`;
    `unavailable` names catalog models that cannot be called now, and why; `fit` is
    the router fit of the local model configured (None: the shipped one), named in
    the reasons whenever the score was computed. With
    `explain=False` (the engine's hot path) the complexity score is computed only when
    the choice depends on it; `podium route` always computes it."""
    reasons: list[str] = []
    remote = [m for m, t in models.items() if t == "remote"]
    needed = explain or (bool(remote) and policy.privacy != "local" and
                         policy.route not in ("local", "remote") and
                         (policy.model or policy.route) not in models)
    score: float | None
    fit = fit or shipped_fit()
    score, features = complexity(request, fit) if needed else (None, [])
    if needed:
        features.append(fit.describe())
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
        if score is not None:
            reasons.append(f"complexity {score:.2f}" + (": " + ", ".join(features)
                                                          if features else ""))
        if missing:
            reasons.append("no remote model available: " + "; ".join(
                f"{m}: {why}" for m, why in missing.items()))
        else:
            reasons.append("no remote model configured")
        return Decision(default_local, "local", score, tuple(reasons))
    if policy.route == "remote":
        return Decision(remote[0], "remote", score, tuple(reasons + ["route = remote"]))
    if score is None:  # only reachable with explain=False; the choice needs the score now
        score, features = complexity(request, fit)
        features.append(fit.describe())
    threshold = fit.threshold
    if score >= threshold:
        why = f"complexity {score:.2f} >= {threshold:.3g}: " + ", ".join(features)
        return Decision(remote[0], "remote", score, tuple(reasons + [why]))
    why = f"complexity {score:.2f} < {threshold:.3g}" + (
        ": " + ", ".join(features) if features else "")
    return Decision(default_local, "local", score, tuple(reasons + [why]))
