"""Human review gates: what pausing and resuming cost, side by side with LangGraph.

Two measurements, each beside LangGraph in the same run:

* **pause and resume, in process.** Podium: a recipe `a -> check (review of a) ->
  after`; "pause" is `Engine.run` until it returns `waiting`, "decide" records the
  approval, "resume" is `Engine.resume` to the end. LangGraph: nodes `a -> review ->
  after` where `review` calls `interrupt()`, on `SqliteSaver` (a temp file); "pause"
  is `invoke` until it returns the interrupt, "resume" is `invoke(Command(resume=...))`.
  Both on a real SQLite file. The table also counts how often the code before the
  gate ran: LangGraph re-runs the interrupted node from its start on resume.
* **a crashed 200-step run, resumed by a fresh process.** A 200-step chain whose step
  120 is a model call to a loopback server that hangs; the run is killed (SIGKILL)
  while that call is in flight. Then `podium resume RUN` is timed as a new process
  (wall time: interpreter start, imports, reading the store, the in-doubt step again
  against a now-answering server, and the 79 steps after it), on a fresh copy of the
  crashed database each time. LangGraph: the same chain on SqliteSaver, killed in
  node 120, resumed by a new process with `invoke(None, config)`.

Run: `.venv/bin/python bench/review.py [--json] [--repeats N] [--check]`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypedDict

from common import Sample, load_note, mark, table

ROOT = Path(__file__).resolve().parent.parent
PODIUM = str(Path(sys.executable).parent / "podium")
STEPS = 200
CRASH_AT = 120
MAX_PAUSE_MS = 5.0
MAX_RESUME_MS = 5.0
MAX_CRASH_RESUME_S = 0.5

GATE_TOML = """
[steps.a]
kind = "template"
template = "draft {{ inputs.n }}"
[steps.check]
kind = "review"
of = "a"
on_reject = "fail"
[steps.after]
kind = "template"
template = "sent: {{ steps.check }}"
[inputs.n]
type = "integer"
"""


# --- pause and resume in process ------------------------------------------------------------


def podium_gate(repeats: int) -> dict[str, Any]:
    from podium.core.models.hub import ModelHub
    from podium.core.recipe.load import loads
    from podium.core.review.decisions import decide
    from podium.core.run.engine import Engine
    from podium.core.store import Store

    recipe = loads(GATE_TOML)
    with tempfile.TemporaryDirectory(prefix="podium-review-bench-") as tmp:
        store = Store(Path(tmp) / "podium.db")
        engine = Engine(store, ModelHub({}, {}, "none"))
        pause, record, resume, ran = [], [], [], 0

        async def once(n: int) -> None:
            nonlocal ran
            t0 = time.perf_counter()
            result = await engine.run(recipe, {"n": n})
            t1 = time.perf_counter()
            assert result.status == "waiting", result
            [item] = store.reviews(run_id=result.run_id)
            decide(store, item.id, "approve")
            t2 = time.perf_counter()
            done = await engine.resume(result.run_id)
            t3 = time.perf_counter()
            assert done.outputs == {"after": f"sent: draft {n}"}, done
            ran = store.attempt_count(result.run_id, "a")
            if n >= 0:
                pause.append(t1 - t0)
                record.append(t2 - t1)
                resume.append(t3 - t2)

        async def all_runs() -> None:
            await once(-1)  # warm-up
            for n in range(repeats):
                await once(n)

        asyncio.run(all_runs())
        store.close()
    return {"pause": Sample(tuple(pause)), "decide": Sample(tuple(record)),
            "resume": Sample(tuple(resume)), "before_gate_runs": ran}


class GateState(TypedDict):
    value: str


def langgraph_gate(repeats: int) -> dict[str, Any]:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph
    from langgraph.types import Command, interrupt

    calls = {"review": 0}

    def a(state: GateState) -> dict[str, str]:
        return {"value": "draft " + state["value"]}

    def review(state: GateState) -> dict[str, str]:
        calls["review"] += 1  # code before the interrupt: runs again on resume
        answer = interrupt({"draft": state["value"]})
        return {"value": str(answer)}

    def after(state: GateState) -> dict[str, str]:
        return {"value": "sent: " + state["value"]}

    with tempfile.TemporaryDirectory(prefix="langgraph-review-bench-") as tmp:
        conn = sqlite3.connect(str(Path(tmp) / "lg.db"), check_same_thread=False)
        saver = SqliteSaver(conn)
        saver.setup()
        graph = StateGraph(GateState)
        for name, fn in (("a", a), ("review", review), ("after", after)):
            graph.add_node(name, fn)
        graph.add_edge(START, "a")
        graph.add_edge("a", "review")
        graph.add_edge("review", "after")
        graph.add_edge("after", END)
        app = graph.compile(checkpointer=saver)
        pause, resume = [], []
        for n in range(-1, repeats):
            config = {"configurable": {"thread_id": f"t{n}"}}
            calls["review"] = 0
            t0 = time.perf_counter()
            out = app.invoke({"value": str(n)}, config)
            t1 = time.perf_counter()
            assert "__interrupt__" in out, out
            done = app.invoke(Command(resume=f"draft {n}"), config)
            t2 = time.perf_counter()
            assert done["value"] == f"sent: draft {n}", done
            if n >= 0:
                pause.append(t1 - t0)
                resume.append(t2 - t1)
        conn.close()
    return {"pause": Sample(tuple(pause)), "resume": Sample(tuple(resume)),
            "before_gate_runs": calls["review"]}


# --- a crashed 200-step run, resumed by a fresh process ---------------------------------------


class _Hanging(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that hangs while `hang` is set, else answers."""

    hang = threading.Event()

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        while self.hang.is_set():
            time.sleep(0.05)
        events = [{"choices": [{"delta": {"content": "answer"}, "finish_reason": None}]},
                  {"choices": [{"delta": {}, "finish_reason": "stop"}],
                   "usage": {"prompt_tokens": 5, "completion_tokens": 1}}]
        body = "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body.encode())

    def log_message(self, *args: Any) -> None:
        pass


