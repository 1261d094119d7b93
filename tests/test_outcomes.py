"""The router learns from what runs see: a cascade's local answer that passes or fails
the recipe's `verify`, or fails a check a program makes, becomes an example of a
similar ask at once, and is kept for later processes (tied to the model file)."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from podium.core.config import ModelSpec, Settings
from podium.core.models.calibrate import active_fit
from podium.core.models.hub import ModelHub
from podium.core.models.neighbours import Example
from podium.core.models.provider import Message, ModelRequest
from podium.core.models.router_fit import shipped_fit
from podium.core.models.routing import complexity
from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.core.store import Store
from tests.conftest import PODIUM, ROOT, ScriptedProvider, cli_env
from tests.servers import Behaviour, ScriptServer

ASK = "Give the order total for basket 7 as a number."
RECIPE = f"""
[steps.total]
kind = "llm"
route = "cascade"
prompt = "{ASK}"
verify = "answer | int == 42"
[steps.hello]
kind = "llm"
route = "cascade"
prompt = "Say hello to Ada."
"""


class Remote(ScriptedProvider):
    tier = "remote"


def engine(local_answer: str) -> tuple[Engine, list[tuple[Example, str]]]:
    local = ScriptedProvider("small", answer=lambda req, n: local_answer if "total" in
                             req.messages[-1].content else "Hello, Ada!")
    remote = Remote("big", answer="42")
    hub = ModelHub({"small": local, "big": remote},
                   {"small": ModelSpec(provider="llamacpp", path="x"),
                    "big": ModelSpec(provider="openai", base_url="http://x")}, "small")
    kept: list[tuple[Example, str]] = []
    hub.on_outcome = lambda example, run_id: kept.append((example, run_id))
    return Engine(Store.open(), hub), kept


def score(hub: ModelHub, ask: str) -> tuple[float, list[str]]:
    return complexity(ModelRequest((Message("user", ask),)), hub.fit)


def test_a_failed_verify_teaches_the_router_at_once() -> None:
    eng, kept = engine("41")
    before, _ = score(eng.hub, ASK)
    result = asyncio.run(eng.run(loads(RECIPE), {}))
    steps = {s.step_id: s for s in eng.store.get_steps(result.run_id)}
    assert steps["total"].tier == "remote" and steps["hello"].tier == "local"
    # Only the step with `verify` says anything: a passing confidence is a guess.
    assert [(e.prompt, e.local_right, e.seen, r) for e, r in kept] == [
        (ASK, False, "verify", result.run_id)]
    after, said = score(eng.hub, ASK)
    assert after > before and "(seen here: verify)" in said[-1]
    assert eng.hub.fit is not shipped_fit() and all(e.seen is None
                                                    for e in shipped_fit().examples)
    assert "with 1 outcome seen here" in eng.hub.fit.describe()


def test_a_passed_verify_and_a_failed_check_are_outcomes_too() -> None:
    eng, kept = engine("42")
    asyncio.run(eng.run(loads(RECIPE), {}))
    assert [(e.local_right, e.seen) for e, _ in kept] == [(True, "verify")]
    eng, kept = engine("")  # empty: a program's check fails before verify runs
    asyncio.run(eng.run(loads(RECIPE), {}))
    assert [(e.local_right, e.seen) for e, _ in kept] == [(False, "check")]


def test_kept_outcomes_join_the_fit_of_that_model_file_only(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF" + b"\0" * 4096)
    settings = Settings.model_validate({"default_model": "m", "models": {
        "m": {"provider": "llamacpp", "path": str(model)}}})
    store = Store.open(tmp_path / "p.db")
    from podium.core.models.calibrate import outcome_keeper

    keep = outcome_keeper(store, settings)
    assert keep is not None
    keep(Example(ASK, False, seen="verify"), "run-1")
    keep(Example(ASK, True, seen="verify"), "run-2")  # asked again: the latest counts
    fit = active_fit(store, settings)
    seen = [e for e in fit.examples if e.seen]
    assert [(e.prompt, e.local_right) for e in seen] == [(ASK, True)]
    model.write_bytes(b"GGUF" + b"\1" * 4096)  # another model now: its outcomes are not
    assert not [e for e in active_fit(store, settings).examples if e.seen]


@pytest.mark.model
def test_outcomes_of_a_run_reach_podium_route(podium_home: Path, tmp_path: Path,
                                              model_path: Path) -> None:
    """End to end: the embedded model answers, the recipe's `verify` fails it, the
    loopback remote answers instead; a later `podium route` of the same ask names
    the outcome, and the database keeps it."""
    recipe = tmp_path / "r.toml"
    recipe.write_text('[steps.a]\nkind = "llm"\nroute = "cascade"\nmax_tokens = 8\n'
                      f'prompt = "{ASK}"\nverify = "answer | length > 1000"\n')
    with ScriptServer([Behaviour(text="42")]) as server:
        (podium_home / "config.toml").write_text(
            f'[models.remote]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            'key_env = "PODIUM_TEST_KEY"\n')

        def podium(*args: str) -> Any:
            return subprocess.run([PODIUM, *args], capture_output=True, text=True,
                                  env={**cli_env(podium_home), "PODIUM_TEST_KEY": "sk-test"},
                                  cwd=ROOT, timeout=120)

        before = json.loads(podium("route", ASK, "--json").stdout)
        ran = podium("run", str(recipe), "--json", "-q")
        assert ran.returncode == 0, ran.stderr
        after = json.loads(podium("route", ASK, "--json").stdout)
    assert [s["tier"] for s in json.loads(ran.stdout)["steps"]] == ["remote"], ran.stdout
    assert after["score"] > before["score"]
    assert "(seen here: verify)" in " ".join(after["reasons"])
    assert "with 1 outcome seen here" in " ".join(after["reasons"])
    db = sqlite3.connect(podium_home / "podium.db")
    assert db.execute("SELECT prompt, right, source FROM route_outcomes").fetchall() == [
        (ASK, 0, "verify")]


def test_a_fit_holds_at_most_max_seen_outcomes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A long batch cannot grow the index without bound: past `MAX_SEEN` outcomes the
    fit stops taking them (the store keeps them; a new process loads the newest)."""
    from podium.core.models import router_fit

    monkeypatch.setattr(router_fit, "MAX_SEEN", 3)
    fit = shipped_fit().with_examples([])
    fit.index()
    for i in range(5):
        fit.learn(Example(f"ask number {i}", False, seen="verify"))
    assert [e.prompt for e in fit.examples if e.seen] == [f"ask number {i}" for i in range(3)]
    assert len(fit.index()) == len(shipped_fit().examples) + 3
