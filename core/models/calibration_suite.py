"""The calibration suite: prompts whose answers a program can check, and the checks.

`podium calibrate` asks a local model every prompt of `core/data/calibration_suite.jsonl`
(written by `bench/calibration/suite.py` from seeded templates) and marks each reply
with `mark`. Each item names its `kind` (arithmetic, dates, extraction to JSON, logic...),
its `family` (the template it came from) and its `source` (the generator module), so a
fit can be scored on kinds and phrasings it never saw (`bench/routing.py`).

Checks, by an item's `check`:

* `number`: the first or the last number of the reply (digits, or a number word up to
  twenty, or a round ten) equals the answer.
* `contains`: the answer as a whole word or phrase, anywhere in the reply.
* `one_of`: any of a list of acceptable words or phrases.
* `exact_ci`: the reply is the answer, or starts with it (case ignored).
* `yesno`: the first yes or no in the reply.
* `sequence`: the items, in this order, are the first such items in the reply.
* `only`: `[right, *wrong]`: the reply names the right one and none of the wrong ones.
* `first_of`: `[right, *others]`: of these, the reply names the right one first.
* `extract`: the answer, and the reply does not simply repeat the quoted text.
* `json`: the first JSON object in the reply equals the answer.
* `json_keys`: the first JSON object has each key of the answer, with that value
  (strings compared without case, numbers as numbers).
* `json_list`: the first JSON array equals the answer (strings without case).
* `word_count`: the reply has exactly that many words.
* `line_count`: exactly that many non-empty lines.
* `upper_contains`: the reply is in capitals and names the answer.
* `regex`: the reply matches the pattern.
* `spam_label`: "not spam" or "spam", whichever the reply says first.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from podium.core import paths
from podium.core.models.provider import Message, ModelRequest

SUITE = paths.shipped_data("calibration_suite.jsonl")
# How every suite prompt is asked: the request the shipped fit was made with.
SYSTEM = "You are a helpful assistant. Answer briefly: give only the answer."
MAX_TOKENS = 64


@dataclass(frozen=True, slots=True)
class SuiteItem:
    """One prompt of the suite, with the answer its check looks for."""

    id: str
    kind: str
    family: str
    source: str
    level: int
    prompt: str
    answer: Any
    check: str


def request_for(prompt: str, max_tokens: int = MAX_TOKENS) -> ModelRequest:
    """The request a suite prompt is asked with (greedy, short)."""
    return ModelRequest((Message("system", SYSTEM), Message("user", prompt)),
                        temperature=0.0, max_tokens=max_tokens, seed=0)


@lru_cache(maxsize=1)
def load_suite() -> tuple[SuiteItem, ...]:
    """Every item of the shipped suite, in its fixed order."""
    out = []
    for line in SUITE.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            out.append(SuiteItem(row["id"], row["kind"], row["family"], row["source"],
                                 int(row["level"]), row["prompt"], row["answer"],
                                 row["check"]))
    return tuple(out)


def spread(items: tuple[SuiteItem, ...] | list[SuiteItem], limit: int) -> list[SuiteItem]:
    """`limit` items taken evenly across the suite, so a quick calibration sees every
    kind rather than the first few."""
    if limit >= len(items):
        return list(items)
    step = len(items) / limit
    return [items[int(i * step)] for i in range(limit)]


def interleave(items: list[SuiteItem]) -> list[SuiteItem]:
    """`items` taken one kind at a time in turn, so a calibration stopped part-way has
    answers of every kind, not all of the first few."""
    by_kind: dict[str, list[SuiteItem]] = {}
    for it in items:
        by_kind.setdefault(it.kind, []).append(it)
    queues = list(by_kind.values())
    out: list[SuiteItem] = []
    while queues:
        out += [q.pop(0) for q in queues]
        queues = [q for q in queues if q]
    return out


# --- checks -------------------------------------------------------------------------------

_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
          "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
          "seventeen", "eighteen", "nineteen", "twenty"]
_NUMBER_WORDS = {**{w: i for i, w in enumerate(_WORDS)},
                 **{w: 10 * i for i, w in enumerate(["thirty", "forty", "fifty", "sixty",
                                                     "seventy", "eighty", "ninety"], 3)}}
_TOKEN = re.compile(r"-?\d+(?:\.\d+)?|\b(?:" + "|".join(_NUMBER_WORDS) + r")\b", re.I)
_QUOTED = re.compile(r"\"([^\"]{12,})\"")


def numbers(text: str) -> list[float]:
    """The numbers of `text` in order: digits (thousands commas dropped) and number words."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return [float(_NUMBER_WORDS[t.lower()]) if t.lower() in _NUMBER_WORDS else float(t)
            for t in _TOKEN.findall(text)]


