"""The engine's own overhead, side by side with LangGraph in the same process.

Three workloads, each timed best-of-N after a warm-up:

* a 200-step chain of `template` steps (no model): Podium's `Engine` on a real SQLite
  store (synchronous NORMAL, the default, and FULL) vs a 200-node LangGraph
  `StateGraph` with `SqliteSaver` (out of the box, and on a NORMAL connection) and
  without a checkpointer. Per-step overhead = wall / steps.
* a 100-way fan-out of model calls that each wait 50 ms: Podium `llm` steps on
  `SleepProvider` vs LangGraph's `Send` fan-out of 100 async nodes (no checkpointer,
  and `AsyncSqliteSaver`). Wall time and ratio to the ideal 50 ms.

Run: `.venv/bin/python bench/engine.py [--json] [--repeats N] [--profile]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import operator
import os
import pstats
import sqlite3
import sys
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TypedDict

from common import Sample, ameasure, load_note, mark, measure, table
from langgraph.checkpoint.sqlite import SqliteSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Send
from sleep_provider import SleepProvider

from podium.core.models.hub import ModelHub
from podium.core.recipe.load import loads
from podium.core.recipe.schema import Recipe
from podium.core.run.engine import Engine
from podium.core.store import Store

CHAIN_STEPS = 200
FANOUT = 100
CALL_S = 0.05
# Targets from the brief.
SPEEDUP_VS_SQLITESAVER = 3.0
MAX_STEP_US = 190.0
MAX_FANOUT_RATIO = 1.15


# --- recipes -------------------------------------------------------------------------------


def chain_toml(n: int = CHAIN_STEPS) -> str:
    """n `template` steps in a line; each renders the length of the one before."""
    parts = ['name = "bench-chain"\n\n[steps.s0]\nkind = "template"\ntemplate = "start"\n']
    for i in range(1, n):
        parts.append(f'\n[steps.s{i}]\nkind = "template"\n'
                     f'template = "s{i}:{{{{ steps.s{i - 1} | length }}}}"\n')
    return "".join(parts)


def fanout_toml(n: int = FANOUT) -> str:
    """n independent `llm` steps, all allowed to run at once."""
    parts = [f'name = "bench-fanout"\nmax_parallel = {n}\n']
    for i in range(n):
        parts.append(f'\n[steps.m{i}]\nkind = "llm"\nprompt = "item {i}"\n')
    return "".join(parts)


# --- Podium --------------------------------------------------------------------------------


@contextmanager
def podium_engine(synchronous: str = "NORMAL", max_parallel: int = 8) -> Iterator[Engine]:
    """An engine on a fresh SQLite store in a temp dir, with the sleeping provider."""
    with tempfile.TemporaryDirectory(prefix="podium-bench-") as tmp:
        store = Store(Path(tmp) / "podium.db", synchronous=synchronous)
        hub = ModelHub(providers={"bench": SleepProvider("bench", CALL_S)}, specs={},
                       default_local="bench")
        try:
            yield Engine(store, hub, max_parallel=max_parallel, on_event=None)
        finally:
            store.close()


async def _podium_runs(engine: Engine, recipe: Recipe, repeats: int) -> Sample:
    from podium.core.models.routing import _ask_signals

    async def once() -> None:
        _ask_signals.cache_clear()  # route every prompt as if first seen
        result = await engine.run(recipe, {})
        if result.status != "succeeded":
            raise RuntimeError(f"podium run {result.run_id} {result.status}: {result.error}")

    return await ameasure(once, repeats)


def podium_chain(repeats: int, synchronous: str) -> Sample:
    """Wall times of the 200-step chain (recipe loading is not timed)."""
    recipe = loads(chain_toml())
    with podium_engine(synchronous) as engine:
        return asyncio.run(_podium_runs(engine, recipe, repeats))


def podium_fanout(repeats: int) -> Sample:
    """Wall times of the 100-way fan-out of 50 ms model calls."""
    recipe = loads(fanout_toml())
    with podium_engine(max_parallel=FANOUT) as engine:
        return asyncio.run(_podium_runs(engine, recipe, repeats))


def profile_podium_chain(top: int = 25) -> str:
    """cProfile of three warm chain runs, sorted by cumulative time."""
    recipe = loads(chain_toml())
    profiler = cProfile.Profile()

    async def runs(engine: Engine) -> None:
        await engine.run(recipe, {})
        profiler.enable()
        for _ in range(3):
            await engine.run(recipe, {})
        profiler.disable()

    with podium_engine() as engine:
        asyncio.run(runs(engine))
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(top)
    return out.getvalue()


# --- LangGraph -----------------------------------------------------------------------------


class ChainState(TypedDict):
    """The chain's state: one string, replaced by every node."""

    value: str


