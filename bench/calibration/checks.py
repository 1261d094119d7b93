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

# One way to read numbers and phrases in a reply, shared with `podium calibrate`'s checks.
from podium.core.models.calibration_suite import _QUOTED, _first_mentioned, has, numbers

Item = dict[str, Any]


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
