"""The fault suite: each way a remote server can misbehave, against a real server on
127.0.0.1, through the engine. For every fault, a recipe runs three independent model
steps at once: one routed to the faulty server (it must end on the remote model or
fall back to the local one), one pinned to it (it must succeed or fail, saying why),
and one pinned to a healthy server on the same shared HTTP client (it must succeed).
Every run ends in bounded time and prints nothing, least of all a traceback.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import tracemalloc
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from podium.core.config import ModelSpec, Settings
from podium.core.events import StepFinished
from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.providers.registry import build_hub
from tests.conftest import PODIUM, ROOT, cli_env
from tests.servers import Behaviour, ScriptServer

SECRET = "sk-fault-suite-never-shown-9731"
TIMEOUT = 1.0  # the faulty model's whole-call timeout, seconds
# What the embedded model may take to answer a fallback on a busy machine (two cores
# shared with other work): the fault's own cost is bounded by `Fault.within`.
LOCAL_SLACK = 8.0
NOT_PRINTED = ("Traceback", "Task exception was never retrieved", "Exception ignored",
               "internal error", SECRET[:8])


@dataclass(frozen=True)
class Fault:
    """A server's misbehaviour and what Podium must make of it."""

    name: str
    script: list[Behaviour]
    recovers: bool  # the remote answers in the end: both steps succeed on it
    says: str  # in the pinned step's error, when it fails
    within: float  # seconds the pinned step may take, all its attempts, at most


FAULTS = [
    Fault("429, short Retry-After",
          [Behaviour(kind="status", status=429, headers={"Retry-After": "0.3"}), Behaviour()],
          True, "", 3.0),
    Fault("429, Retry-After 1 h",
          [Behaviour(kind="status", status=429, headers={"Retry-After": "3600"})],
          False, "asked to wait 1 h", 2.0),
    Fault("500", [Behaviour(kind="status", status=500)], False, "server error (HTTP 500)", 4.0),
    # One model timeout (1 s), not one per step attempt: the call's own retries are
    # inside it, and a step does not try again a call that used it all (CallTimedOut).
    Fault("hang before headers", [Behaviour(kind="hang")], False,
          "no complete answer in 1 s", 1.8),
    Fault("hang after headers", [Behaviour(kind="hang_after_headers")], False,
          "no complete answer in 1 s", 1.8),
    Fault("slow drip", [Behaviour(kind="drip", delay=0.2)], False,
          "no complete answer in 1 s", 1.8),
    Fault("cut stream", [Behaviour(kind="cut")], False, "", 4.0),
    Fault("malformed events", [Behaviour(kind="malformed")], False, "malformed event", 4.0),
    Fault("HTML body", [Behaviour(kind="html")], False, "the server answered HTML", 4.0),
    Fault("huge body (50 MB)", [Behaviour(kind="huge")], False, "passed 1 MB", 5.0),
]

RECIPE = """
[steps.routed]
kind = "llm"
route = "remote"
prompt = "Say hi."
max_tokens = 4

[steps.pinned]
kind = "llm"
model = "flaky"
prompt = "hi"
retries = 1
backoff = 0.1

[steps.healthy]
kind = "llm"
model = "good"
prompt = "hi"

[steps.after]
kind = "template"
template = "{{ steps.healthy }}"
"""


def settings(flaky_url: str, good_url: str) -> Settings:
    """`flaky` first: `route = "remote"` takes the first remote model."""
    spec = {"provider": "openai", "model": "m", "key_env": "PODIUM_TEST_KEY"}
    return Settings(models={"flaky": ModelSpec(base_url=flaky_url + "/v1", timeout=TIMEOUT,
                                               **spec),  # type: ignore[arg-type]
                            "good": ModelSpec(base_url=good_url + "/v1",
                                              **spec)})  # type: ignore[arg-type]


@dataclass
class Outcome:
    """What a run against a fault came to."""

    steps: dict[str, Any]  # step id -> its record
    ended: dict[str, float]  # step id -> seconds from the run's start to its end
    seconds: float  # the whole run
    requests: int  # that reached the faulty server
    peak: int  # bytes of Python memory at most (the huge body only)


def run_fault(fault: Fault) -> Outcome:
    """Run the recipe against `fault` (tracing memory for the huge body only: it
    slows everything else)."""
    huge = fault.name.startswith("huge")
    ended: dict[str, float] = {}

    def on_event(event: Any) -> None:
        if isinstance(event, StepFinished):
            ended[event.step_id] = time.perf_counter() - started

    with ScriptServer(fault.script) as flaky, ScriptServer([Behaviour(text="fine")]) as good:
        engine = Engine(Store.open(), build_hub(settings(flaky.url, good.url)),
                        on_event=on_event)

        async def main() -> Any:
            try:
                return await engine.run(loads(RECIPE), {})
            finally:
                await engine.hub.aclose()

        if huge:
            tracemalloc.start()
        started = time.perf_counter()
        try:
            result = asyncio.run(main())
            elapsed = time.perf_counter() - started
            peak = tracemalloc.get_traced_memory()[1] if huge else 0
        finally:
            if huge:
                tracemalloc.stop()
        seen = len(flaky.requests)
    steps = {s.step_id: s for s in engine.store.get_steps(result.run_id)}
    engine.store.close()
    return Outcome(steps, ended, elapsed, seen, peak)


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_KEY", SECRET)