class FanState(TypedDict):
    """The fan-out's state: results appended by every branch."""

    results: Annotated[list[int], operator.add]


class Item(TypedDict):
    """What `Send` hands one branch."""

    i: int


@dataclass(frozen=True)
class ChainNode:
    """Node i of the chain: the same work as Podium's template step i."""

    i: int

    def __call__(self, state: ChainState) -> dict[str, str]:
        return {"value": f"s{self.i}:{len(state['value'])}"}


def langgraph_chain_graph(checkpointer: Any = None, n: int = CHAIN_STEPS) -> Any:
    """n nodes in a line, the same work as `chain_toml`."""
    graph = StateGraph(ChainState)
    for i in range(n):
        graph.add_node(f"s{i}", ChainNode(i))
    graph.add_edge(START, "s0")
    for i in range(1, n):
        graph.add_edge(f"s{i - 1}", f"s{i}")
    graph.add_edge(f"s{n - 1}", END)
    return graph.compile(checkpointer=checkpointer)


def _run_config() -> dict[str, Any]:
    # A new thread per run, so every run writes its own checkpoints (like a new Podium run).
    return {"recursion_limit": CHAIN_STEPS * 2 + 10,
            "configurable": {"thread_id": uuid.uuid4().hex}}


def langgraph_chain(repeats: int, saver: str | None) -> Sample:
    """Wall times of the chain; `saver` is None, "default" (SqliteSaver as it comes:
    SQLite's synchronous=FULL) or "NORMAL" (its connection set to synchronous=NORMAL)."""
    with tempfile.TemporaryDirectory(prefix="langgraph-bench-") as tmp:
        conn = sqlite3.connect(str(Path(tmp) / "lg.db"), check_same_thread=False)
        try:
            checkpointer = None
            if saver is not None:
                checkpointer = SqliteSaver(conn)
                checkpointer.setup()
                if saver == "NORMAL":
                    conn.execute("PRAGMA synchronous=NORMAL")
            graph = langgraph_chain_graph(checkpointer)

            def once() -> None:
                out = graph.invoke({"value": "start"}, _run_config())
                if not out["value"].startswith(f"s{CHAIN_STEPS - 1}:"):
                    raise RuntimeError(f"unexpected LangGraph result {out!r}")

            return measure(once, repeats)
        finally:
            conn.close()


async def _sleep_node(state: Item) -> dict[str, list[int]]:
    await asyncio.sleep(CALL_S)
    return {"results": [state["i"]]}


def _fan_out(state: FanState) -> list[Send]:
    return [Send("work", {"i": i}) for i in range(FANOUT)]


def langgraph_fanout_graph(checkpointer: Any = None) -> Any:
    """START sends 100 items to one async node that sleeps 50 ms."""
    graph = StateGraph(FanState)
    graph.add_node("work", _sleep_node)
    graph.add_conditional_edges(START, _fan_out, ["work"])
    graph.add_edge("work", END)
    return graph.compile(checkpointer=checkpointer)


async def _langgraph_fanout_runs(repeats: int, db: Path | None) -> Sample:
    async def runs(graph: Any) -> Sample:
        async def once() -> None:
            out = await graph.ainvoke({"results": []}, _run_config())
            if len(out["results"]) != FANOUT:
                raise RuntimeError(f"LangGraph fan-out gave {len(out['results'])} results")

        return await ameasure(once, repeats)

    if db is None:
        return await runs(langgraph_fanout_graph())
    async with AsyncSqliteSaver.from_conn_string(str(db)) as saver:
        return await runs(langgraph_fanout_graph(saver))


