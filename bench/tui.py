"""The app's responsiveness on a big database, beside a bare Textual app as the floor.

The database holds 10,000 runs, a 500-step run and 1,000 pending reviews. Measured:

* launch to interactive: a new process imports and starts the app until the runs
  screen is painted and has answered a key (`down` moved the cursor), against a bare
  Textual app that shows the same 500 newest runs in a DataTable read with sqlite3
  (the floor any Textual app pays);
* opening the 500-step run: from `enter` to its 500 steps in the table;
* a key press answered while the embedded model generates in a run the app launched,
  and while a 100-way fan-out runs (its run screen open, keys moving through its
  steps from 0.2 s after it opened; calls of 0.3 to 1.25 s, so all start at once and
  finish spread out; only presses made while it runs count), against the same press
  when idle.

Run: `.venv/bin/python bench/tui.py [--repeats N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))

from common import load_note, mark, table  # noqa: E402
from sleep_provider import SleepProvider  # noqa: E402

from podium.core.models.provider import Chunk, ModelRequest  # noqa: E402

RUNS = 10_000
CHAIN = 500
REVIEWS = 1_000


def seed(path: Path) -> None:
    """The big database: many runs, one long run, a long review queue."""
    from podium.core.models.hub import ModelHub
    from podium.core.recipe.load import loads
    from podium.core.run.engine import Engine
    from podium.core.store import Store

    store = Store(path)
    tiny = loads('[steps.a]\nkind = "template"\ntemplate = "x"\n', "tiny.toml")
    for i in range(RUNS):
        run_id = store.create_run(tiny, {}, tiny.plan.order)
        store.finish_run(run_id, "succeeded" if i % 7 else "failed", {"a": "x"})
    long = loads("".join(f'[steps.s{i}]\nkind = "template"\ntemplate = '
                         f'"{{{{ steps.s{i - 1} | length }}}}"\n' if i else
                         '[steps.s0]\nkind = "template"\ntemplate = "start"\n'
                         for i in range(CHAIN)), "long.toml")
    engine = Engine(store, ModelHub({}, {}, "none"))
    asyncio.run(engine.run(long, {}))
    gate = store.create_run(tiny, {}, tiny.plan.order)
    for i in range(REVIEWS):
        store.add_review(gate, "a", "a", original=f"draft {i}", instructions="check it")
    store.close()


def child_launch(db: str, started: float, bare: bool) -> None:
    """In a new process: start an app on `db`, print seconds from `started` until it
    is painted and has answered a key."""
    os.environ["PODIUM_DB"] = db
    if bare:
        import sqlite3

        from textual.app import App, ComposeResult
        from textual.widgets import DataTable

        class Bare(App[None]):
            def compose(self) -> ComposeResult:
                yield DataTable(cursor_type="row")

            def on_mount(self) -> None:
                rows = sqlite3.connect(db).execute(
                    "SELECT id, recipe_name, status, created_at FROM runs ORDER BY "
                    "created_at DESC LIMIT 500").fetchall()
                t = self.query_one(DataTable)
                t.add_columns("run", "recipe", "status", "created")
                t.add_rows([tuple(map(str, r)) for r in rows])
                t.focus()

        app: App[None] = Bare()
    else:
        from podium.core.store import Store
        from podium.tui.app import make_app

        app = make_app(Store(db))

    async def main() -> None:
        from textual.widgets import DataTable

        async with app.run_test(size=(120, 40)) as pilot:
            while not app.screen.query(DataTable) or \
                    app.screen.query(DataTable).first().row_count < 2:
                await asyncio.sleep(0.005)
            await pilot.press("down")
            assert app.screen.query(DataTable).first().cursor_row == 1
            print(time.time() - started)

    asyncio.run(main())


def launch(db: Path, bare: bool, repeats: int) -> list[float]:
    out = []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, __file__, "--child", str(db)] +
                              (["--bare"] if bare else []) + ["--started", str(time.time())],
                              capture_output=True, text=True, check=True)
        out.append(float(done.stdout.strip().splitlines()[-1]))
    return out


class Staggered(SleepProvider):
    """The sleep provider with calls of 0.3 to 1.25 s, so a fan-out's steps start
    together and finish spread out: the screen changes all the while."""

    calls = 0

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        """Wait a little longer each call (in a cycle of 20), then answer."""
        Staggered.calls += 1
        self.delay = 0.3 + (Staggered.calls % 20) * 0.05
        async for chunk in super().stream(request):
            yield chunk


async def in_app(db: Path) -> dict[str, list[float]]:
    """Open the long run; press keys idle, while the model generates, during a fan-out."""
    from textual.widgets import DataTable

    from podium.core.models.hub import ModelHub
    from podium.core.recipe.load import loads
    from podium.core.run.engine import Engine
    from podium.core.store import Store
    from podium.tui.app import make_app
    from podium.tui.factory import make_engine
    from podium.tui.screens.run import RunScreen

    store = Store(db)
    out: dict[str, list[float]] = {"open": [], "idle": [], "model": [], "fanout": []}

    async def presses(pilot: object, n: int = 20) -> list[float]:
        """Seconds from a key arriving to the runs table's cursor having moved. (Not
        Textual's `pilot.press`: it also waits for the whole process to go idle, which
        a generating model never does.)"""
        app = pilot.app  # type: ignore[attr-defined]
        times = []
        for i in range(n):
            table = app.screen.query_one(DataTable)
            before = table.cursor_row
            t0 = time.perf_counter()
            app.simulate_key("down" if i % 2 == 0 else "up")
            while table.cursor_row == before:
                await asyncio.sleep(0)
            times.append(time.perf_counter() - t0)
            await asyncio.sleep(0.05)  # a person's pace
        return times

    app = make_app(store, make_engine(store))
    async with app.run_test(size=(120, 40)) as pilot:
        runs = app.screen.query_one(DataTable)
        while runs.row_count < 100:
            await asyncio.sleep(0.01)
        for _ in range(3):
            ids = [r.id for r in store.list_runs(limit=20) if r.recipe_name == "long"]
            t0 = time.perf_counter()
            app.open_run(ids[0])
            while not (isinstance(app.screen, RunScreen) and app.screen.query(DataTable) and
                       app.screen.query_one(DataTable).row_count == CHAIN):
                await asyncio.sleep(0.002)
            out["open"].append(time.perf_counter() - t0)
            app.pop_screen()
            await pilot.pause()
        out["idle"] = await presses(pilot)
        story = loads('[steps.tell]\nkind = "llm"\nmax_tokens = 200\nprompt = "Tell a long '
                      'story about a lighthouse."\n', "story.toml")
        app.launch(story, {})
        await asyncio.sleep(1.5)  # the model is loaded and generating
        app.pop_screen()
        await pilot.pause()
        out["model"] = await presses(pilot)
    fan = loads("max_parallel = 100\n" + "".join(
        f'[steps.m{i}]\nkind = "llm"\nprompt = "item {i}"\n' for i in range(100)), "fan.toml")
    engine = Engine(store, ModelHub({"bench": Staggered("bench")}, {}, "bench"),
                    max_parallel=100)
    app = make_app(store, engine)
    async with app.run_test(size=(120, 40)) as pilot:
        while app.screen.query_one(DataTable).row_count < 100:
            await asyncio.sleep(0.01)
        for _ in range(3):
            # The person watches the fan-out in its run screen, moving through the
            # steps while all 100 start at once and then finish one after another.
            app.launch(fan, {})
            while not (isinstance(app.screen, RunScreen) and app.screen.query(DataTable)
                       and app.screen.query(DataTable).first().row_count == 100):
                await asyncio.sleep(0.005)
            await asyncio.sleep(0.2)  # the screen has drawn its footer: a person's pace
            while app.workers:
                out["fanout"] += await presses(pilot, 1)
            app.pop_screen()
            await pilot.pause()
    store.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child")
    parser.add_argument("--bare", action="store_true")
    parser.add_argument("--started", type=float)
    args = parser.parse_args()
    if args.child:
        child_launch(args.child, args.started, args.bare)
        return
    with tempfile.TemporaryDirectory(prefix="podium-tui-bench-") as tmp:
        os.environ["PODIUM_HOME"] = tmp
        db = Path(tmp) / "podium.db"
        t0 = time.perf_counter()
        seed(db)
        print(f"seeded {RUNS:,} runs, a {CHAIN}-step run and {REVIEWS:,} reviews in "
              f"{time.perf_counter() - t0:.1f} s\n")
        podium = launch(db, False, args.repeats)
        bare = launch(db, True, args.repeats)
        inside = asyncio.run(in_app(db))
    ms = 1000.0
    rows = [
        ["launch to interactive", f"{min(podium):.2f} s (median {statistics.median(podium):.2f})",
         f"{min(bare):.2f} s (median {statistics.median(bare):.2f})", "< 1 s",
         mark(statistics.median(podium) < 1.0)],
        ["open the 500-step run", f"{statistics.median(inside['open']) * ms:.0f} ms", "",
         "< 300 ms", mark(statistics.median(inside["open"]) < 0.3)],
        ["key press, idle", f"{statistics.median(inside['idle']) * ms:.0f} ms (max "
         f"{max(inside['idle']) * ms:.0f})", "", "", ""],
        ["key press, model generating", f"{statistics.median(inside['model']) * ms:.0f} ms "
         f"(max {max(inside['model']) * ms:.0f})", "", "< 100 ms",
         mark(max(inside["model"]) < 0.1)],
        ["key press, 100-way fan-out", f"{statistics.median(inside['fanout']) * ms:.0f} ms "
         f"(max {max(inside['fanout']) * ms:.0f}, {len(inside['fanout'])} presses)", "",
         "< 100 ms",
         mark(max(inside["fanout"]) < 0.1)],
    ]
    print(table(["case", "Podium app", "bare Textual app", "target", "result"], rows))
    print("\nA key press is timed from the key event being posted to the cursor having "
          "moved.\n" + load_note())


if __name__ == "__main__":
    main()
