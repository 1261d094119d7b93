"""How a reply is marked right or wrong: one function per `check` of a prompt.

* `number`: the first or the last number of the reply (digits, or a number word up
  to twenty, or a round ten) equals the answer.
* `contains`: the answer as a whole word or phrase, anywhere in the reply.
* `one_of`: any of a list of acceptable words or phrases.
* `exact_ci`: the reply is the answer, or starts with it (case ignored).
* `yesno`: the first yes or no in the reply.
* `sequence`: the items, in this order, are the first such items in the reply.
* `only`: the answer is `[right, *wrong]` (labels offered in the prompt): the reply
  names the right one and none of the wrong ones ("positive, but also negative" is
  wrong).
* `first_of`: the answer is `[right, *others]` (options offered in the prompt): of
  these, the reply names the right one first.
* `extract`: the answer as a whole word or phrase, and the reply does not simply
  repeat the quoted text it was asked to pick from.
* `json`: the first JSON object in the reply equals the answer.
"""

from __future__ import annotations

import json
import re
from typing import Any

Item = dict[str, Any]

_NUM = re.compile(r"-?\d+(?:\.\d+)?")
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


def _first_json(reply: str) -> Any:
    decoder = json.JSONDecoder()
    for m in re.finditer(r"\{", reply):
        try:
            return decoder.raw_decode(reply, m.start())[0]
        except ValueError:
            continue
    return None


def correct(item: Item, reply: str) -> bool:
    """Whether `reply` answers `item`, by its `check`."""
    answer, check = item["answer"], item["check"]
    if check == "number":
        nums = numbers(reply)
        return bool(nums) and float(answer) in (nums[0], nums[-1])
    if check == "contains":
        return has(reply, str(answer))
    if check == "one_of":
        return any(has(reply, str(a)) for a in answer)
    if check == "exact_ci":
        return reply.strip().strip(".!\"'").lower() == str(answer).lower() or \
            re.match(rf"\W*{re.escape(str(answer))}\b", reply.strip(), re.I) is not None
    if check == "yesno":
        found = re.search(r"\b(yes|no)\b", reply, re.I)
        return found is not None and found.group(1).lower() == answer
    if check == "sequence":
        vocab = {str(a).lower() for a in answer}
        seen = [t for t in re.findall(r"[\w]+", reply.lower()) if t in vocab]
        return seen[:len(answer)] == [str(a).lower() for a in answer]
    if check == "only":
        return has(reply, answer[0]) and not any(has(reply, a) for a in answer[1:])
    if check == "first_of":
        return _first_mentioned(reply, answer) == answer[0]
    if check == "extract":
        sources = _QUOTED.findall(item["prompt"])
        return has(reply, str(answer)) and not any(
            s.lower().rstrip(".!?") in reply.lower() for s in sources)
    if check == "json":
        return bool(_first_json(reply) == answer)
    raise ValueError(f"unknown check {check!r}")
