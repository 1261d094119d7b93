"""Write the shipped calibration suite, `core/data/calibration_suite.jsonl`.

Three sources of seeded templates: the exam kinds (`exams.py`), the everyday kinds
(`everyday.py`) and the kinds that widen it (`breadth.py`), each prompt with the answer
its check looks for (`podium.core.models.calibration_suite.mark`). Each item carries
its `kind`, its `family` (the template: given by `breadth.py`, read off the prompt's
wording for the older generators, which do not name theirs) and its `source`, so
`bench/routing.py` can leave a whole family, kind or source out of a fit. Nothing is
kept or dropped by how a model does on it.

Run: `.venv/bin/python bench/calibration/suite.py` (deterministic: rewrites the same file).
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent))

from calibration.breadth import BREADTH  # noqa: E402
from calibration.build import KINDS, SEED  # noqa: E402
from calibration.exams import EXAMS  # noqa: E402

from podium.core.models.calibration_suite import SUITE  # noqa: E402

_NAMEISH = re.compile(r"\"[^\"]*\"|'[^']*'|\d+|(?<=\w )[A-Z][a-z]+\b")


def template_of(kind: str, prompt: str) -> str:
    """A family for a prompt whose generator names no template: its kind and its first
    words once numbers, names and quoted text are masked ("What is 0 + 0?" and
    "What is 0 * 0?" share "arithmetic/what is")."""
    words = _NAMEISH.sub(" ", prompt.split("\n")[0]).lower().split()[:2]
    return f"{kind}/" + " ".join(w.strip("?:.,!") for w in words)


def build() -> list[dict[str, Any]]:
    """Every item, in a fixed order, from fixed seeds."""
    items: list[dict[str, Any]] = []
    seen: set[str] = set()
    r = random.Random(SEED)
    for kind, gen in KINDS.items():
        source = "exams" if kind in EXAMS else "everyday"
        n = 0
        for level, prompt, answer, check in gen(r):
            if prompt in seen:
                continue
            seen.add(prompt)
            n += 1
            items.append({"id": f"{kind}-{n - 1:03d}", "kind": kind,
                          "family": template_of(kind, prompt), "source": source,
                          "level": level, "prompt": prompt, "answer": answer, "check": check})
    r = random.Random(SEED + 1)
    for kind, breadth_gen in BREADTH.items():
        for n, (level, prompt, answer, check, family) in enumerate(breadth_gen(r)):
            if prompt in seen:
                continue
            seen.add(prompt)
            items.append({"id": f"{kind}-{n:03d}", "kind": kind, "family": family,
                          "source": "breadth", "level": level, "prompt": prompt,
                          "answer": answer, "check": check})
    return items


def main() -> None:
    """Write the suite and say what is in it."""
    items = build()
    SUITE.write_text("".join(json.dumps(it, ensure_ascii=False) + "\n" for it in items),
                     encoding="utf-8")
    kinds = {it["kind"] for it in items}
    families = {it["family"] for it in items}
    print(f"{len(items)} prompts, {len(kinds)} kinds, {len(families)} families -> {SUITE}")


if __name__ == "__main__":
    main()
