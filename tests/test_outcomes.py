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
        listed = podium("models").stdout
    assert "shipped fit, 1 outcome seen" in listed, listed
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


def test_the_store_keeps_the_newest_outcome_per_ask_and_the_newest_few(
        tmp_path: Path) -> None:
    store = Store.open(tmp_path / "p.db")
    for i in range(6):
        store.add_route_outcome("fp", "m", f"ask {i % 4}", i % 2 == 0, "verify", "r", keep=5)
    store.add_route_outcome("other", "m", "ask 0", True, "check", "r", keep=5)
    # Six rows for fp, five kept (the first dropped); asks 0 and 1 asked twice: the later
    # answer counts; newest first when limited.
    assert store.route_outcomes("fp", 10) == [
        ("ask 2", True, "verify"), ("ask 3", False, "verify"), ("ask 0", True, "verify"),
        ("ask 1", False, "verify")]
    assert store.route_outcomes("fp", 2) == [("ask 0", True, "verify"),
                                             ("ask 1", False, "verify")]
    assert store.route_outcomes("other", 10) == [("ask 0", True, "check")]


def test_a_store_that_fails_costs_the_outcome_not_the_step() -> None:
    from podium.core.errors import StoreError

    eng, _ = engine("41")

    def locked(example: Example, run_id: str) -> None:
        raise StoreError("database is locked", "try again")

    eng.hub.on_outcome = locked
    result = asyncio.run(eng.run(loads(RECIPE), {}))
    assert result.status == "succeeded"
    assert [e.seen for e in eng.hub.fit.examples if e.seen] == ["verify"]  # still learnt


def test_a_cut_off_answer_or_a_verify_that_cannot_run_teaches_nothing() -> None:
    recipe = (f'[steps.a]\nkind = "llm"\nroute = "cascade"\nprompt = "{ASK}"\n'
              'schema = {{ type = "object" }}\nverify = "answer.total > 3"\n')
    eng, kept = engine('{"total": "many"}')  # a string: verify cannot compare it
    asyncio.run(eng.run(loads(recipe.replace("{{", "{").replace("}}", "}")), {}))
    assert kept == []
    from podium.core.models.caller import ModelCaller
    from podium.core.recipe.schema import ModelOptions

    eng, kept = engine("")
    caller = ModelCaller(eng.hub, "run")

    class CutOff(ScriptedProvider):
        async def stream(self, request: ModelRequest) -> Any:
            from podium.core.models.provider import Chunk, Usage

            yield Chunk(text="")
            yield Chunk(usage=Usage(3, 64), finish_reason="length")

    eng.hub.providers = {**eng.hub.providers, "small": CutOff("small")}
    asyncio.run(caller.generate(ModelOptions(route="cascade"), [Message("user", ASK)]))
    assert kept == []  # empty and cut off: escalated, but max_tokens may be to blame


def test_one_template_asked_many_times_keeps_being_found() -> None:
    """A batch step sends one template hundreds of times: the fit keeps `SAME_ASK_KEPT`
    of nearly the same ask, so they are never so many that the lookup skips their
    words as common, and a new ask of the template still finds them."""
    from podium.core.models.router_fit import SAME_ASK_KEPT

    hub = engine("41")[0].hub
    names = ["Ada", "Ben", "Cleo", "Dev", "Eli", "Fay", "Gus", "Hal", "Ivy", "Jo"]
    for i in range(300):
        hub.learn(f"Write a polite reply to {names[i % 10]} about invoice {1000 + i}.",
                  False, "verify", "run")
    assert hub.fit is not None
    held = [e for e in hub.fit.examples if e.seen]
    assert SAME_ASK_KEPT <= len(held) < 60
    near = hub.fit.index().nearest("Write a polite reply to Kim about invoice 5555.")
    assert sum(n.example.seen is not None for n in near) >= 10


GATED = """
[inputs.topic]
type = "string"
[steps.draft]
kind = "llm"
prompt = "Write a haiku about {{ inputs.topic }}."
[steps.check]
kind = "review"
of = "draft"
"""


@pytest.mark.parametrize("action, details, right", [
    ("approve", {}, True), ("edit", {"value": "A better haiku."}, False),
    ("reject", {"feedback": "Not a haiku."}, False)])
def test_a_persons_decision_on_a_local_answer_teaches_the_router(
        action: str, details: dict[str, Any], right: bool) -> None:
    eng, kept = engine("Waves on the shore")
    result = asyncio.run(eng.run(loads(GATED), {"topic": "the sea"}))
    [item] = eng.store.reviews(run_id=result.run_id)
    asyncio.run(eng.decide(item.id, action, proceed=False, **details))
    # The ask as the step rendered it, learnt at once and kept.
    assert [(e.prompt, e.local_right, e.seen) for e, _ in kept] == [
        ("Write a haiku about the sea.", right, "review")]
    assert "(seen here: review)" in score(eng.hub, "Write a haiku about the sea.")[1][-1]


def test_a_decision_on_a_remote_answer_teaches_nothing() -> None:
    eng, kept = engine("unused")
    recipe = GATED.replace('kind = "llm"', 'kind = "llm"\nroute = "remote"')
    result = asyncio.run(eng.run(loads(recipe), {"topic": "the sea"}))
    [item] = eng.store.reviews(run_id=result.run_id)
    asyncio.run(eng.decide(item.id, "reject", proceed=False, feedback="no"))
    assert kept == []
