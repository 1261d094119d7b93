"""Batch rows on a Ray cluster: the `ray` executor of `podium batch`.

It lives here, not in core, because it imports Ray (core imports no third-party
runtime of this kind, as it imports no llama_cpp or httpx); like a model provider it
implements a port core defines (`core.batch.executor.Executor`).

Each worker is an actor with its own CPUs: it loads its local models once, runs
Podium's engine on the rows it is handed against a scratch SQLite file of its own,
and returns each finished run whole (`Store.export_run`). The driver, the one
process that writes the real database, lands each run with its row in one
transaction (`Store.land_run`), so a row lands once however often it was made. A
worker that dies has its rows in flight handed to the others (and a new worker
started in its place). Request rates (`rpm`) hold cluster-wide: every worker paces
its remote calls through one rate-keeping actor. Secrets never travel: workers read
API keys from their own environment or keys file.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from podium.core.batch.executor import BatchSpec, Landed, RowJob, RowOutcome, make_run
from podium.core.config import EMBEDDED_MODEL, Settings, embedded_spec, load_settings
from podium.core.errors import ConfigError, PodiumError
from podium.core.models.hub import RateLimiter
from podium.core.models.neighbours import Example

INSTALL_HINT = "pip install 'podium[ray]'"
CONNECT_TIMEOUT_S = 3.0


def require_ray() -> Any:
    """The `ray` module, or a `ConfigError` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray, which is not installed",
                          f"install it: {INSTALL_HINT}") from None
    return ray


def check_address(address: str, timeout: float = CONNECT_TIMEOUT_S) -> None:
    """Fail fast, with a clear message, when nothing answers at `address` (Ray itself
    would retry for a minute or more before it gives up)."""
    if address == "auto":
        return
    where = address.split("://", 1)[-1]
    host, _, port = where.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--address {address}: expected HOST:PORT (or ray://HOST:PORT)",
                          "e.g. --address 10.0.0.5:6379, the head node's GCS port")
    try:
        socket.create_connection((host, int(port)), timeout=timeout).close()
    except OSError as e:
        raise ConfigError(f"cannot reach a Ray cluster at {address}: "
                          f"{e.strerror or type(e).__name__}",
                          "is the head node up (`ray start --head`) and the port open? "
                          "Or leave out --address to start one on this machine") from None


class RateBook:
    """One place that spaces the calls of every worker to each model (an actor)."""

    def __init__(self) -> None:
        self.next: dict[str, float] = {}

    def turn(self, model: str, interval: float) -> float:
        """Seconds the caller waits before its call to `model` may start."""
        now = time.monotonic()
        start = max(now, self.next.get(model, 0.0))
        self.next[model] = start + interval
        return start - now


class ClusterLimiter(RateLimiter):
    """A model's `rpm` shared by every worker: turns come from the `RateBook`."""

    def __init__(self, book: Any, model: str, rpm: float) -> None:
        super().__init__(rpm)
        self.book = book
        self.model = model

    async def acquire(self) -> None:
        """Wait for this call's turn, cluster-wide."""
        wait = await self.book.turn.remote(self.model, self.interval)
        if wait > 0:
            await asyncio.sleep(wait)


def worker_settings(settings: Settings, cpus: int) -> Settings:
    """The driver's settings with each local model given this worker's CPUs as threads
    (unless set), so workers beside each other do not fight over cores."""
    models = dict(settings.models)
    if EMBEDDED_MODEL not in models:
        models[EMBEDDED_MODEL] = embedded_spec()
    for name, spec in models.items():
        if spec.provider == "llamacpp" and spec.threads is None:
            models[name] = spec.model_copy(update={"threads": cpus})
    return settings.model_copy(update={"models": models})


