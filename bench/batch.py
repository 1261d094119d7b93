"""`podium batch` throughput: rows per second on this machine without Ray, and on a
local Ray cluster with 1 and 2 workers, for template-only rows and for rows that call
the embedded model; the scaling efficiency of 2 workers over 1; and what the one
database writer spends per row (the bound on a fleet: see bench/README.md).

The write cost is the time inside the store's write transactions (statements and
commit), divided by the rows: for the local executor, every write its runs make; for
Ray, the driver's `land_run` of each returned run (the only writes there).

Run: `.venv/bin/python bench/batch.py [--template-rows N] [--model-rows N] [--json]`
(needs the `ray` extra).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from podium.core.batch.data import read_dataset
from podium.core.batch.executor import LocalExecutor
from podium.core.batch.runner import counts, create_batch, run_batch
from podium.core.config import Settings
from podium.core.recipe.load import load
from podium.core.store import Store
from podium.tui.factory import make_engine

TEMPLATE = """
[inputs.i]
type = "integer"
[steps.a]
kind = "template"
template = "row {{ inputs.i }}"
[steps.b]
kind = "template"
template = "{{ steps.a }} done"
"""

MODEL = """
[inputs.word]
type = "string"
[steps.say]
kind = "llm"
system = "Echo."
prompt = "Repeat: {{ inputs.word }}"
max_tokens = 2
temperature = 0
seed = 1
[steps.tag]
kind = "template"
template = "{{ inputs.word }}={{ steps.say | length }}"
"""


@contextmanager
def timed_writes(store: Store) -> Iterator[list[float]]:
    """Add up the time spent inside the store's write transactions."""
    spent = [0.0]
    original = store._write

    @contextmanager
    def write(*args: Any, **kwargs: Any) -> Iterator[Any]:
        started = time.perf_counter()
        try:
            with original(*args, **kwargs) as conn:
                yield conn
        finally:
            spent[0] += time.perf_counter() - started

    store._write = write  # type: ignore[method-assign]
    try:
        yield spent
    finally:
        store._write = original  # type: ignore[method-assign]


def one(folder: Path, name: str, recipe_text: str, rows: list[dict[str, Any]],
        executor: Any, concurrency: int) -> dict[str, Any]:
    """Run one batch; rows/s and write ms per row."""
    recipe_path = folder / f"{name}.toml"
    recipe_path.write_text(recipe_text)
    recipe = load(recipe_path)
    data = folder / f"{name}.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    store = Store.open(folder / f"{name}.db")
    batch = create_batch(store, recipe, read_dataset(data, recipe),
                         executor=executor.name if executor else "local",
                         concurrency=concurrency, mapping={})
    engine = make_engine(store, Settings())
    local = LocalExecutor(engine)

    async def main() -> None:
        try:
            await run_batch(store, batch, recipe, executor or local, local, lambda o: None,
                            concurrency=concurrency)
        finally:
            await engine.hub.aclose()

    with timed_writes(store) as spent:
        started = time.perf_counter()
        asyncio.run(main())
        wall = time.perf_counter() - started
    done = counts(store.batch_rows(batch))["succeeded"]
    store.close()
    assert done == len(rows), f"{name}: {done} of {len(rows)} rows succeeded"
    return {"rows": len(rows), "seconds": round(wall, 3),
            "rows_per_s": round(len(rows) / wall, 2),
            "write_ms_per_row": round(spent[0] * 1000 / len(rows), 3)}


def warm_model() -> None:
    """Load the embedded model once in this process, so the local rows do not pay it."""
    from podium.tui.factory import make_engine as build

    with tempfile.TemporaryDirectory() as d:
        store = Store.open(Path(d) / "warm.db")
        engine = build(store, Settings())
        provider = engine.hub.providers[engine.hub.default_local]
        from podium.core.models.provider import Message, ModelRequest

        async def call() -> None:
            async for _ in provider.stream(ModelRequest((Message("user", "hi"),),
                                                        max_tokens=1)):
                pass

        asyncio.run(call())
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--template-rows", type=int, default=2000)
    parser.add_argument("--model-rows", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    import ray

    from podium.providers import llamacpp
    from podium.providers.ray_batch import RayExecutor

    # The machine-wide turn at the local model makes this process wait for every other
    # Podium process on the machine (another session's tests, say); Ray's workers run
    # without it. Off here too, so the rows compare like with like.
    llamacpp.MACHINE_TURN = False
    cpus = os.cpu_count() or 1
    results: dict[str, dict[str, Any]] = {}
    warm_model()
    ray.init(num_cpus=max(2, cpus), include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        with tempfile.TemporaryDirectory() as d:
            folder = Path(d)
            kinds = [("template", TEMPLATE, [{"i": i} for i in range(args.template_rows)]),
                     ("model", MODEL, [{"word": f"w{i}"} for i in range(args.model_rows)])]
            for kind, text, rows in kinds:
                results[f"{kind}/local"] = one(folder, f"{kind}-local", text, rows, None, 8)
                for workers in (1, 2):
                    executor = RayExecutor(workers=workers, settings=Settings())
                    # Warm: start the workers and load their model before the clock.
                    one(folder, f"{kind}-warm{workers}", text, rows[:4], executor, 8)
                    results[f"{kind}/ray-{workers}"] = one(
                        folder, f"{kind}-ray{workers}", text, rows, executor, 8)
    finally:
        ray.shutdown()
    for kind in ("template", "model"):
        one_w = results[f"{kind}/ray-1"]["rows_per_s"]
        two_w = results[f"{kind}/ray-2"]["rows_per_s"]
        results[f"{kind}/ray-2"]["scaling_efficiency"] = round(two_w / (2 * one_w), 2)
    if args.json:
        print(json.dumps(results, indent=2))
        return
    print(f"podium batch throughput on {cpus} CPUs (a Ray worker has 1 CPU; the local "
          "executor's model uses all)")
    print(f"{'rows':<10}{'executor':<10}{'rows':>6}{'seconds':>9}{'rows/s':>9}"
          f"{'write ms/row':>14}{'2-worker eff.':>15}")
    for key, r in results.items():
        kind, ex = key.split("/")
        eff = r.get("scaling_efficiency")
        print(f"{kind:<10}{ex:<10}{r['rows']:>6}{r['seconds']:>9.2f}{r['rows_per_s']:>9.1f}"
              f"{r['write_ms_per_row']:>14.3f}{'' if eff is None else f'{eff:.2f}':>15}")


if __name__ == "__main__":
    main()
