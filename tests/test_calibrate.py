"""`podium calibrate`: the suite and its checks, the fit, and the command end to end on
the real embedded model (a copy of its file, so it can be changed), with a loopback
server as the remote model."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from podium.core.models.calibration_suite import CHECKS, SuiteItem, load_suite, mark, spread
from podium.core.models.router_fit import age_text, fingerprint, shipped_fit
from podium.core.models.router_fitting import fit_router
from podium.core.models.routing import Policy, decide
from tests.conftest import PODIUM, ROOT, cli_env
from tests.servers import Behaviour, ScriptServer


def item(check: str, answer: Any, prompt: str = "?") -> SuiteItem:
    return SuiteItem("x", "k", "k/f", "s", 1, prompt, answer, check)


@pytest.mark.parametrize("check, answer, right, wrong", [
    ("number", 42, "It is 42.", "It is 41."),
    ("json_keys", {"name": "Maria", "age": 34}, 'Sure: {"name": "maria", "age": "34"}',
     '{"name": "Maria"}'),
    ("json_list", ["red", "blue"], '["Red", "blue"]', '["blue", "red"]'),
    ("word_count", 3, "Deep blue waves.", "Deep blue waves crash."),
    ("line_count", 2, "apple\n\npear\n", "apple, pear"),
    ("upper_contains", "blue", "BLUE.", "Blue."),
    ("regex", r"^\s*OK:", "OK: a tomato", "Sure. OK: a tomato"),
    ("spam_label", "not spam", "Not spam.", "Spam."),
    ("first_of", ["Carl", "Anna", "Ben"], "Carl is the shortest, not Anna.", "Anna."),
    ("only", ["negative", "positive"], "Negative.", "Negative, or positive."),
    ("yesno", "no", "No, it did not.", "Yes."),
])
def test_each_check_tells_right_from_wrong(check: str, answer: Any, right: str,
                                           wrong: str) -> None:
    assert mark(item(check, answer), right) and not mark(item(check, answer), wrong)


def test_the_suite_is_broad_and_every_item_checkable() -> None:
    suite = load_suite()
    assert len(suite) >= 1000 and len({it.prompt for it in suite}) == len(suite)
    assert all(it.check in CHECKS for it in suite)
    kinds = {it.kind for it in suite}
    assert len(kinds) >= 30 and {"units", "date_math", "extract_json", "format_rules",
                                 "logic", "code_reading", "small_talk"} <= kinds
    breadth = [it for it in suite if it.source == "breadth"]
    for kind in {it.kind for it in breadth}:  # many phrasings each, not one template
        assert len({it.family for it in breadth if it.kind == kind}) >= 2, kind
    quick = spread(suite, 32)
    assert len(quick) == 32 and len({it.kind for it in quick}) >= 20


def test_a_fit_follows_its_marks() -> None:
    prompts = [it.prompt for it in spread(load_suite(), 60)]
    strong = fit_router([(p, True) for p in prompts], "strong")
    weak = fit_router([(p, False) for p in prompts], "weak")
    ask = (("user", "What is 17 * 23?"),)
    from podium.core.models.provider import Message, ModelRequest

    request = ModelRequest(tuple(Message(r, c) for r, c in ask))
    models = {"local": "local", "remote": "remote"}
    assert decide(request, Policy(), models, "local", fit=strong).tier == "local"
    assert decide(request, Policy(), models, "local", fit=weak).tier == "remote"


def test_the_cascade_is_fitted_to_the_models_own_token_probabilities() -> None:
    """Two models whose answers are as often right, but whose token probabilities mean
    different things: each fit's cascade trusts its own model's sure answers."""
    from podium.core.models.router_fit import RouterFit, cascade_of
    from podium.core.models.router_fitting import Answer, fit_cascade

    prompts = [it.prompt for it in spread(load_suite(), 80)]

    def answers(sure: float, unsure: float) -> list[Answer]:
        # Right answers are sure (min log prob `sure`), wrong ones unsure.
        return [Answer(p, "fine", "stop", {"min_logprob": sure if i % 2 else unsure},
                       bool(i % 2)) for i, p in enumerate(prompts)]

    scores = [0.5] * len(prompts)
    calm = fit_cascade(answers(-0.2, -1.0), scores)  # a model sure of most tokens
    shaky = fit_cascade(answers(-2.0, -6.0), scores)  # one unsure even when right
    assert calm is not None and shaky is not None
    assert calm.weights["min_logprob"] < 0 and shaky.weights["min_logprob"] < 0
    x = {"complexity": 0.0, "min_logprob": -2.0}  # the shaky model's right answers look so
    assert shaky.confidence(x) >= shaky.min_confidence > calm.confidence(x)
    # Too few answers to fit: none, and the shipped cascade serves; it round-trips.
    assert fit_cascade(answers(-0.2, -1.0)[:10], scores[:10]) is None
    fit = fit_router([(p, True) for p in prompts], "mine")
    assert cascade_of(fit) == shipped_fit().cascade
    fit.cascade = calm
    assert RouterFit.from_json(fit.to_json(), []).cascade == calm == cascade_of(fit)


def test_fingerprint_sees_a_changed_file_not_a_touched_one(tmp_path: Path) -> None:
    f = tmp_path / "m.gguf"
    f.write_bytes(b"x" * (3 << 20))
    before = fingerprint(f)
    f.touch()
    assert fingerprint(f) == before
    with f.open("r+b") as out:
        out.seek(-10, 2)
        out.write(b"y" * 10)
    assert fingerprint(f) != before
    assert age_text(30) == "30 s" and age_text(7200) == "2 h" and age_text(3 * 86400) == "3 days"


def test_shipped_fit_is_named_in_the_reasons() -> None:
    from podium.core.models.provider import Message, ModelRequest

    d = decide(ModelRequest((Message("user", "hi"),)), Policy(), {"s": "local"}, "s")
    assert any("router fit: shipped, for the embedded model" in r for r in d.reasons)
    assert shipped_fit().prompts >= 1000


def podium(home: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], capture_output=True, text=True, env=cli_env(home),
                          cwd=ROOT, timeout=timeout)


def test_bad_input_is_a_clear_message(podium_home: Path) -> None:
    wrong = podium(podium_home, "calibrate", "--model", "smolm2")
    assert wrong.returncode == 2 and "model 'smolm2' is not configured" in wrong.stderr
    assert "did you mean 'smollm2'" in wrong.stderr
    (podium_home / "config.toml").write_text(
        '[models.big]\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    remote = podium(podium_home, "calibrate", "--remote", "big")
    assert remote.returncode == 2 and "--remote big needs --budget USD" in remote.stderr
    local = podium(podium_home, "calibrate", "--model", "big")
    assert local.returncode == 2 and "'big' is a remote model" in local.stderr
    assert "Traceback" not in wrong.stderr + remote.stderr + local.stderr
    assert not (podium_home / "podium.db").exists()  # nothing asked, nothing stored


@pytest.mark.model
def test_calibrate_a_copy_resume_after_ctrl_c_and_see_it_go_stale(
        podium_home: Path, model_path: Path, tmp_path: Path) -> None:
    mine = tmp_path / "mine.gguf"
    shutil.copyfile(model_path, mine)
    (podium_home / "config.toml").write_text(
        f'default_model = "mine"\n[models.mine]\nprovider = "llamacpp"\npath = "{mine}"\n')
    before = json.loads(podium(podium_home, "route", "What is 17 * 23?", "--json").stdout)
    assert any("mine is not calibrated" in r for r in before["reasons"])

    # Ctrl-C half-way: exit 130, the answers so far kept.
    proc = subprocess.Popen([PODIUM, "calibrate", "--limit", "20", "--max-tokens", "8"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=cli_env(podium_home), cwd=ROOT)
    db = podium_home / "podium.db"
    deadline = time.monotonic() + 120
    stored = 0
    while time.monotonic() < deadline and stored < 4:
        time.sleep(0.2)
        try:
            stored = sqlite3.connect(db).execute(
                "SELECT COUNT(*) FROM calibration_answers").fetchone()[0]
        except sqlite3.Error:
            continue
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    kept = sqlite3.connect(db).execute("SELECT COUNT(*) FROM calibration_answers").fetchone()[0]
    assert proc.returncode == 130 and "answers are stored" in err, err
    assert 4 <= kept < 20

    done = podium(podium_home, "calibrate", "--limit", "20", "--max-tokens", "8", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["prompts"] == 20 and summary["resumed"] >= kept
    assert summary["asked"] == 20 - summary["resumed"]
    assert "no remote model asked" in summary["notes"][0]
    assert summary["cascade"] is None  # 20 answers: too few to read; the shipped one serves
    after = json.loads(podium(podium_home, "route", "What is 17 * 23?", "--json").stdout)
    assert any("router fit: mine, calibrated" in r and "(20 prompts)" in r
               for r in after["reasons"])
    assert "calibrated" in podium(podium_home, "models").stdout

    # The file changes: the fit is stale, the shipped one serves, and both say so.
    with mine.open("ab") as f:
        f.write(b"\0" * 64)
    stale = json.loads(podium(podium_home, "route", "What is 17 * 23?", "--json").stdout)
    assert any("calibration of mine" in r and "is stale" in r and "shipped fit" in r
               for r in stale["reasons"])
    assert "calibration stale: recalibrate" in podium(podium_home, "models").stdout


@pytest.mark.model
def test_remote_answers_stop_at_the_budget(podium_home: Path) -> None:
    with ScriptServer([Behaviour(text="I do not know.", usage=(100, 100))]) as server:
        # 200 tokens at $100 per million: $0.02 a call; a $0.05 budget buys three.
        (podium_home / "config.toml").write_text(
            f'[models.big]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            'price_in = 100.0\nprice_out = 100.0\n')
        out = podium(podium_home, "calibrate", "--limit", "12", "--max-tokens", "8",
                     "--remote", "big", "--budget", "0.05", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["remote_asked"] == 3 == len(server.requests)
    assert summary["spent_usd"] == pytest.approx(0.06)
    assert "budget was spent after 3 of" in summary["remote_note"]


def test_a_prompt_over_the_context_is_a_wrong_answer_not_an_abort(
        podium_home: Path, model_path: Path) -> None:
    """A model whose context cannot hold a suite prompt is calibrated all the same: that
    prompt is stored as wrong (the router should send it on), the others answered."""
    import asyncio

    from podium.core.config import Settings
    from podium.core.models.calibrate import calibrate, local_spec
    from podium.core.store import Store
    from podium.providers.llamacpp import LlamaCppProvider
    from podium.providers.registry import build_hub

    settings = Settings.model_validate({"default_model": "tiny", "models": {
        "tiny": {"provider": "llamacpp", "path": str(model_path)}}})
    _, spec = local_spec(settings, "tiny")
    store = Store.open(podium_home / "tiny.db")
    hub = build_hub(settings)
    hub.providers = {**hub.providers, "tiny": LlamaCppProvider("tiny", model_path, context=48)}

    async def run() -> Any:
        try:
            return await calibrate(store, hub, "tiny", spec, limit=6, max_tokens=2)
        finally:
            await hub.aclose()

    result = asyncio.run(run())
    answers = store.calibration_answers(fingerprint(model_path), "local")
    store.close()
    assert result.prompts == 6 and len(answers) == 6
    refused = [a for a in answers.values() if a["finish_reason"] == "too_long"]
    assert refused and len(refused) < 6  # some too long, some answered
    assert all(not a["right"] and a["reply"] == "" for a in refused)
