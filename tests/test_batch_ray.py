"""The Ray executor on a local cluster the test starts (2 CPUs, one module-scoped
cluster): 200 rows on the embedded model with a worker killed mid-way land once
each, and the export has the same rows as the same batch run on this machine;
cluster-wide rate limits; clear messages without Ray or a reachable cluster."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.core.batch.data import read_dataset
from podium.core.batch.executor import LocalExecutor, RowOutcome
from podium.core.batch.runner import counts, create_batch, run_batch
from podium.core.config import Settings
from podium.core.errors import ConfigError
from podium.core.recipe.load import load
from podium.core.store import Store
from podium.tui.batch_export import export_records
from podium.tui.factory import make_engine

ray = pytest.importorskip("ray")

from podium.providers.ray_batch import (  # noqa: E402
    ClusterLimiter,
    RateBook,
    RayExecutor,
    check_address,
)

TINY = """
[inputs.word]
type = "string"

[steps.say]
kind = "llm"
prompt = "Repeat: {{ inputs.word }}"
system = "Echo."
max_tokens = 2
temperature = 0
seed = 1

[steps.tag]
kind = "template"
template = "{{ inputs.word }}={{ steps.say | length }}"
"""


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    started = time.monotonic()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    print(f"\nray cluster up in {time.monotonic() - started:.1f}s")
    yield
    ray.shutdown()


def run(store: Store, batch_id: str, recipe: Any, executor: Any,
        landed: Any) -> None:
    engine = make_engine(store, Settings())

    async def main() -> None:
        try:
            await run_batch(store, batch_id, recipe, executor or LocalExecutor(engine),
                            LocalExecutor(engine), landed, concurrency=4)
        finally:
            await engine.hub.aclose()

    asyncio.run(main())


@pytest.mark.model
def test_a_killed_worker_loses_no_row_and_lands_none_twice(cluster: None, tmp_path: Path,
                                                           model_path: Path) -> None:
    recipe_path = tmp_path / "tiny.toml"
    recipe_path.write_text(TINY)
    recipe = load(recipe_path)
    data = tmp_path / "words.jsonl"
    data.write_text("".join(f'{{"word": "w{i}"}}\n' for i in range(200)))
    dataset = read_dataset(data, recipe)

    store = Store.open(tmp_path / "ray.db")
    batch = create_batch(store, recipe, dataset, executor="ray", concurrency=4, mapping={})
    executor = RayExecutor(workers=2, settings=Settings())
    seen: Counter[int] = Counter()
    killed: list[int] = []

    def landed(outcome: RowOutcome) -> None:
        seen[outcome.index] += 1
        if sum(seen.values()) == 60 and not killed:  # mid-way: kill a worker outright
            killed.append(executor.pids[0])
            os.kill(executor.pids[0], signal.SIGKILL)

    started = time.monotonic()
    run(store, batch, recipe, executor, landed)
    print(f"ray batch of 200 rows with a worker killed: {time.monotonic() - started:.1f}s")
    assert killed and executor.restarts >= 1
    assert sorted(seen) == list(range(200)) and set(seen.values()) == {1}
    rows = store.batch_rows(batch)
    assert counts(rows)["succeeded"] == 200
    assert len({r.run_id for r in rows}) == 200
    assert store.conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 200
    # Each landed run is whole: both steps, each tried once, its attempts and events.
    per_run = store.conn.execute("SELECT COUNT(*), MIN(n), MAX(n) FROM (SELECT run_id, "
                                 "COUNT(*) AS n FROM attempts GROUP BY run_id)").fetchone()
    assert per_run == (200, 2, 2)
    ray_rows = export_records(store, batch)

    local_store = Store.open(tmp_path / "local.db")
    local = create_batch(local_store, recipe, dataset, executor="local", concurrency=4,
                         mapping={})
    started = time.monotonic()
    run(local_store, local, recipe, None, lambda o: None)
    print(f"the same 200 rows on this machine: {time.monotonic() - started:.1f}s")
    local_rows = export_records(local_store, local)

    def row_set(records: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        return [(r["index"], r["key"], r["status"], r["inputs"]["word"],
                 r["outputs"]["tag"].split("=")[0]) for r in records]

    assert row_set(ray_rows) == row_set(local_rows)
    store.close()
    local_store.close()


def test_rpm_holds_across_workers(cluster: None) -> None:
    book = ray.remote(num_cpus=0)(RateBook).remote()
    a, b = ClusterLimiter(book, "m", rpm=300), ClusterLimiter(book, "m", rpm=300)

    async def four() -> float:
        started = time.monotonic()
        await asyncio.gather(a.acquire(), b.acquire(), a.acquire(), b.acquire())
        return time.monotonic() - started

    took = asyncio.run(four())
    assert took >= 3 * 0.2 - 0.02  # 300 rpm: one start each 0.2 s, whichever limiter


def test_without_ray_the_option_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(ConfigError) as e:
        RayExecutor()
    assert "pip install 'podium[ray]'" in (e.value.hint or "")


def test_an_unreachable_address_fails_fast_and_clearly() -> None:
    started = time.monotonic()
    with pytest.raises(ConfigError) as e:
        check_address("127.0.0.1:1")
    assert "cannot reach a Ray cluster at 127.0.0.1:1" in e.value.message
    assert time.monotonic() - started < 5
    with pytest.raises(ConfigError):
        check_address("no-port-here")


@pytest.mark.model
def test_a_worker_sends_what_the_router_learnt_back_with_the_run(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker's store is scratch: the outcomes its router learns (here a cascade's
    `verify` failing the embedded model's answer) go back with their row's run, for
    the driver to keep. Run without Ray: the actor is a plain class."""
    from podium.core.models.router_fit import shipped_fit
    from podium.providers.ray_batch import RowWorker
    from tests.servers import Behaviour, ScriptServer

    recipe = ('[inputs.n]\ntype = "integer"\n[steps.a]\nkind = "llm"\nroute = "cascade"\n'
              'prompt = "Count to {{ inputs.n }}."\nmax_tokens = 8\n'
              'verify = "answer | length > 1000"\n')
    with ScriptServer([Behaviour(text="1 2 3")] * 2) as server:
        monkeypatch.setenv("PODIUM_TEST_KEY", "sk-test")
        settings = Settings.model_validate({"models": {"big": {
            "provider": "openai", "base_url": server.url + "/v1",
            "key_env": "PODIUM_TEST_KEY"}}})
        worker = RowWorker(settings.model_dump_json(), 1, None, shipped_fit(), 0.0)

        async def rows() -> list[dict[str, Any]]:
            return [await worker.run_row("h", recipe, "r.toml", i, {"n": n})
                    for i, n in enumerate((3, 4))]

        first, second = asyncio.run(rows())
    assert first["status"] == "succeeded" and len(server.requests) == 2  # both escalated
    assert first["outcomes"] == [("Count to 3.", False, "verify")]
    assert second["outcomes"] == [("Count to 4.", False, "verify")]  # each its own
    assert worker.outcomes == []