@contextmanager
def _stderr_muted() -> Iterator[None]:
    """Send file descriptor 2 (where Ray's C++ core logs) to /dev/null for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class RowWorker:
    """A Ray actor: an engine with its models loaded once, rows run on a scratch store."""

    def __init__(self, settings_json: str, cpus: int, book: Any, fit: Any,
                 spent_today: float) -> None:
        from podium.core.models.hub import Budget
        from podium.core.run.engine import Engine
        from podium.core.store import Store
        from podium.providers import llamacpp
        from podium.providers.registry import build_hub

        llamacpp.MACHINE_TURN = False  # this actor's CPUs are its own
        self.folder = tempfile.mkdtemp(prefix="podium-ray-")
        self.store = Store(Path(self.folder) / "scratch.db", synchronous="OFF")
        settings = worker_settings(Settings.model_validate_json(settings_json), cpus)
        # As the driver's engine (tui.factory.make_engine): its router fit, its caps.
        hub = build_hub(settings)
        hub.fit = fit
        hub.budget = Budget.from_settings(settings, spent_today)
        # Outcomes the router learns here go back with their row's run, for the driver
        # to keep (`core.calibrate.outcome_keeper`): a worker's store is scratch.
        self.outcomes: list[tuple[str, str, bool, str]] = []  # (run, ask, right, source)
        hub.on_outcome = lambda example, run_id: self.outcomes.append(
            (run_id, example.prompt, example.local_right, example.seen or "run"))
        self.engine = Engine(self.store, hub, max_parallel=settings.max_parallel)
        for name, spec in settings.catalog().items():
            if spec.rpm is not None:
                self.engine.hub.pace(name, ClusterLimiter(book, name, spec.rpm))
        self.recipes: dict[str, Any] = {}

    def pid(self) -> int:
        """This worker's process id (a test kills it)."""
        return os.getpid()

    async def run_row(self, recipe_hash: str, source: str, path: str, index: int,
                      inputs: dict[str, Any]) -> dict[str, Any]:
        """Run one row; return its run, whole, or why it could not become one."""
        from podium.core.recipe.inputs import resolve_inputs
        from podium.core.recipe.load import loads
        from podium.core.store import new_run_id

        recipe = self.recipes.get(recipe_hash)
        if recipe is None:
            recipe = self.recipes[recipe_hash] = loads(source, path, checked=True)
        try:
            values = resolve_inputs(recipe, inputs)
        except PodiumError as e:
            return {"index": index, "status": "failed", "error": e.message, "run": None}
        run_id = new_run_id()
        try:
            result = await make_run(self.engine, recipe, values, run_id)
            status, error = result.status, result.error
        except PodiumError as e:  # stored with the run, which still comes back
            status, error = "failed", e.message
        learnt = [o[1:] for o in self.outcomes if o[0] == run_id]
        self.outcomes = [o for o in self.outcomes if o[0] != run_id]
        return {"index": index, "status": status, "error": error,
                "run": self.store.export_run(run_id), "outcomes": learnt}