@pytest.fixture(autouse=True)
def own_turn(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A local-model turn of our own (its lock file lives in the temporary folder):
    other Podium processes on this machine, such as other test runs, generating
    meanwhile must not add their time to a fallback's."""
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="module", autouse=True)
def warm(model_path: Path) -> None:
    """Load the embedded model once, so no fault's time bound pays for it."""
    from podium.core.models.provider import Message, ModelRequest, collect
    from podium.providers.llamacpp import LlamaCppProvider

    request = ModelRequest(messages=(Message("user", "hi"),), max_tokens=1)
    asyncio.run(collect(LlamaCppProvider("smollm2", str(model_path)), request))


@pytest.mark.parametrize("fault", FAULTS, ids=[f.name for f in FAULTS])
def test_a_fault_stays_in_its_step_and_ends_in_bounded_time(
        fault: Fault, capfd: pytest.CaptureFixture[str]) -> None:
    outcome = run_fault(fault)
    steps, ended = outcome.steps, outcome.ended
    routed, pinned = steps["routed"], steps["pinned"]
    # Contained: the healthy step, on the same HTTP client, and what needs it.
    assert steps["healthy"].status == "succeeded" and steps["healthy"].output == "fine"
    assert steps["after"].status == "succeeded"
    assert routed.status == "succeeded", routed.error
    if fault.recovers:
        assert routed.tier == pinned.tier == "remote" and pinned.status == "succeeded"
        assert outcome.requests == 3  # the 429, then an answer for each step
    else:
        assert routed.tier == "local"  # a routed call ends on this machine
        assert any(r.startswith("fell back from flaky") for r in routed.route["reasons"])
        assert pinned.status == "failed" and fault.says in (pinned.error or "")
        assert pinned.hint and len(pinned.error or "") < 300
    # Bounded: the fault costs its step at most `within`; the others nothing.
    assert ended["pinned"] < fault.within, ended
    assert ended["healthy"] < 1.0, ended
    assert ended["routed"] < fault.within + LOCAL_SLACK, ended
    if outcome.peak:
        assert outcome.peak < 32 << 20, f"{outcome.peak >> 20} MB"  # not 50 MB, nor 150
    out, err = capfd.readouterr()
    for text in NOT_PRINTED:
        assert text not in out + err, (text, out + err)
    for step in steps.values():
        assert "internal error" not in (step.error or "")


def test_every_fault_at_once_from_the_command_line(podium_home: Path,
                                                   tmp_path: Path) -> None:
    """All the faults in one recipe, one step each beside a healthy one, through
    `podium run`: the healthy step succeeds, the run ends in bounded time, and what is
    printed (and `show --json`) has a message for each fault and no traceback."""
    names = [f"f{i}" for i in range(len(FAULTS))]
    servers = [ScriptServer(f.script) for f in FAULTS]
    good = ScriptServer([Behaviour(text="fine")])
    config = ['[models.good]\nprovider = "openai"\nbase_url = "{}/v1"\n'
              'key_env = "PODIUM_TEST_KEY"\n']
    recipe = ['[steps.healthy]\nkind = "llm"\nmodel = "good"\nprompt = "hi"\n']
    for name in names:
        config.append(f'[models.{name}]\nprovider = "openai"\nbase_url = "{{}}/v1"\n'
                      f'key_env = "PODIUM_TEST_KEY"\ntimeout = {TIMEOUT}\n')
        recipe.append(f'[steps.{name}]\nkind = "llm"\nmodel = "{name}"\nprompt = "hi"\n'
                      'retries = 0\n')
    (tmp_path / "faults.toml").write_text("\n".join(recipe))
    for server in [good, *servers]:
        server.__enter__()
    try:
        urls = [good.url] + [s.url for s in servers]
        (podium_home / "config.toml").write_text(
            "\n".join(c.format(u) for c, u in zip(config, urls, strict=True)))
        env = {**cli_env(podium_home), "PODIUM_TEST_KEY": SECRET, "TMPDIR": str(tmp_path)}
        started = time.perf_counter()
        ran = subprocess.run([PODIUM, "run", str(tmp_path / "faults.toml")],
                             capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        elapsed = time.perf_counter() - started
        shown = subprocess.run([PODIUM, "show", "last", "--json"], capture_output=True,
                               text=True, env=env, cwd=ROOT, timeout=60)
    finally:
        for server in [good, *servers]:
            server.__exit__(None, None, None)
    assert ran.returncode == 1 and elapsed < 10, (elapsed, ran.stderr)
    steps = {s["step_id"]: s for s in json.loads(shown.stdout)["steps"]}
    assert steps["healthy"]["status"] == "succeeded" and steps["healthy"]["output"] == "fine"
    for name, fault in zip(names, FAULTS, strict=True):
        step = steps[name]
        assert step["status"] == ("succeeded" if fault.recovers else "failed"), step
        assert fault.says in (step["error"] or ""), step
    for text in NOT_PRINTED:
        assert text not in ran.stdout + ran.stderr + shown.stdout + shown.stderr, text