def has(text: str, phrase: str) -> bool:
    """`phrase` as a whole word or phrase of `text`, case ignored."""
    return re.search(rf"(?<!\w){re.escape(phrase.lower())}(?!\w)", text.lower()) is not None


def _first_mentioned(reply: str, options: list[str]) -> str | None:
    found = [(m.start(), o) for o in options for m in
             [re.search(rf"(?<!\w){re.escape(o.lower())}(?!\w)", reply.lower())] if m]
    return min(found)[1] if found else None


def _first_json(reply: str, opener: str = "{") -> Any:
    decoder = json.JSONDecoder()
    for m in re.finditer(re.escape(opener), reply):
        try:
            return decoder.raw_decode(reply, m.start())[0]
        except ValueError:
            continue
    return None


def _same(want: Any, got: Any) -> bool:
    """JSON values equal, strings without case or outer space, numbers as numbers."""
    if isinstance(want, str):
        return isinstance(got, str) and got.strip().lower() == want.lower()
    if isinstance(want, (int, float)) and not isinstance(want, bool):
        try:
            return float(got) == float(want)
        except (TypeError, ValueError):
            return False
    return bool(want == got)


def _json_keys(item: SuiteItem, reply: str) -> bool:
    found = _first_json(reply)
    return isinstance(found, dict) and all(
        k in found and _same(v, found[k]) for k, v in item.answer.items())


def _json_list(item: SuiteItem, reply: str) -> bool:
    found = _first_json(reply, "[")
    return isinstance(found, list) and len(found) == len(item.answer) and all(
        _same(w, g) for w, g in zip(item.answer, found, strict=True))


def _number(item: SuiteItem, reply: str) -> bool:
    nums = numbers(reply)
    return bool(nums) and float(item.answer) in (nums[0], nums[-1])


def _exact(item: SuiteItem, reply: str) -> bool:
    answer = str(item.answer)
    return reply.strip().strip(".!\"'").lower() == answer.lower() or \
        re.match(rf"\W*{re.escape(answer)}\b", reply.strip(), re.I) is not None


def _yesno(item: SuiteItem, reply: str) -> bool:
    found = re.search(r"\b(yes|no)\b", reply, re.I)
    return found is not None and found.group(1).lower() == item.answer


def _sequence(item: SuiteItem, reply: str) -> bool:
    vocab = {str(a).lower() for a in item.answer}
    seen = [t for t in re.findall(r"[\w]+", reply.lower()) if t in vocab]
    return seen[:len(item.answer)] == [str(a).lower() for a in item.answer]


def _extract(item: SuiteItem, reply: str) -> bool:
    sources = _QUOTED.findall(item.prompt)
    return has(reply, str(item.answer)) and not any(
        s.lower().rstrip(".!?") in reply.lower() for s in sources)


def _upper(item: SuiteItem, reply: str) -> bool:
    letters = [c for c in reply if c.isalpha()]
    return bool(letters) and all(c.isupper() for c in letters) and has(reply, item.answer)


def _spam(item: SuiteItem, reply: str) -> bool:
    said = re.search(r"\bnot spam\b|\bspam\b", reply, re.I)
    return said is not None and said.group(0).lower() == item.answer


CHECKS: dict[str, Callable[[SuiteItem, str], bool]] = {
    "number": _number,
    "contains": lambda it, r: has(r, str(it.answer)),
    "one_of": lambda it, r: any(has(r, str(a)) for a in it.answer),
    "exact_ci": _exact,
    "yesno": _yesno,
    "sequence": _sequence,
    "only": lambda it, r: has(r, it.answer[0]) and not any(has(r, a) for a in it.answer[1:]),
    "first_of": lambda it, r: _first_mentioned(r, it.answer) == it.answer[0],
    "extract": _extract,
    "json": lambda it, r: bool(_first_json(r) == it.answer),
    "json_keys": _json_keys,
    "json_list": _json_list,
    "word_count": lambda it, r: len(re.findall(r"[\w'-]+", r)) == int(it.answer),
    "line_count": lambda it, r: len([ln for ln in r.splitlines() if ln.strip()]) == int(
        it.answer),
    "upper_contains": _upper,
    "regex": lambda it, r: re.search(str(it.answer), r) is not None,
    "spam_label": _spam,
}


def mark(item: SuiteItem, reply: str) -> bool:
    """Whether `reply` answers `item`, by its check."""
    try:
        check = CHECKS[item.check]
    except KeyError:
        raise ValueError(f"unknown check {item.check!r}") from None
    return check(item, reply)