def langgraph_fanout(repeats: int, checkpointed: bool) -> Sample:
    """Wall times of the `Send` fan-out, with `AsyncSqliteSaver` or no checkpointer."""
    with tempfile.TemporaryDirectory(prefix="langgraph-bench-") as tmp:
        db = Path(tmp) / "lg.db" if checkpointed else None
        return asyncio.run(_langgraph_fanout_runs(repeats, db))


# --- report --------------------------------------------------------------------------------


@dataclass
class Results:
    """Every measurement, as wall-time samples."""

    podium_chain: Sample
    podium_chain_full: Sample
    lg_chain_saver: Sample
    lg_chain_saver_normal: Sample
    lg_chain_nocp: Sample
    podium_fanout: Sample
    lg_fanout_nocp: Sample
    lg_fanout_saver: Sample


def collect(repeats: int) -> Results:
    """Run every case (each warmed up once, then `repeats` timed runs)."""
    return Results(
        podium_chain=podium_chain(repeats, "NORMAL"),
        podium_chain_full=podium_chain(repeats, "FULL"),
        lg_chain_saver=langgraph_chain(repeats, "default"),
        lg_chain_saver_normal=langgraph_chain(repeats, "NORMAL"),
        lg_chain_nocp=langgraph_chain(repeats, None),
        podium_fanout=podium_fanout(repeats),
        lg_fanout_nocp=langgraph_fanout(repeats, checkpointed=False),
        lg_fanout_saver=langgraph_fanout(repeats, checkpointed=True),
    )


def per_step_us(sample: Sample) -> float:
    """Best wall time over the chain, per step, in microseconds."""
    return sample.best / CHAIN_STEPS * 1e6


def summary(r: Results) -> dict[str, Any]:
    """The figures, JSON-ready (best of N; medians alongside)."""
    podium_us = per_step_us(r.podium_chain)
    saver_us = per_step_us(r.lg_chain_saver)
    return {
        "podium_step_overhead_us": round(podium_us, 1),
        "podium_full_sync_step_overhead_us": round(per_step_us(r.podium_chain_full), 1),
        "langgraph_step_overhead_us": round(saver_us, 1),
        "langgraph_normal_sync_step_overhead_us": round(per_step_us(r.lg_chain_saver_normal), 1),
        "langgraph_nocp_step_overhead_us": round(per_step_us(r.lg_chain_nocp), 1),
        "podium_step_overhead_median_us": round(r.podium_chain.median / CHAIN_STEPS * 1e6, 1),
        "langgraph_step_overhead_median_us": round(
            r.lg_chain_saver.median / CHAIN_STEPS * 1e6, 1),
        "fanout_wall_s": round(r.podium_fanout.best, 4),
        "fanout_wall_median_s": round(r.podium_fanout.median, 4),
        "langgraph_fanout_wall_s": round(r.lg_fanout_nocp.best, 4),
        "langgraph_cp_fanout_wall_s": round(r.lg_fanout_saver.best, 4),
        "fanout_ratio_to_ideal": round(r.podium_fanout.best / CALL_S, 3),
        "chain_steps": CHAIN_STEPS,
        "fanout_width": FANOUT,
        "repeats": len(r.podium_chain.times),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "targets": targets(r),
    }


def targets(r: Results) -> dict[str, bool]:
    """The brief's pass/fail checks."""
    podium_us = per_step_us(r.podium_chain)
    return {
        "step_le_sqlitesaver_div_3": podium_us <= per_step_us(r.lg_chain_saver)
        / SPEEDUP_VS_SQLITESAVER,
        "step_under_190us": podium_us <= MAX_STEP_US,
        "fanout_le_1.15x_ideal": r.podium_fanout.best <= MAX_FANOUT_RATIO * CALL_S,
        "fanout_faster_than_langgraph": r.podium_fanout.best < r.lg_fanout_nocp.best,
    }


def _us(s: Sample) -> str:
    return f"{per_step_us(s):.0f} us"


def _sec(s: Sample) -> str:
    return f"{s.best:.4f} s"