def chain_toml() -> str:
    parts = []
    for i in range(STEPS):
        prev = f"{{{{ steps.s{i - 1} | length }}}}" if i else "start"
        if i == CRASH_AT:
            parts.append(f'[steps.s{i}]\nkind = "llm"\nmodel = "hang"\nretries = 0\n'
                         f'prompt = "s{i}:{prev}"\n')
        else:
            parts.append(f'[steps.s{i}]\nkind = "template"\ntemplate = "s{i}:{prev}"\n')
    return "\n".join(parts)


def _wait(condition: Any, proc: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if condition():
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process ended early: {proc.communicate()}")
        time.sleep(0.01)
    proc.kill()
    raise RuntimeError(f"{what}: timed out")


def _count(db: Path, sql: str, args: tuple[Any, ...] = ()) -> int:
    try:
        conn = sqlite3.connect(db)
        try:
            return int(conn.execute(sql, args).fetchone()[0])
        finally:
            conn.close()
    except sqlite3.OperationalError:
        return 0


def _copy_db(db: Path, copy: Path) -> Path:
    """A fresh copy of a crashed SQLite database, its WAL included, to resume once."""
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{db}{suffix}").exists():
            shutil.copy(f"{db}{suffix}", f"{copy}{suffix}")
    return copy


def _timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise RuntimeError(f"{cmd} failed: {proc.stderr}")
    return took, proc.stdout


def podium_crash(repeats: int) -> dict[str, Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Hanging)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        with tempfile.TemporaryDirectory(prefix="podium-crash-bench-") as tmp:
            home = Path(tmp) / "home"
            home.mkdir()
            (home / "config.toml").write_text(
                f'[models.hang]\nprovider = "openai"\nbase_url = '
                f'"http://127.0.0.1:{server.server_port}/v1"\ntier = "local"\n')
            recipe = Path(tmp) / "chain.toml"
            recipe.write_text(chain_toml())
            env = dict(os.environ, PODIUM_HOME=str(home))
            env.pop("PODIUM_DB", None)
            db = home / "podium.db"
            _Hanging.hang.set()
            proc = subprocess.Popen([PODIUM, "run", str(recipe), "-q"], env=env, cwd=ROOT,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            _wait(lambda: _count(db, "SELECT COUNT(*) FROM steps WHERE step_id = ? AND "
                                 "status = 'running'", (f"s{CRASH_AT}",)) == 1, proc,
                  "podium run")
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
            _Hanging.hang.clear()
            done_before = _count(db, "SELECT COUNT(*) FROM steps WHERE status = 'succeeded'")
            times = []
            for i in range(repeats + 1):
                copy = _copy_db(db, Path(tmp) / f"copy{i}.db")
                took, out = _timed([PODIUM, "--db", str(copy), "resume", "last", "-q",
                                    "--json"], env)
                run = json.loads(out)
                assert run["status"] == "succeeded", run["status"]
                again = _count(copy, "SELECT COUNT(*) FROM (SELECT step_id FROM attempts "
                               "WHERE step_id != ? GROUP BY step_id HAVING COUNT(*) > 1)",
                               (f"s{CRASH_AT}",))
                assert again == 0, "a finished step ran again"
                if i:
                    times.append(took)
    finally:
        server.shutdown()
    return {"resume": Sample(tuple(times)), "done_before_crash": done_before}


class ChainState(TypedDict):
    value: str


def _langgraph_chain(db: str, hang: bool) -> Any:
    from langgraph.checkpoint.sqlite import SqliteSaver
    from langgraph.graph import END, START, StateGraph

    def node(i: int) -> Any:
        def run(state: ChainState) -> dict[str, str]:
            if i == CRASH_AT and hang:
                time.sleep(3600)  # the model call that never comes back
            return {"value": f"s{i}:{len(state['value'])}"}
        return run

    graph = StateGraph(ChainState)
    for i in range(STEPS):
        graph.add_node(f"s{i}", node(i))
    graph.add_edge(START, "s0")
    for i in range(1, STEPS):
        graph.add_edge(f"s{i - 1}", f"s{i}")
    graph.add_edge(f"s{STEPS - 1}", END)
    conn = sqlite3.connect(db, check_same_thread=False)
    saver = SqliteSaver(conn)
    saver.setup()
    return graph.compile(checkpointer=saver)


def langgraph_child(mode: str, db: str) -> None:
    """In a subprocess: start the chain (hanging in node 120), or resume it."""
    app = _langgraph_chain(db, hang=mode == "run")
    config = {"recursion_limit": STEPS * 2 + 10, "configurable": {"thread_id": "crash"}}
    out = app.invoke({"value": "start"} if mode == "run" else None, config)
    assert out["value"].startswith(f"s{STEPS - 1}:"), out


def langgraph_crash(repeats: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="langgraph-crash-bench-") as tmp:
        db = Path(tmp) / "lg.db"
        me = [sys.executable, __file__, "--langgraph-child"]
        proc = subprocess.Popen([*me, "run", str(db)], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE)
        _wait(lambda: _count(db, "SELECT COUNT(*) FROM checkpoints") >= CRASH_AT, proc,
              "langgraph run")
        time.sleep(0.2)  # let it reach the hanging node
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        times = []
        for i in range(repeats + 1):
            copy = _copy_db(db, Path(tmp) / f"copy{i}.db")
            took, _ = _timed([*me, "resume", str(copy)], dict(os.environ))
            if i:
                times.append(took)
    return {"resume": Sample(tuple(times))}


# --- report --------------------------------------------------------------------------------


def collect(repeats: int, crash_repeats: int) -> dict[str, Any]:
    return {"podium_gate": podium_gate(repeats), "langgraph_gate": langgraph_gate(repeats),
            "podium_crash": podium_crash(crash_repeats),
            "langgraph_crash": langgraph_crash(crash_repeats)}


def targets(r: dict[str, Any]) -> dict[str, bool]:
    return {"pause_under_5ms": r["podium_gate"]["pause"].median * 1000 < MAX_PAUSE_MS,
            "resume_under_5ms": r["podium_gate"]["resume"].median * 1000 < MAX_RESUME_MS,
            "crash_resume_under_0.5s": r["podium_crash"]["resume"].median < MAX_CRASH_RESUME_S}


def _ms(s: Sample) -> str:
    return f"{s.median * 1000:.2f} ms (best {s.best * 1000:.2f})"


def _s(s: Sample) -> str:
    return f"{s.median:.3f} s (best {s.best:.3f})"


def render(r: dict[str, Any]) -> str:
    pg, lg, pc, lc = (r["podium_gate"], r["langgraph_gate"], r["podium_crash"],
                      r["langgraph_crash"])
    rows = [
        ["pause at the gate", _ms(pg["pause"]), _ms(lg["pause"])],
        ["record the decision", _ms(pg["decide"]), "(inside resume)"],
        ["resume to the end", _ms(pg["resume"]), _ms(lg["resume"])],
        ["code before the gate ran", f"{pg['before_gate_runs']} time", f"{lg['before_gate_runs']}"
         " times (interrupt() re-runs the node)"],
        [f"fresh process resumes a crashed {STEPS}-step run", _s(pc["resume"]),
         _s(lc["resume"])],
    ]
    checks = targets(r)
    target_rows = [
        ["pause under 5 ms", _ms(pg["pause"]), mark(checks["pause_under_5ms"])],
        ["resume under 5 ms", _ms(pg["resume"]), mark(checks["resume_under_5ms"])],
        ["crashed-run resume under 0.5 s", _s(pc["resume"]),
         mark(checks["crash_resume_under_0.5s"])],
    ]
    notes = [
        "Medians of the timed runs (a warm-up run first). Both sides on a real SQLite file:",
        "Podium WAL + synchronous=NORMAL, LangGraph's SqliteSaver as shipped. The crash rows",
        "are wall times of a new process, interpreter start and imports included; the run",
        f"had {pc['done_before_crash']} steps done when it was killed in step s{CRASH_AT}, and",
        "the resume made s120's call again (the server now answers) and ran the rest.",
    ]
    return "\n\n".join([table(["case", "Podium", "LangGraph + SqliteSaver"], rows),
                        table(["target", "value", "result"], target_rows),
                        "\n".join(notes), load_note()])


def summary(r: dict[str, Any]) -> dict[str, Any]:
    def ms(s: Sample) -> dict[str, float]:
        return {"median_ms": round(s.median * 1000, 3), "best_ms": round(s.best * 1000, 3)}

    return {"podium": {"pause": ms(r["podium_gate"]["pause"]),
                       "decide": ms(r["podium_gate"]["decide"]),
                       "resume": ms(r["podium_gate"]["resume"]),
                       "crash_resume": ms(r["podium_crash"]["resume"]),
                       "before_gate_runs": r["podium_gate"]["before_gate_runs"]},
            "langgraph": {"pause": ms(r["langgraph_gate"]["pause"]),
                          "resume": ms(r["langgraph_gate"]["resume"]),
                          "crash_resume": ms(r["langgraph_crash"]["resume"]),
                          "before_gate_runs": r["langgraph_gate"]["before_gate_runs"]},
            "targets": targets(r)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=50, help="timed gate runs")
    parser.add_argument("--crash-repeats", type=int, default=5,
                        help="timed fresh-process resumes")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--langgraph-child", nargs=2, metavar=("MODE", "DB"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.langgraph_child:
        langgraph_child(*args.langgraph_child)
        return 0
    results = collect(args.repeats, args.crash_repeats)
    print(json.dumps(summary(results), indent=2) if args.json else render(results))
    return 1 if args.check and not all(targets(results).values()) else 0


if __name__ == "__main__":
    sys.exit(main())
