"""Retrieval: `podium index` of 10,000 small generated documents (aim: under 10 s) and a
top-5 search (aim: median under 5 ms).

The index is timed as a person runs it: the `podium index` command in a fresh process
(start-up included), first on the new folder, then again with nothing changed, then
after 100 files changed. Searches are timed in-process (`core.retrieval.index.search`,
the call a `retrieve` step and the `search_docs` tool make).

The documents are written in a made-up language whose 20,000 words follow Zipf's law,
as the words of real text do. Typical queries are two to five words drawn from the
same law past its 150 most common words (real queries lose those as stopwords), with
an English stopword or a "quoted phrase" mixed in. The worst case asks for three of
the language's 30 most common words: each is in about half the documents, so BM25
ranks thousands of matches.

    python bench/retrieval.py [--docs 10000]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import mark  # noqa: E402

PODIUM = str(Path(sys.executable).parent / "podium")
SYLLABLES = ["ka", "lo", "mi", "ne", "su", "ta", "ri", "ve", "po", "da", "ge", "hu", "zo",
             "fi", "be", "wa", "ron", "lis", "tam", "pek", "dos", "mur", "fan", "gil"]
VOCABULARY = 20_000
COMMON = 150  # the made-up language's stopwords


def word(rank: int) -> str:
    """The word of a given frequency rank: its syllables spell the number."""
    out = []
    rank += 24  # at least two syllables
    while rank:
        rank, digit = divmod(rank, len(SYLLABLES))
        out.append(SYLLABLES[digit])
    return "".join(out)


WORDS = [word(r) for r in range(VOCABULARY)]
WEIGHTS = [1 / (r + 1) for r in range(VOCABULARY)]  # Zipf, exponent 1


def make_docs(folder: Path, count: int, rng: random.Random) -> None:
    """`count` documents of 40 to 120 words, a third Markdown and a tenth HTML."""
    for n in range(count):
        words = rng.choices(WORDS, WEIGHTS, k=rng.randint(40, 120))
        body = " ".join(words)
        sub = folder / f"d{n % 50:02d}"
        sub.mkdir(exist_ok=True)
        if n % 10 == 0:
            (sub / f"doc{n}.html").write_text(
                f"<html><head><title>{words[0]}</title></head><body><p>{body}</p>"
                "</body></html>")
        elif n % 3 == 0:
            (sub / f"doc{n}.md").write_text(f"# {words[0]} {words[1]}\n\n{body}\n")
        else:
            (sub / f"doc{n}.txt").write_text(body + "\n")


def typical_query(n: int, rng: random.Random) -> str:
    terms = rng.choices(WORDS[COMMON:], WEIGHTS[COMMON:], k=rng.randint(2, 5))
    if n % 3 == 0:
        terms.insert(1, "the")
    if n % 5 == 0:
        terms = [f'"{terms[0]} {terms[1]}"', *terms[2:]]
    return " ".join(terms)


def timed(search: Callable[[str], list[Any]], queries: list[str]) -> tuple[float, float, int]:
    """(median, 95th percentile, queries with hits)."""
    times, found = [], 0
    for q in queries:
        t0 = time.perf_counter()
        hits = search(q)
        times.append(time.perf_counter() - t0)
        found += bool(hits)
    times.sort()
    return times[len(times) // 2], times[int(len(times) * 0.95)], found


def podium_index(folder: Path, env: dict[str, str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run([PODIUM, "index", str(folder), "--name", "bench"], env=env,
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - t0, proc.stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=10_000)
    args = parser.parse_args()
    rng = random.Random(11)
    with tempfile.TemporaryDirectory() as tmp:
        home, docs = Path(tmp, "home"), Path(tmp, "docs")
        home.mkdir()
        docs.mkdir()
        make_docs(docs, args.docs, rng)
        env = {**os.environ, "PODIUM_HOME": str(home)}
        env.pop("PODIUM_DB", None)

        first, said = podium_index(docs, env)
        again, _ = podium_index(docs, env)
        for path in sorted(docs.rglob("*.txt"))[:100]:
            path.write_text(" ".join(rng.choices(WORDS, WEIGHTS, k=60)) + "\n")
        changed, said_changed = podium_index(docs, env)

        os.environ["PODIUM_HOME"] = str(home)
        from podium.core.retrieval.index import search
        from podium.core.store import Store

        store = Store.open()
        typical = [typical_query(n, rng) for n in range(300)]
        worst = [" ".join(rng.sample(WORDS[:30], 3)) for _ in range(100)]
        for q in typical[:20]:  # warm the page cache
            search(store, "bench", q, 5)
        median, p95, found = timed(lambda q: search(store, "bench", q, 5), typical)
        worst_median, worst_p95, _ = timed(lambda q: search(store, "bench", q, 5), worst)
        size_mb = Path(home, "podium.db").stat().st_size / 1e6

    print(f"retrieval: {args.docs:,} documents ({size_mb:.1f} MB database)")
    print(f"  {said}")
    print(f"  {said_changed}")
    print(f"{'case':44} {'time':>10}  aim")
    print(f"{'podium index, new folder (process)':44} {first:>9.2f}s  < 10 s "
          f"{mark(first < 10)}")
    print(f"{'podium index, nothing changed':44} {again:>9.2f}s")
    print(f"{'podium index, 100 files changed':44} {changed:>9.2f}s")
    print(f"{'search top-5, typical, median of 300':44} {median * 1000:>8.2f}ms  < 5 ms "
          f"{mark(median < 0.005)}")
    print(f"{'search top-5, typical, 95th percentile':44} {p95 * 1000:>8.2f}ms")
    print(f"{'search top-5, 3 most common words, median':44} {worst_median * 1000:>8.2f}ms")
    print(f"{'search top-5, 3 most common words, p95':44} {worst_p95 * 1000:>8.2f}ms")
    print(f"  typical queries with hits: {found}/{len(typical)}")


if __name__ == "__main__":
    main()