def _x(a: float, b: float) -> str:
    return f"{a / b:.2f}x"


def render(r: Results) -> str:
    """The comparison table, the targets and notes."""
    header = ["case (best of N)", "Podium", "LangGraph +SqliteSaver",
              "LangGraph no checkpointer", "ratio LG+saver / Podium"]
    rows = [
        [f"{CHAIN_STEPS}-step chain, per step (sync=NORMAL)", _us(r.podium_chain),
         _us(r.lg_chain_saver_normal), _us(r.lg_chain_nocp),
         _x(r.lg_chain_saver_normal.best, r.podium_chain.best)],
        [f"{CHAIN_STEPS}-step chain, per step (sync=FULL)", _us(r.podium_chain_full),
         _us(r.lg_chain_saver), _us(r.lg_chain_nocp),
         _x(r.lg_chain_saver.best, r.podium_chain_full.best)],
        [f"{FANOUT}-way fan-out of {CALL_S * 1000:.0f} ms calls, wall", _sec(r.podium_fanout),
         _sec(r.lg_fanout_saver), _sec(r.lg_fanout_nocp),
         _x(r.lg_fanout_saver.best, r.podium_fanout.best)],
        ["  ... wall / ideal 50 ms", _x(r.podium_fanout.best, CALL_S),
         _x(r.lg_fanout_saver.best, CALL_S), _x(r.lg_fanout_nocp.best, CALL_S), ""],
    ]
    podium_us = per_step_us(r.podium_chain)
    saver_us = per_step_us(r.lg_chain_saver)
    checks = targets(r)
    target_rows = [
        ["Podium step (NORMAL) <= LG+SqliteSaver (as shipped) / 3",
         f"{podium_us:.0f} us", f"<= {saver_us / SPEEDUP_VS_SQLITESAVER:.0f} us",
         mark(checks["step_le_sqlitesaver_div_3"])],
        ["Podium step (NORMAL) under ~190 us", f"{podium_us:.0f} us",
         f"<= {MAX_STEP_US:.0f} us", mark(checks["step_under_190us"])],
        ["fan-out <= 1.15 x 50 ms", _sec(r.podium_fanout),
         f"<= {MAX_FANOUT_RATIO * CALL_S:.4f} s", mark(checks["fanout_le_1.15x_ideal"])],
        ["fan-out faster than LangGraph (no checkpointer)", _sec(r.podium_fanout),
         f"< {r.lg_fanout_nocp.best:.4f} s", mark(checks["fanout_faster_than_langgraph"])],
    ]
    medians = (f"medians: Podium chain {r.podium_chain.median / CHAIN_STEPS * 1e6:.0f} us/step "
               f"(FULL {r.podium_chain_full.median / CHAIN_STEPS * 1e6:.0f}), "
               f"LangGraph+SqliteSaver {r.lg_chain_saver.median / CHAIN_STEPS * 1e6:.0f} "
               f"us/step, Podium fan-out {r.podium_fanout.median:.4f} s, "
               f"LangGraph fan-out {r.lg_fanout_nocp.median:.4f} s")
    notes = [
        "SqliteSaver as shipped leaves SQLite at synchronous=FULL (one fsync per commit), so",
        "the FULL row is the like-for-like one for it; the NORMAL row sets its connection to",
        "NORMAL. LangGraph runs with its default durability (\"async\"); fan-out with a",
        "checkpointer uses AsyncSqliteSaver. Podium commits once per scheduling pass (the",
        "results that finished, the steps they skip, the attempts that start next).",
    ]
    return "\n\n".join([table(header, rows), medians,
                        table(["target", "value", "limit", "result"], target_rows),
                        "\n".join(notes), load_note()])


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print; with --check, exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    parser.add_argument("--profile", action="store_true",
                        help="also print a cProfile of Podium's chain (stderr)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    results = collect(args.repeats)
    if args.json:
        print(json.dumps(summary(results), indent=2))
    else:
        print(render(results))
    if args.profile:
        print(profile_podium_chain(), file=sys.stderr)
    return 1 if args.check and not all(targets(results).values()) else 0


if __name__ == "__main__":
    sys.exit(main())
