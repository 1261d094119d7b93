"""Start-up and per-run cost of the `podium` CLI against simonw's `llm` CLI.

Two cases, each a fresh process per run, timed end to end (best of N and median,
after one untimed warm-up so the databases exist and the OS file cache is warm):

* `podium --help` vs `llm --help`;
* a one-step recipe on the embedded model (`podium run FILE -q --json`, with
  PODIUM_HOME in a temp dir so a real SQLite file is written) vs
  `llm -m SmolLM2 PROMPT` (LLM_USER_PATH in a temp dir, so it logs to its own
  SQLite). Both run SmolLM2-135M-Instruct Q4_1 on llama.cpp.

Run: `.venv/bin/python bench/startup.py [--json] [--repeats N] [--imports]`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common import Sample, load_note, mark, measure, table

PROMPT = "What is the capital of France? Answer briefly."
BIN = Path(sys.executable).parent
MAX_HELP_S = 0.25

RECIPE = f"""\
name = "capital"

[steps.answer]
kind = "llm"
prompt = "{PROMPT}"
"""


@dataclass(frozen=True)
class Sandbox:
    """Private homes for both tools, so nothing touches the user's real data."""

    root: Path

    @property
    def recipe(self) -> Path:
        """The one-step recipe file."""
        return self.root / "capital.toml"

    def env(self) -> dict[str, str]:
        """The environment every timed process gets."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PODIUM_DB", "PODIUM_SYNC", "LLM_USER_PATH", "PODIUM_HOME")}
        env["PODIUM_HOME"] = str(self.root / "podium-home")
        env["LLM_USER_PATH"] = str(self.root / "llm-home")
        return env


def run(argv: Sequence[str], env: dict[str, str]) -> str:
    """Run a command to completion; its stdout. A failure stops the benchmark."""
    proc = subprocess.run(list(argv), env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stderr[-2000:]}")
    return proc.stdout


def timed(argv: Sequence[str], env: dict[str, str], repeats: int) -> tuple[Sample, str]:
    """Wall times of `argv` as a fresh process, and the stdout of the last run."""
    last: list[str] = [""]

    def once() -> None:
        last[0] = run(argv, env)

    return measure(once, repeats), last[0]


@dataclass
class Results:
    """Every measurement, plus what the one-step runs answered."""

    podium_help: Sample
    llm_help: Sample
    podium_run: Sample
    llm_run: Sample
    podium_doc: dict[str, Any]
    llm_answer: str


def collect(repeats: int) -> Results:
    """Time both tools in a throwaway sandbox."""
    with tempfile.TemporaryDirectory(prefix="podium-startup-") as tmp:
        box = Sandbox(Path(tmp))
        box.recipe.write_text(RECIPE, encoding="utf-8")
        env = box.env()
        podium, llm = str(BIN / "podium"), str(BIN / "llm")
        podium_help, _ = timed([podium, "--help"], env, repeats)
        llm_help, _ = timed([llm, "--help"], env, repeats)
        podium_run, out = timed([podium, "run", str(box.recipe), "-q", "--json"], env, repeats)
        llm_run, answer = timed([llm, "-m", "SmolLM2", PROMPT], env, repeats)
        doc = json.loads(out)
        if doc.get("status") != "succeeded":
            raise RuntimeError(f"podium run did not succeed: {doc}")
        for db in (Path(env["PODIUM_HOME"]) / "podium.db", Path(env["LLM_USER_PATH"]) / "logs.db"):
            if not db.exists():
                raise RuntimeError(f"expected a SQLite file at {db}")
    return Results(podium_help, llm_help, podium_run, llm_run, doc, answer.strip())


def slowest_imports(n: int = 12) -> list[tuple[str, float]]:
    """The modules `podium --help` spends most import time on (cumulative, seconds),
    from `python -X importtime`."""
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "podium.tui.cli", "--help"],
                          capture_output=True, text=True)
    rows: list[tuple[str, float]] = []
    for line in proc.stderr.splitlines():
        m = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
        if m and len(m.group(2)) == 1:  # top level only; nested ones are inside these
            rows.append((m.group(3), int(m.group(1)) / 1e6))
    return sorted(rows, key=lambda r: -r[1])[:n]


def summary(r: Results) -> dict[str, Any]:
    """The figures, JSON-ready."""
    step = r.podium_doc["steps"][0]
    return {
        "podium_help_s": round(r.podium_help.best, 4),
        "podium_help_median_s": round(r.podium_help.median, 4),
        "llm_help_s": round(r.llm_help.best, 4),
        "llm_help_median_s": round(r.llm_help.median, 4),
        "podium_run_s": round(r.podium_run.best, 4),
        "podium_run_median_s": round(r.podium_run.median, 4),
        "llm_run_s": round(r.llm_run.best, 4),
        "llm_run_median_s": round(r.llm_run.median, 4),
        "podium_step_latency_s": round((step.get("latency_ms") or 0) / 1000, 4),
        "podium_input_tokens": r.podium_doc["input_tokens"],
        "podium_output_tokens": r.podium_doc["output_tokens"],
        "podium_answer": r.podium_doc["outputs"].get("answer"),
        "llm_answer": r.llm_answer,
        "repeats": len(r.podium_help.times),
        "load_avg_1m": round(os.getloadavg()[0], 2),
        "targets": targets(r),
    }


def targets(r: Results) -> dict[str, bool]:
    """The brief's pass/fail checks."""
    return {
        "help_under_0.25s": r.podium_help.best < MAX_HELP_S,
        "run_no_slower_than_llm": r.podium_run.best <= r.llm_run.best,
    }