class RayExecutor:
    """Rows over Ray workers; results land in the driver's store as they arrive."""

    name = "ray"

    def __init__(self, *, address: str | None = None, workers: int | None = None,
                 settings: Settings | None = None) -> None:
        self.ray = require_ray()
        if address:
            check_address(address)
        self.address = address
        self.workers = workers
        self.settings = settings
        self.pids: list[int] = []  # of the workers started, in order
        self.restarts = 0
        self._started_ray = False

    def _init(self) -> None:
        ray = self.ray
        if ray.is_initialized():
            return
        try:
            if self.address:
                # Ray retries a wrong address for ~20 s, logging each try from C++ to
                # stderr; five tries, unheard, then our own message.
                os.environ.setdefault("RAY_gcs_server_port_wait_time_s", "5")
                with _stderr_muted():
                    ray.init(address=self.address, log_to_driver=False,
                             configure_logging=False)
            else:
                ray.init(num_cpus=self.workers or os.cpu_count() or 1,
                         include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        except (ConnectionError, RuntimeError, TimeoutError) as e:
            raise ConfigError(f"cannot start or join a Ray cluster: {e}",
                              "check --address, or leave it out for one on this machine") \
                from None
        self._started_ray = True

    def close(self) -> None:
        """Stop the cluster this executor started (one it joined stays up)."""
        if self._started_ray and self.ray.is_initialized():
            self.ray.shutdown()
            self._started_ray = False

    def _spawn(self, *args: Any) -> Any:
        actor_class = self.ray.remote(num_cpus=1, max_restarts=0)(RowWorker)
        return actor_class.remote(args[0], 1, *args[1:])

    async def execute(self, spec: BatchSpec, jobs: list[RowJob], landed: Landed) -> None:
        """Hand rows to workers (`spec.concurrency` in flight on each), land each result
        as it comes, and give a dead worker's rows to the others."""
        ray = self.ray
        self._init()
        from ray.exceptions import RayActorError

        from podium.core.models.calibrate import active_fit, outcome_keeper

        settings_json = (self.settings or load_settings()).model_dump_json()
        keep = outcome_keeper(spec.store, self.settings or load_settings())
        midnight = time.mktime(time.localtime()[:3] + (0, 0, 0, 0, 0, -1))
        made = (settings_json, ray.remote(num_cpus=0)(RateBook).remote(),
                active_fit(spec.store, self.settings or load_settings()),
                spec.store.cost_since(midnight))
        count = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        actors = [self._spawn(*made) for _ in range(count)]
        self.pids = list(await asyncio.gather(*(a.pid.remote() for a in actors)))
        recipe = spec.recipe
        queue = deque(jobs)
        busy: dict[int, int] = {id(a): 0 for a in actors}
        flying: dict[asyncio.Future[Any], tuple[RowJob, Any, float]] = {}
        try:
            while queue or flying:
                for actor in actors:
                    while queue and busy[id(actor)] < spec.concurrency:
                        job = queue.popleft()
                        ref = actor.run_row.remote(recipe.hash, recipe.source, recipe.path,
                                                   job.index, job.inputs)
                        flying[asyncio.wrap_future(ref.future())] = (job, actor,
                                                                     time.monotonic())
                        busy[id(actor)] += 1
                if not flying:
                    raise PodiumError("every Ray worker died",
                                      f"continue with: podium batch resume {spec.batch_id}")
                done, _ = await asyncio.wait(flying, return_when=asyncio.FIRST_COMPLETED)
                for fut in done:
                    job, actor, began = flying.pop(fut)
                    busy[id(actor)] = busy.get(id(actor), 1) - 1
                    try:
                        result = fut.result()
                    except RayActorError:
                        queue.appendleft(job)  # made elsewhere; it lands only once
                        if actor in actors:
                            actors.remove(actor)
                            if self.restarts < count:  # keep the pool its size
                                self.restarts += 1
                                fresh = self._spawn(*made)
                                actors.append(fresh)
                                busy[id(fresh)] = 0
                        continue
                    except Exception as e:  # noqa: BLE001  (a worker's bug: this row's)
                        message = f"worker error: {type(e).__name__}: {e}"[:2000]
                        spec.store.fail_row(spec.batch_id, job.index, message)
                        landed(RowOutcome(job.index, job.key, "failed", None, message))
                        continue
                    self._land(spec, job, result, time.monotonic() - began, landed, keep)
        finally:
            for fut in flying:
                fut.cancel()
            for actor in actors:
                ray.kill(actor)

    @staticmethod
    def _land(spec: BatchSpec, job: RowJob, result: dict[str, Any], seconds: float,
              landed: Landed, keep: Callable[[Example, str], None] | None = None) -> None:
        """Land a worker's result: its run (once), and what the router learnt of it."""
        if result["run"] is None:
            spec.store.fail_row(spec.batch_id, job.index, result["error"])
            landed(RowOutcome(job.index, job.key, "failed", None, result["error"], seconds))
        elif spec.store.land_run(spec.batch_id, job.index, result["run"]):
            run_id = result["run"]["run"]["id"]
            if keep is not None:
                for ask, right, source in result.get("outcomes", ()):
                    keep(Example(ask, right, seen=source), run_id)
            landed(RowOutcome(job.index, job.key, result["status"], run_id,
                              result["error"], seconds))
