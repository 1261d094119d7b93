"""The fuzz of tests/test_fuzz.py at any size, with its figures: how many mutated recipes
were sound or refused (every refusal located at file:line), how hostile templates
ended, the slowest case and the memory high-water mark.

Run: `.venv/bin/python bench/fuzz.py [--recipes N] [--templates N] [--seed S]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("PODIUM_HOME", tempfile.mkdtemp(prefix="podium-fuzz-"))

from podium.core.errors import PodiumError, RecipeError, RecipeErrors  # noqa: E402
from podium.core.recipe.load import loads  # noqa: E402
from tests.conftest import ScriptedProvider  # noqa: E402
from tests.test_engine import make_engine  # noqa: E402
from tests.test_fuzz import HOSTILE, SHIPPED, SIZES, mutate  # noqa: E402


def maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def fuzz_recipes(n: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    sources = [p.read_text() for p in SHIPPED]
    out = {"cases": n, "sound": 0, "refused": 0, "unlocated": 0, "other": 0, "slowest s": 0.0}
    for i in range(n):
        text = mutate(rng.choice(sources), rng)
        started = time.perf_counter()
        try:
            loads(text, f"fuzz{i}.toml")
            out["sound"] += 1
        except RecipeError as e:
            out["refused"] += 1
            errors = e.errors if isinstance(e, RecipeErrors) else [e]
            out["unlocated"] += sum(1 for err in errors if not (err.file and err.line))
        except BaseException:  # noqa: BLE001 - a traceback is what this counts
            out["other"] += 1
        out["slowest s"] = max(out["slowest s"], time.perf_counter() - started)
    return out


def fuzz_templates(n: int, seed: int) -> dict[str, float]:
    rng = random.Random(seed)
    engine = make_engine(ScriptedProvider())
    out = {"cases": n, "rendered": 0, "step failed": 0, "refused": 0, "run broken": 0,
           "slowest s": 0.0}
    for _ in range(n):
        source = rng.choice(HOSTILE).replace("N", str(rng.choice(SIZES)))
        big = "a" * rng.choice([0, 10, 10**5, 4 * 10**6])
        toml = ('[inputs.big]\n[inputs.obj]\ntype = "object"\ndefault = {}\n'
                '[steps.free]\nkind = "template"\ntemplate = "free"\n'
                "[steps.hostile]\nkind = \"template\"\ntemplate = '''" + source + "'''\n")
        started = time.perf_counter()
        try:
            result = asyncio.run(engine.run(loads(toml, "t.toml"), {"big": big}))
        except PodiumError:
            out["refused"] += 1
            continue
        finally:
            out["slowest s"] = max(out["slowest s"], time.perf_counter() - started)
        steps = {s.step_id: s.status for s in engine.store.get_steps(result.run_id)}
        if steps["free"] != "succeeded":
            out["run broken"] += 1
        out["rendered" if steps["hostile"] == "succeeded" else "step failed"] += 1
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", type=int, default=1000)
    parser.add_argument("--templates", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261203)
    args = parser.parse_args()
    base = maxrss_mb()
    for name, result in (("mutated recipes", fuzz_recipes(args.recipes, args.seed)),
                         ("hostile templates", fuzz_templates(args.templates, args.seed))):
        print(f"{name}: " + ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                                      for k, v in result.items()))
    print(f"memory high-water mark: +{maxrss_mb() - base:.0f} MB over the start")


if __name__ == "__main__":
    main()
