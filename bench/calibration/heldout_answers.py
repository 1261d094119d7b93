"""Ask the embedded model every prompt of the independent held-out sets
(`bench/calibration/heldout/<set>.jsonl`) as `podium calibrate` asks the suite, and
cache its answers in `bench/calibration/answers/heldout-<set>.json` for
`bench/routing.py`. A cached answer is not asked again.

Run: `.venv/bin/python bench/calibration/heldout_answers.py [SET ...]`.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

from podium.core.config import EMBEDDED_MODEL, Settings
from podium.core.models.calibrate import ask
from podium.core.models.calibration_suite import SuiteItem, mark
from podium.providers.registry import build_hub

HERE = Path(__file__).resolve().parent
SETS = HERE / "heldout"
ANSWERS = HERE / "answers"


def load_set(name: str) -> list[SuiteItem]:
    """The items of one held-out set."""
    rows = (json.loads(line) for line in (SETS / f"{name}.jsonl").read_text(
        encoding="utf-8").splitlines() if line.strip())
    return [SuiteItem(**row) for row in rows]


def set_names() -> list[str]:
    """Every held-out set, by name."""
    return sorted(p.stem for p in SETS.glob("*.jsonl"))


async def answer_set(name: str) -> Path:
    """Ask what is not cached yet; write the cache after every answer."""
    path = ANSWERS / f"heldout-{name}.json"
    cache: dict[str, Any] = json.loads(path.read_text(encoding="utf-8")) if path.exists() \
        else {"model": EMBEDDED_MODEL, "answers": {}}
    hub = build_hub(Settings())
    provider = hub.providers[EMBEDDED_MODEL]
    try:
        for item in load_set(name):
            if item.id in cache["answers"]:
                continue
            t0 = time.perf_counter()
            text, finish, signals = await ask(provider, item.prompt)
            cache["answers"][item.id] = {"reply": text, "finish_reason": finish,
                                         "signals": signals, "right": mark(item, text),
                                         "seconds": round(time.perf_counter() - t0, 3)}
            path.write_text(json.dumps(cache, ensure_ascii=False, indent=0) + "\n",
                            encoding="utf-8")
    finally:
        await hub.aclose()
    return path


def main() -> None:
    """Answer the named sets (all by default)."""
    for name in sys.argv[1:] or set_names():
        path = asyncio.run(answer_set(name))
        answers = json.loads(path.read_text(encoding="utf-8"))["answers"]
        right = sum(a["right"] for a in answers.values())
        print(f"{name}: {right}/{len(answers)} right -> {path.relative_to(HERE.parent.parent)}")


if __name__ == "__main__":
    main()
