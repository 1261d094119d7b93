"""The router's memory: asks it has seen marked, and how the local model did on them.

Whether a small model gets an ask right depends above all on what kind of ask it is
(a capital of a well-known country or an obscure one, a plural of "cat" or "cactus"),
which word counts and regexes see only dimly. So the complexity score also looks up the
most similar asks with a known outcome, in the manner of RouteLLM's similarity-weighted
router: TF-IDF vectors of character trigrams (digits folded to 0, so "What is 56 - 22?"
is near "What is 13 + 98?"), cosine similarity, and the share the local model got
wrong among the `K` nearest, each weighted by its similarity squared. An ask that is
like none of them is left to the features.

The examples belong to a router fit (`core.router_fit`): the calibration suite with the
marks of the local model configured (`podium calibrate`; the embedded model's ship with
Podium). A person's verdicts on compared steps (`podium compare RUN STEP --verdict`)
and the outcomes runs see (a cascade's local answer passing or failing the recipe's
`verify` or failing a program's check; a person approving, editing or rejecting a local
answer) join them (`core.calibrate.active_fit`, and
`RouterFit.learn` as they happen), so the router learns from this machine's own work:
a new recipe step's asks look like its earlier ones. Pure Python with an inverted
index: about 0.2 ms per ask.
"""

from __future__ import annotations

import heapq
import json
import math
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

K = 20  # neighbours weighed (5-fold CV on the train half: flat from 10 to 40)
# Less similar than this is no evidence: an ask like nothing seen is scored by its
# features alone. Weak likeness still helps on kinds the fit never saw: leaving each
# kind of the suite out in turn, 0.1 recovered 2-3 points more of the oracle's gain
# than 0.2, and 0.05 no more than 0.1 (`bench/routing.py`).
MIN_SIMILARITY = 0.1
MAX_CHARS = 1000  # an ask's head tells its kind; keeps a long document under 1 ms
# A trigram in more than this share of the examples ("the", "what is") says little about
# which they are like, and walking its long list of examples is most of a lookup's
# time: such trigrams are left out of the dot products (top-5 neighbours 93% the same).
COMMON = 0.1
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True, slots=True)
class Example:
    """An ask with a known outcome: whether the local model answered it right."""

    prompt: str
    local_right: bool
    judged: bool = False  # a person's verdict on a compared step, not a calibration mark
    # An outcome seen at run time, and what told it: "verify" (the recipe's own check
    # of a cascade's local answer), "check" (a check a program makes, which failed) or
    # "review" (a person approved, edited or rejected a local answer).
    seen: str | None = None


@dataclass(frozen=True, slots=True)
class Neighbour:
    """A similar example and how similar (cosine, 0..1)."""

    example: Example
    similarity: float


def trigrams(text: str) -> Counter[str]:
    """Character trigrams of the lowercased text, digits folded to 0, spaces squeezed."""
    s = " " + _SPACE.sub(" ", _DIGIT.sub("0", text[:MAX_CHARS].lower())).strip() + " "
    return Counter(s[i:i + 3] for i in range(len(s) - 2))


class Neighbours:
    """An index of examples, searched by similarity to an ask.

    With `leave_one_out`, an ask that is itself an example does not count as its own
    neighbour: for scoring the examples themselves, as fitting does."""

    def __init__(self, examples: Iterable[Example], *, leave_one_out: bool = False) -> None:
        self.examples: list[Example] = list(examples)
        self.leave_one_out = leave_one_out
        grams = [trigrams(e.prompt) for e in self.examples]
        df: Counter[str] = Counter()
        for g in grams:
            df.update(g.keys())
        n = len(self.examples)
        self._idf = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}
        self._unseen = math.log(n + 1) + 1.0
        self._postings: dict[str, list[tuple[int, float]]] = defaultdict(list)
        for i, g in enumerate(grams):
            for t, w in self._vector(g).items():
                self._postings[t].append((i, w))

    def __len__(self) -> int:
        return len(self.examples)

    def add(self, example: Example) -> None:
        """Index one more example, weighing its trigrams by the examples' document
        frequencies as they were built (one new example barely moves them)."""
        self.examples.append(example)
        for t, w in self._vector(trigrams(example.prompt)).items():
            self._postings[t].append((len(self.examples) - 1, w))

    def _vector(self, grams: Counter[str]) -> dict[str, float]:
        v = {t: c * self._idf.get(t, self._unseen) for t, c in grams.items()}
        norm = math.sqrt(sum(x * x for x in v.values())) or 1.0
        return {t: x / norm for t, x in v.items()}

    def nearest(self, ask: str, k: int = K) -> list[Neighbour]:
        """The `k` most similar examples (at least `MIN_SIMILARITY`), most similar first."""
        dots: dict[int, float] = defaultdict(float)
        common = max(50.0, COMMON * len(self.examples))
        for t, x in self._vector(trigrams(ask)).items():
            postings = self._postings.get(t, ())
            if len(postings) > common:
                continue
            for i, w in postings:
                dots[i] += x * w
        if self.leave_one_out:
            for i in [i for i in dots if self.examples[i].prompt == ask]:
                del dots[i]
        best = heapq.nlargest(k, ((i, w) for i, w in dots.items() if w >= MIN_SIMILARITY),
                              key=lambda iw: iw[1])
        return [Neighbour(self.examples[i], min(w, 1.0)) for i, w in best]


def wrong_share(neighbours: Sequence[Neighbour]) -> tuple[float, float]:
    """The similarity-weighted share of `neighbours` the local model got wrong, and the
    total weight behind it (0 when nothing is similar)."""
    weights = [n.similarity ** 2 for n in neighbours]
    total = sum(weights)
    if total == 0:
        return 0.0, 0.0
    wrong = sum(w for w, n in zip(weights, neighbours, strict=True) if not n.example.local_right)
    return wrong / total, total


def load_examples(path: Path) -> list[Example]:
    """Examples from a JSON-lines file of `{"prompt": ..., "local_right": ...}`."""
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(Example(str(row["prompt"]), bool(row["local_right"])))
    return out
