"""Timing and reporting shared by the benchmark scripts: best-of-N samples, a plain
text table, and pass/fail marks. No Podium or peer imports here."""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    """Wall times (seconds) of repeated runs of one case, warm-up excluded."""

    times: tuple[float, ...]

    @property
    def best(self) -> float:
        """The fastest run: the least disturbed by the rest of the machine."""
        return min(self.times)

    @property
    def median(self) -> float:
        """The typical run."""
        return statistics.median(self.times)


def measure(fn: Callable[[], object], repeats: int, warmup: int = 1) -> Sample:
    """Call `fn` `warmup` times untimed, then `repeats` times timed."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return Sample(tuple(times))


async def ameasure(fn: Callable[[], Awaitable[object]], repeats: int,
                   warmup: int = 1) -> Sample:
    """`measure` for coroutines, timed inside one running event loop (so loop start-up
    is not charged to the code under test)."""
    for _ in range(warmup):
        await fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return Sample(tuple(times))


def mark(ok: bool) -> str:
    """PASS or FAIL."""
    return "PASS" if ok else "FAIL"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A left-aligned text table with a rule under the header."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths, strict=True)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(line.rstrip() for line in lines)


def load_note() -> str:
    """The machine's load, printed with results: other work on the cores skews them."""
    one, five, _ = os.getloadavg()
    return f"machine: {os.cpu_count()} cores, load average {one:.2f} (1 min), {five:.2f} (5 min)"