def render(r: Results) -> str:
    """The comparison table, the targets and what the runs answered."""
    def s(x: float) -> str:
        return f"{x:.3f} s"

    header = ["case", "podium best", "podium median", "llm best", "llm median",
              "podium / llm"]
    rows = [
        ["--help", s(r.podium_help.best), s(r.podium_help.median), s(r.llm_help.best),
         s(r.llm_help.median), f"{r.podium_help.best / r.llm_help.best:.2f}x"],
        ["one-step run (SmolLM2)", s(r.podium_run.best), s(r.podium_run.median),
         s(r.llm_run.best), s(r.llm_run.median), f"{r.podium_run.best / r.llm_run.best:.2f}x"],
    ]
    checks = targets(r)
    target_rows = [
        ["podium --help under 0.25 s", s(r.podium_help.best), f"< {MAX_HELP_S} s",
         mark(checks["help_under_0.25s"])],
        ["one-step run no slower than llm", s(r.podium_run.best), f"<= {s(r.llm_run.best)}",
         mark(checks["run_no_slower_than_llm"])],
    ]
    facts = summary(r)
    stored = (f"podium stored: {facts['podium_input_tokens']} input + "
              f"{facts['podium_output_tokens']} output tokens, step latency "
              f"{facts['podium_step_latency_s']:.3f} s, answer {facts['podium_answer']!r}\n"
              f"llm answered: {r.llm_answer!r}")
    return "\n\n".join([table(header, rows),
                        table(["target", "value", "limit", "result"], target_rows), stored,
                        load_note()])


def render_imports(rows: list[tuple[str, float]]) -> str:
    """The slowest top-level imports of `podium --help`."""
    return "slowest imports of `podium --help` (python -X importtime, cumulative):\n" + \
        table(["module", "seconds"], [[name, f"{sec:.4f}"] for name, sec in rows])


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure, print; with --check, exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per case")
    parser.add_argument("--imports", action="store_true",
                        help="list the slowest imports of `podium --help` (automatic when "
                        "it misses its target)")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    results = collect(args.repeats)
    show_imports = args.imports or not targets(results)["help_under_0.25s"]
    imports = slowest_imports() if show_imports else []
    if args.json:
        doc = summary(results)
        if imports:
            doc["slowest_imports_s"] = dict(imports)
        print(json.dumps(doc, indent=2, ensure_ascii=False))
    else:
        print(render(results))
        if imports:
            print("\n" + render_imports(imports))
    return 1 if args.check and not all(targets(results).values()) else 0


if __name__ == "__main__":
    sys.exit(main())
