"""Remote providers against real HTTP servers on 127.0.0.1: the wire formats, every
fault (retried, fallen back, or failing only its own branch), privacy, and keys."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from podium.core.config import ModelSpec, Settings
from podium.core.errors import (
    AuthError,
    BadResponse,
    RateLimited,
    Rejected,
    Timeout,
    Unavailable,
)
from podium.core.models.provider import Message, ModelRequest, collect
from podium.core.recipe.load import loads
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.providers.anthropic import AnthropicProvider
from podium.providers.http import make_client
from podium.providers.openai import OpenAIProvider
from podium.providers.registry import build_hub
from tests.servers import Behaviour, ScriptServer

SECRET = "sk-test-do-not-leak-4242"


def ask(text: str = "hi", **kw: Any) -> ModelRequest:
    return ModelRequest(messages=(Message("system", "be brief"), Message("user", text)), **kw)


def openai(server: ScriptServer, client: httpx.AsyncClient, **kw: Any) -> OpenAIProvider:
    return OpenAIProvider("remote", model="m", base_url=server.url + "/v1", client=client,
                          key=SECRET, **kw)


def run_async(coro_fn: Any, *, own_pool: bool = False) -> Any:
    """Run `coro_fn(client)` on the client the registry builds (Podium's pool), or with
    `own_pool` on a plain httpx client (httpx's own pool), as before Podium had one."""
    async def main() -> Any:
        timeout = httpx.Timeout(2.0)
        client = httpx.AsyncClient(timeout=timeout) if own_pool else make_client(timeout=timeout)
        async with client:
            return await coro_fn(client)
    return asyncio.run(main())


def test_openai_stream_usage_and_body() -> None:
    with ScriptServer([Behaviour(text="Paris is the capital")]) as server:
        response = run_async(lambda c: collect(openai(server, c), ask("capital?", seed=7)))
    assert response.text == "Paris is the capital"
    assert (response.usage.input_tokens, response.usage.output_tokens) == (11, 5)
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["Authorization"] == f"Bearer {SECRET}"
    assert sent["body"]["stream"] is True and sent["body"]["seed"] == 7
    assert sent["body"]["messages"][0] == {"role": "system", "content": "be brief"}


def test_openai_schema_modes() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    with ScriptServer([Behaviour(text='{"a": "x"}')]) as server:
        run_async(lambda c: collect(openai(server, c), ask(schema=schema)))
        run_async(lambda c: collect(openai(server, c, schema_mode="json_object"),
                                    ask(schema=schema)))
    first, second = (r["body"]["response_format"] for r in server.requests)
    assert first["type"] == "json_schema" and first["json_schema"]["schema"] == schema
    assert second == {"type": "json_object", "schema": schema}


def test_usage_is_estimated_when_the_server_sends_none() -> None:
    with ScriptServer([Behaviour(text="one two three", usage=None)]) as server:
        response = run_async(lambda c: collect(openai(server, c), ask("x" * 400)))
    assert response.usage.input_tokens > 50 and response.usage.output_tokens == 3


def test_anthropic_text_and_structured_output() -> None:
    script = [Behaviour(kind="anthropic", text="Bonjour", usage=(9, 2)),
              Behaviour(kind="anthropic", text='{"value": "positive"}', usage=(9, 4)),
              Behaviour(kind="anthropic", text='{"city": "Oslo"}', usage=(9, 4))]
    with ScriptServer(script) as server:
        async def calls(c: httpx.AsyncClient) -> list[Any]:
            p = AnthropicProvider("claude", model="c", base_url=server.url, client=c,
                                  key=SECRET)
            return [await collect(p, ask()),
                    await collect(p, ask(schema={"type": "string",
                                                 "enum": ["positive", "negative"]})),
                    await collect(p, ask(schema={"type": "object"}))]
        plain, label, obj = run_async(calls)
    assert plain.text == "Bonjour" and (plain.usage.input_tokens,
                                        plain.usage.output_tokens) == (9, 2)
    assert json.loads(label.text) == "positive"
    assert json.loads(obj.text) == {"city": "Oslo"}
    first = server.requests[0]
    assert first["path"] == "/v1/messages" and first["headers"]["x-api-key"] == SECRET
    assert first["body"]["system"] == "be brief"
    assert all(m["role"] != "system" for m in first["body"]["messages"])
    assert server.requests[1]["body"]["tool_choice"] == {"type": "tool", "name": "answer"}


@pytest.mark.parametrize("behaviour,error", [
    (Behaviour(kind="status", status=429, headers={"Retry-After": "3"}), RateLimited),
    (Behaviour(kind="status", status=500), Unavailable),
    (Behaviour(kind="status", status=401), AuthError),
    (Behaviour(kind="status", status=400), Rejected),
    (Behaviour(kind="malformed"), BadResponse),
    (Behaviour(kind="cut"), (Unavailable, BadResponse)),
    (Behaviour(kind="slow", delay=3.0), Timeout),
])
@pytest.mark.parametrize("own_pool", [False, True], ids=["podium-pool", "httpx-pool"])
def test_faults_map_to_typed_errors(behaviour: Behaviour, error: Any, own_pool: bool) -> None:
    with ScriptServer([behaviour]) as server, pytest.raises(error) as caught:
        run_async(lambda c: collect(openai(server, c), ask()), own_pool=own_pool)
    assert SECRET not in str(caught.value) and SECRET not in (caught.value.hint or "")
    if isinstance(caught.value, RateLimited):
        assert caught.value.retry_after == 3.0


# --- through the engine: retries, fallbacks, isolation, privacy, keys ----------------


def remote_settings(url: str, fallbacks: list[str] | None = None) -> Settings:
    return Settings(models={"remote": ModelSpec(
        provider="openai", base_url=url + "/v1", model="m", key_env="PODIUM_TEST_KEY",
        price_in=1.0, price_out=2.0, fallbacks=fallbacks or [])})


def engine_for(settings: Settings) -> Engine:
    return Engine(Store.open(), build_hub(settings))


def run_recipe(settings: Settings, toml: str) -> tuple[Engine, Any]:
    engine = engine_for(settings)

    async def main() -> Any:
        try:
            return await engine.run(loads(toml), {})
        finally:
            await engine.hub.aclose()

    return engine, asyncio.run(main())


@pytest.fixture(autouse=True)
def key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PODIUM_TEST_KEY", SECRET)


def test_rate_limit_is_retried_after_the_wait() -> None:
    script = [Behaviour(kind="status", status=429, headers={"Retry-After": "0.4"}),
              Behaviour(text="after the wait")]
    with ScriptServer(script) as server:
        started = time.perf_counter()
        engine, result = run_recipe(remote_settings(server.url), """
[steps.a]
kind = "llm"
route = "remote"
prompt = "hi"
""")
        elapsed = time.perf_counter() - started
    assert result.outputs == {"a": "after the wait"}
    assert elapsed >= 0.4 and len(server.requests) == 2
    step = engine.store.get_steps(result.run_id)[0]
    assert step.model == "remote" and step.tier == "remote"
    assert step.cost == pytest.approx((11 * 1.0 + 5 * 2.0) / 1e6)


def test_cut_connection_and_malformed_stream_are_retried() -> None:
    script = [Behaviour(kind="cut"), Behaviour(kind="malformed"), Behaviour(text="whole")]
    with ScriptServer(script) as server:
        _, result = run_recipe(remote_settings(server.url), """
[steps.a]
kind = "llm"
route = "remote"
prompt = "hi"
""")
    assert result.outputs == {"a": "whole"} and len(server.requests) == 3


def test_server_down_falls_back_to_the_local_model(model_path: Path) -> None:
    with ScriptServer([Behaviour(kind="status", status=503)]) as server:
        engine, result = run_recipe(remote_settings(server.url, fallbacks=["local"]), """
[steps.a]
kind = "llm"
route = "remote"
prompt = "What is the capital of France? Answer briefly."
max_tokens = 16
""")
    assert result.status == "succeeded" and result.outputs["a"]
    step = engine.store.get_steps(result.run_id)[0]
    assert step.model == "smollm2" and step.tier == "local"
    assert any("fell back from remote" in r for r in step.route["reasons"])
    assert len(server.requests) == 3  # the first call and its two retries


def test_no_network_falls_back_to_local_by_itself(model_path: Path) -> None:
    """A routed remote call that cannot reach its server ends on this machine."""
    settings = remote_settings("http://127.0.0.1:9")  # nothing listens on port 9
    engine, result = run_recipe(settings, """
[steps.a]
kind = "llm"
route = "remote"
prompt = "Say hi."
max_tokens = 8
""")
    assert result.status == "succeeded"
    step = engine.store.get_steps(result.run_id)[0]
    assert step.tier == "local"
    assert any("cannot connect" in r for r in step.route["reasons"])


def test_a_failing_remote_fails_only_its_branch(model_path: Path) -> None:
    with ScriptServer([Behaviour(kind="status", status=401)]) as server:
        engine, result = run_recipe(remote_settings(server.url), """
[steps.remote_part]
kind = "llm"
model = "remote"
prompt = "hi"
retries = 0
[steps.after_remote]
kind = "template"
template = "{{ steps.remote_part }}"
[steps.local_part]
kind = "llm"
route = "local"
prompt = "Say hello."
max_tokens = 8
""")
    assert result.status == "failed"
    steps = {s.step_id: s for s in engine.store.get_steps(result.run_id)}
    assert steps["remote_part"].status == "failed"
    assert "refused the key" in (steps["remote_part"].error or "")
    assert steps["after_remote"].status == "skipped"
    assert steps["local_part"].status == "succeeded" and steps["local_part"].output
    assert len(server.requests) == 1  # an auth error is not retried


def test_privacy_local_never_reaches_the_network(model_path: Path) -> None:
    with ScriptServer([Behaviour(text="remote answer")]) as server:
        engine, result = run_recipe(remote_settings(server.url), """
[steps.secret]
kind = "llm"
route = "remote"
privacy = "local"
prompt = "My account number is 12345. Say OK."
max_tokens = 8
[steps.open]
kind = "llm"
route = "remote"
prompt = "hi"
""")
    assert result.status == "succeeded"
    assert len(server.requests) == 1  # only the step without privacy
    assert "12345" not in json.dumps(server.requests)
    steps = {s.step_id: s for s in engine.store.get_steps(result.run_id)}
    assert steps["secret"].tier == "local"
    assert "privacy = local" in steps["secret"].route["reasons"][0]


def test_missing_key_routes_local_and_says_why(monkeypatch: pytest.MonkeyPatch,
                                               model_path: Path) -> None:
    monkeypatch.delenv("PODIUM_TEST_KEY")
    with ScriptServer([Behaviour()]) as server:
        engine, result = run_recipe(remote_settings(server.url), """
[steps.a]
kind = "llm"
route = "remote"
prompt = "Say hi."
max_tokens = 8
""")
    assert result.status == "succeeded" and not server.requests
    step = engine.store.get_steps(result.run_id)[0]
    assert step.tier == "local"
    assert any("PODIUM_TEST_KEY" in r for r in step.route["reasons"])


def test_keys_never_reach_the_database(podium_home: Path) -> None:
    with ScriptServer([Behaviour(kind="status", status=401), Behaviour()]) as server:
        run_recipe(remote_settings(server.url), """
[steps.a]
kind = "llm"
route = "remote"
prompt = "hi"
retries = 0
[steps.b]
kind = "llm"
route = "remote"
prompt = "hi"
needs = ["a"]
join = "any"
""")
    raw = b"".join(p.read_bytes() for p in podium_home.glob("podium.db*"))
    assert raw and SECRET.encode() not in raw


def test_keys_file_must_be_private(podium_home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from podium.core.config import resolve_key
    from podium.core.errors import ConfigError

    monkeypatch.delenv("PODIUM_TEST_KEY")
    keys = podium_home / "keys.toml"
    keys.write_text(f'PODIUM_TEST_KEY = "{SECRET}"\n')
    keys.chmod(0o644)
    with pytest.raises(ConfigError, match="readable by others") as caught:
        resolve_key("PODIUM_TEST_KEY")
    assert caught.value.hint == f"chmod 600 {keys}" and SECRET not in str(caught.value)
    keys.chmod(0o600)
    assert resolve_key("PODIUM_TEST_KEY") == SECRET


def test_compare_runs_a_step_on_the_other_tier(podium_home: Path, tmp_path: Path,
                                               model_path: Path) -> None:
    import subprocess

    from tests.conftest import PODIUM, ROOT, cli_env

    recipe = tmp_path / "r.toml"
    recipe.write_text('[steps.a]\nkind = "llm"\nroute = "local"\n'
                      'prompt = "What is the capital of France? Answer briefly."\n'
                      'max_tokens = 16\n')
    with ScriptServer([Behaviour(text="Paris, of course.")]) as server:
        (podium_home / "config.toml").write_text(
            f'[models.remote]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            'key_env = "PODIUM_TEST_KEY"\nprice_in = 1.0\nprice_out = 1.0\n')
        env = cli_env(podium_home)

        def podium(*args: str) -> Any:
            return subprocess.run([PODIUM, *args], capture_output=True, text=True, env=env,
                                  cwd=ROOT, timeout=120)

        first = podium("run", str(recipe), "--json", "-q")
        assert first.returncode == 0, first.stderr
        out = json.loads(podium("compare", "last", "a", "--json").stdout)
        human = podium("compare", "last", "a")
    assert out["original"]["tier"] == "local" and out["original"]["model"] == "smollm2"
    assert out["sibling"] == {**out["sibling"], "tier": "remote", "model": "remote",
                              "output": "Paris, of course."}
    assert "original: smollm2 (local)" in human.stdout and "sibling: remote" in human.stdout
    assert len(server.requests) == 2
    db = sqlite3.connect(podium_home / "podium.db")
    assert db.execute("SELECT COUNT(*) FROM comparisons").fetchone()[0] == 2
    ask = "What is the capital of France? Answer briefly."
    before = json.loads(podium("route", ask, "--json").stdout)
    judged = podium("compare", "last", "a", "--verdict", "remote")
    # The verdict teaches the router at once: the ask's nearest example is now it.
    after = json.loads(podium("route", ask, "--json").stdout)
    assert after["score"] > before["score"]
    assert "(your verdict)" in after["reasons"][0] and "(your verdict)" not in str(before)
    pairs = podium("compare", "--pairs").stdout.splitlines()
    # A person's verdicts extend the routing calibration set.
    (tmp_path / "pairs.jsonl").write_text("\n".join(pairs))
    refit = subprocess.run([sys.executable, str(ROOT / "bench" / "calibration" / "fit.py"),
                            "--extra", str(tmp_path / "pairs.jsonl")], capture_output=True,
                           text=True, cwd=ROOT, timeout=300)
    shown = json.loads(podium("show", "last", "--json").stdout)
    assert shown["steps"][0]["tier"] == "local"  # the original is untouched
    assert judged.returncode == 0 and "the remote answer was right" in judged.stdout
    assert [json.loads(p)["prompt"] for p in pairs] == [
        "What is the capital of France? Answer briefly."]
    assert json.loads(pairs[0])["local_correct"] is False
    assert refit.returncode == 0 and "extra: 1 judged pairs" in refit.stdout, refit.stderr


def test_error_events_and_odd_shapes_are_provider_errors() -> None:
    from tests.servers import openai_events

    class Odd(ScriptServer):
        def respond(self, h: Any, b: Behaviour, body: dict[str, Any]) -> None:
            h.send_response(200)
            h.send_header("content-type", "text/event-stream")
            h.send_header("connection", "close")
            h.end_headers()
            lines = openai_events("Partial", None)[:1] + [b.text, "data: [DONE]\n\n"]
            for line in lines:
                h.wfile.write(line.encode())

    for event, error in (('data: {"error": {"message": "upstream died"}}\n\n', Unavailable),
                         ('data: {"choices": ["not a dict"]}\n\n', BadResponse)):
        with Odd([Behaviour(text=event)]) as server, pytest.raises(error):
            run_async(lambda c: collect(openai(server, c), ask()))


def test_a_server_echoing_the_key_does_not_leak_it() -> None:
    class Echo(ScriptServer):
        def respond(self, h: Any, b: Behaviour, body: dict[str, Any]) -> None:
            payload = json.dumps({"error": {"message": f"bad key {SECRET}"}}).encode()
            h.send_response(401)
            h.send_header("content-type", "application/json")
            h.send_header("content-length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)

    with Echo([Behaviour()]) as server, pytest.raises(AuthError) as caught:
        run_async(lambda c: collect(openai(server, c), ask()))
    assert SECRET not in str(caught.value) and "bad key ***" in str(caught.value)


# --- hardening (issue 13): bounded waits, whole-call timeouts, secrets, odd answers ---


def remote1(url: str, timeout: float = 8.0) -> Settings:
    """The issue's set-up: `[models.remote1] provider = "openai" ... timeout = N`."""
    return Settings(models={"remote1": ModelSpec(
        provider="openai", base_url=url + "/v1", model="m", key_env="PODIUM_TEST_KEY",
        timeout=timeout)})


def steps_of(engine: Engine, result: Any) -> dict[str, Any]:
    return {s.step_id: s for s in engine.store.get_steps(result.run_id)}


def test_the_retry_policy_refuses_a_wait_past_its_cap() -> None:
    from podium.core.retry import CALL_POLICY, MAX_WAIT_S, RetryPolicy

    hour = RateLimited("rate limited", retry_after=3600)
    assert CALL_POLICY.delay(0, hour) is None
    assert RetryPolicy(retries=3, backoff=0.5).delay(0, hour) is None  # a step's policy
    short = RateLimited("rate limited", retry_after=2)
    assert CALL_POLICY.delay(0, short) == pytest.approx(2, abs=0.5)
    assert RetryPolicy(3, 0.5).delay(0, RateLimited("x", retry_after=MAX_WAIT_S)) is not None


@pytest.mark.parametrize("retry_after", ["3600", "date"])
def test_an_hour_of_retry_after_ends_a_pinned_step_at_once_and_says_so(
        model_path: Path, retry_after: str) -> None:
    """Issue 13, item 1: a pinned step fails in seconds, saying the server asked for an
    hour; a routed one falls back to the local model at once."""
    from email.utils import formatdate

    header = formatdate(time.time() + 3600, usegmt=True) if retry_after == "date" \
        else retry_after
    script = [Behaviour(kind="status", status=429, headers={"Retry-After": header})]
    with ScriptServer(script) as server:
        started = time.perf_counter()
        engine, result = run_recipe(remote1(server.url), """
[steps.pinned]
kind = "llm"
model = "remote1"
prompt = "hi"
[steps.routed]
kind = "llm"
route = "remote"
prompt = "Say hi."
max_tokens = 8
""")
        elapsed = time.perf_counter() - started
    assert elapsed < 10  # (the embedded model's first load is most of it)
    steps = steps_of(engine, result)
    pinned, routed = steps["pinned"], steps["routed"]
    assert pinned.status == "failed" and pinned.latency_ms < 1000
    assert "asked to wait 1 h" in (pinned.error or ""), pinned.error
    assert "30 s" in (pinned.hint or "")
    assert routed.status == "succeeded" and routed.tier == "local"
    assert any("fell back from remote1" in r and "1 h" in r for r in routed.route["reasons"])
    assert len(server.requests) == 2  # one each: an hour is neither waited for nor retried


def test_a_retry_after_longer_than_the_models_timeout_is_not_waited_for() -> None:
    """A wait the cap allows (20 s) but that would end past the model's whole-call
    timeout (1 s) is not taken: the call fails at once, not after 40 s of sleeping."""
    script = [Behaviour(kind="status", status=429, headers={"Retry-After": "20"})]
    with ScriptServer(script) as server:
        started = time.perf_counter()
        engine, result = run_recipe(remote1(server.url, timeout=1), """
[steps.pinned]
kind = "llm"
model = "remote1"
prompt = "hi"
retries = 0
""")
        elapsed = time.perf_counter() - started
    assert elapsed < 2 and len(server.requests) == 1
    step = steps_of(engine, result)["pinned"]
    assert step.status == "failed" and "asked to wait 20 s" in (step.error or "")


def test_a_silent_server_costs_one_timeout_and_a_routed_call_ends_local(
        model_path: Path) -> None:
    """Issue 13, item 4: the model's timeout bounds the whole call, retries included;
    a routed call then falls back to the local model, inside the step's timeout."""
    with ScriptServer([Behaviour(kind="hang")]) as server:
        engine, result = run_recipe(remote1(server.url, timeout=1), """
[steps.routed]
kind = "llm"
route = "remote"
prompt = "Say hi."
max_tokens = 8
timeout = 3
[steps.pinned]
kind = "llm"
model = "remote1"
prompt = "hi"
retries = 0
""")
    steps = steps_of(engine, result)
    routed, pinned = steps["routed"], steps["pinned"]
    assert routed.status == "succeeded" and routed.tier == "local"
    assert any("fell back from remote1" in r and "no complete answer in 1 s" in r
               for r in routed.route["reasons"])
    assert pinned.status == "failed" and "no complete answer in 1 s" in (pinned.error or "")
    assert 900 < pinned.latency_ms < 1800  # one timeout, not one per try
    assert len(server.requests) == 2  # one try each: the timeout was spent on it


def test_the_whole_call_timeout_counts_the_waits_between_tries() -> None:
    """A server that fails fast (500) is retried, but never past the model's timeout."""
    from podium.core.models.caller import call_with_retries
    from podium.core.retry import RetryPolicy

    with ScriptServer([Behaviour(kind="status", status=500, delay=0.3)]) as server:
        async def call(c: httpx.AsyncClient) -> Any:
            return await call_with_retries(openai(server, c), ask(), None, timeout=1.0,
                                           policy=RetryPolicy(retries=10, backoff=0.2))
        started = time.perf_counter()
        with pytest.raises((Unavailable, Timeout)):
            run_async(call)
        elapsed = time.perf_counter() - started
    assert elapsed < 1.3 and 2 <= len(server.requests) <= 3


SECRET_ODD = "sk-odd/Key+with=Chars&4242xyz"  # changes when percent-encoded


@pytest.mark.parametrize("key,body,status", [
    (SECRET, json.dumps({"error": {"message": "x" * 185 + SECRET}}), 401),
    (SECRET, json.dumps({"error": {"message": "x" * 190 + " " + SECRET}}), 429),
    (SECRET_ODD, json.dumps({"error": {"message": "bad key: "
                                       + __import__("urllib.parse").parse.quote(
                                           SECRET_ODD, safe="")}}), 401),
    (SECRET, json.dumps({"error": {"message": f"key {SECRET[:12]} ... {SECRET[12:]}"}}), 401),
    (SECRET, json.dumps({"error": {"message": "key " + " ".join(SECRET)}}), 403),
    (SECRET, "<html><body>Unauthorized: " + "y" * 180 + SECRET + "</body></html>", 401),
    (SECRET, "Bearer " + SECRET, 500),
], ids=["cut-at-200", "rate-limited", "percent-encoded", "split", "spaced", "html", "bearer"])
def test_an_echoed_key_reaches_neither_the_database_nor_a_message(
        podium_home: Path, monkeypatch: pytest.MonkeyPatch, key: str, body: str,
        status: int) -> None:
    """Issue 13, item 5: the key is masked before the server's text is cut, also when
    echoed percent-encoded or in pieces; only a short excerpt is kept."""
    monkeypatch.setenv("PODIUM_TEST_KEY", key)
    script = [Behaviour(kind="status", status=status, body=body,
                        content_type="text/html" if body.startswith("<") else
                        "application/json")]
    with ScriptServer(script) as server:
        engine, result = run_recipe(remote1(server.url), """
[steps.a]
kind = "llm"
model = "remote1"
prompt = "hi"
retries = 0
""")
        assert server.requests[0]["headers"]["Authorization"] == f"Bearer {key}"
    step = steps_of(engine, result)["a"]
    said = f"{step.error} {step.hint}"
    assert step.status == "failed" and said.strip()
    assert len(step.error or "") < 300  # a short excerpt of what the server said
    raw = b"".join(p.read_bytes() for p in podium_home.glob("podium.db*"))
    assert_no_key(key, said, raw)


def assert_no_key(key: str, text: str, raw: bytes = b"") -> None:
    """Neither the key, nor its first or last 8 characters, plainly, percent-encoded
    or spaced out, in `text` (what a person sees) or `raw` (the database's bytes)."""
    from urllib.parse import quote

    squeezed, raw_squeezed = "".join(text.split()), b"".join(raw.split())
    for part in (key, key[:8], key[-8:]):
        for form in (part, quote(part, safe="")):
            assert form not in text and form.encode() not in raw, form
            assert form not in squeezed and form.encode() not in raw_squeezed, form


def test_an_echoed_key_is_not_printed_nor_shown(podium_home: Path, tmp_path: Path) -> None:
    """The same, end to end: what `podium run` prints and `show --json` gives."""
    import subprocess

    from tests.conftest import PODIUM, ROOT, cli_env

    recipe = tmp_path / "r.toml"
    recipe.write_text('[steps.a]\nkind = "llm"\nmodel = "remote1"\nprompt = "hi"\n')
    body = json.dumps({"error": {"message": "x" * 185 + SECRET}})
    with ScriptServer([Behaviour(kind="status", status=401, body=body)]) as server:
        (podium_home / "config.toml").write_text(
            f'[models.remote1]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            'key_env = "PODIUM_TEST_KEY"\ntimeout = 8\n')
        env = cli_env(podium_home)
        ran = subprocess.run([PODIUM, "run", str(recipe)], capture_output=True, text=True,
                             env=env, cwd=ROOT, timeout=60)
        shown = subprocess.run([PODIUM, "show", "last", "--json"], capture_output=True,
                               text=True, env=env, cwd=ROOT, timeout=60)
    assert ran.returncode == 1 and "refused the key" in ran.stdout + ran.stderr
    assert shown.returncode == 0 and "refused the key" in shown.stdout
    for text in (ran.stdout, ran.stderr, shown.stdout, shown.stderr):
        assert_no_key(SECRET, text)
        assert "Traceback" not in text


def test_an_html_page_is_reported_as_html() -> None:
    """A web server at a wrong base_url answers 200 with a page, not a stream."""
    with ScriptServer([Behaviour(kind="html")]) as server, \
            pytest.raises(BadResponse) as caught:
        run_async(lambda c: collect(openai(server, c), ask()))
    assert "the server answered HTML, not an event stream" in caught.value.message
    assert "is base_url right?" in str(caught.value) + (caught.value.hint or "")
    with ScriptServer([Behaviour(kind="html")]) as server, \
            pytest.raises(BadResponse, match="answered HTML"):
        run_async(lambda c: collect(AnthropicProvider("claude", model="c", client=c,
                                                      base_url=server.url, key=SECRET),
                                    ask()))


def test_a_huge_event_is_refused_without_reading_it_all() -> None:
    """50 MB on one line: refused after about a megabyte, in bounded time and memory."""
    import tracemalloc

    with ScriptServer([Behaviour(kind="huge")]) as server:
        tracemalloc.start()
        started = time.perf_counter()
        try:
            with pytest.raises(BadResponse, match="MB") as caught:
                run_async(lambda c: collect(openai(server, c), ask()))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        elapsed = time.perf_counter() - started
    assert elapsed < 3 and peak < 20 << 20, (elapsed, peak)
    assert "not a model's answer" in str(caught.value)


def test_a_huge_error_body_is_read_only_in_part() -> None:
    body = json.dumps({"error": {"message": "z" * (30 << 20)}})
    with ScriptServer([Behaviour(kind="status", status=400, body=body)]) as server, \
            pytest.raises(Rejected) as caught:
        run_async(lambda c: collect(openai(server, c), ask()))
    assert len(caught.value.message) < 300


def test_a_base_url_that_is_not_a_url_is_a_clear_error() -> None:
    """A hand-written base_url without a scheme, or with a port past 65535."""
    async def call(c: httpx.AsyncClient, url: str) -> Any:
        p = OpenAIProvider("remote", model="m", base_url=url, client=c, key=SECRET)
        return await collect(p, ask())

    for url in ("notaurl", "http://127.0.0.1:99999/v1"):
        with pytest.raises(Rejected, match="base_url"):
            run_async(lambda c, url=url: call(c, url))


def test_models_add_refuses_a_base_url_that_is_not_a_url(podium_home: Path) -> None:
    from click.testing import CliRunner

    from podium.tui.cli import cli as main

    result = CliRunner().invoke(main, ["models", "add", "bad", "--base-url", "notaurl"])
    assert result.exit_code == 2, result.output
    assert "notaurl" in result.output and "http" in result.output
    assert not (podium_home / "config.toml").exists()
    good = CliRunner().invoke(main, ["models", "add", "ok", "--base-url",
                                     "http://127.0.0.1:8080/v1"])
    assert good.exit_code == 0, good.output


def test_models_check_fails_when_a_remote_is_unreachable(podium_home: Path) -> None:
    from click.testing import CliRunner

    from podium.tui.cli import cli as main

    (podium_home / "config.toml").write_text(
        '[models.down]\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    result = CliRunner().invoke(main, ["models", "--check"])
    assert result.exit_code == 1, result.output
    lines = {line[2:].split()[0]: line for line in result.stdout.splitlines()
             if line.strip()}
    down, local = lines["down"], lines["smollm2"]
    assert "unreachable" in down and "cannot connect" in down
    listed = CliRunner().invoke(main, ["models", "--check", "--json"])
    assert listed.exit_code == 1
    rows = {r["name"]: r for r in json.loads(listed.stdout)}
    # The last column starts at the same place on every row: the state fits its own.
    assert down.index(rows["down"]["base_url"]) == local.index(rows["smollm2"]["description"])


def test_compare_with_an_unreachable_remote_says_so(podium_home: Path, tmp_path: Path,
                                                    model_path: Path) -> None:
    import subprocess

    from tests.conftest import PODIUM, ROOT, cli_env

    recipe = tmp_path / "r.toml"
    recipe.write_text('[steps.a]\nkind = "llm"\nroute = "local"\nprompt = "Say hi."\n'
                      'max_tokens = 8\n')
    (podium_home / "config.toml").write_text(
        '[models.remote]\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
        'timeout = 5\n')
    env = cli_env(podium_home)
    first = subprocess.run([PODIUM, "run", str(recipe), "-q"], capture_output=True,
                           text=True, env=env, cwd=ROOT, timeout=120)
    assert first.returncode == 0, first.stderr
    compared = subprocess.run([PODIUM, "compare", "last", "a"], capture_output=True,
                              text=True, env=env, cwd=ROOT, timeout=120)
    assert compared.returncode == 1 and "Traceback" not in compared.stderr
    assert "podium models add" not in compared.stderr, compared.stderr
    assert "no remote model could answer: remote is unreachable" in compared.stderr, \
        compared.stderr
    assert "cannot connect" in compared.stderr


def test_an_excerpt_masks_a_key_in_every_form_it_is_recognised() -> None:
    from urllib.parse import quote

    from podium.providers.excerpt import error_text, excerpt

    key = SECRET_ODD
    for said in (key, quote(key, safe=""), quote(quote(key, safe=""), safe=""),
                 key.replace("&", "&amp;"), key.replace("/", "\\/"), " ".join(key),
                 f"{key[:10]}\n{key[10:]}", key[:8], key[-9:], f"Bearer {key}"):
        out = excerpt(f"refused: {said} (see docs)", key)
        assert out.startswith("refused: ") and out.endswith("*** (see docs)"), (said, out)
        assert_no_key(key, out)
    other = "sk-proj-abcdefghijklmnop1234"  # not this provider's key: masked by its shape
    assert other not in excerpt(f"key {other} refused", key)
    assert excerpt("Incorrect API key provided: x. Rate limit 10/min", None) == \
        "Incorrect API key provided: x. Rate limit 10/min"  # words are not keys
    long = excerpt("<p>" + "word " * 500 + "</p>", key)
    assert len(long) <= 160 and "<p>" not in long
    assert error_text('{"error": {"message": "model not found"}}', key) == "model not found"
    assert error_text('{"detail": "Not Found"}', key) == "Not Found"
    assert error_text("<html><title>502 Bad Gateway</title></html>", key) == "502 Bad Gateway"
    assert error_text("", key) == ""


@pytest.mark.parametrize("ending", ["\r\n", "\r", "\n"])
def test_a_stream_is_read_whatever_its_line_endings_and_however_it_is_cut(
        ending: str) -> None:
    """The event reader splits lines itself (to bound them): CRLF split across two
    reads is one line end, and a stream that comes a few bytes at a time reads whole."""
    from tests.servers import openai_events

    class Trickle(ScriptServer):
        def respond(self, h: Any, b: Behaviour, body: dict[str, Any]) -> None:
            h.send_response(200)
            h.send_header("content-type", "text/event-stream")
            h.send_header("connection", "close")
            h.end_headers()
            data = "".join(openai_events("one two three", (3, 3))).replace("\n", ending)
            raw = data.encode()
            for i in range(0, len(raw), 3):
                h.wfile.write(raw[i:i + 3])
                h.wfile.flush()
                time.sleep(0.0005)

    with Trickle([Behaviour()]) as server:
        response = run_async(lambda c: collect(openai(server, c), ask()))
    assert response.text == "one two three" and response.usage.output_tokens == 3


@pytest.mark.parametrize("fault", ["hang", "hang_after_headers", "drip", "huge"])
def test_models_check_gives_up_on_a_server_in_its_time(fault: str) -> None:
    """`podium models --check` pings with a bound on the whole exchange (a byte at a
    time would reset a per-read timeout for ever) and never reads a body."""
    with ScriptServer([], get=Behaviour(kind=fault, delay=0.1)) as server:
        started = time.perf_counter()
        state = run_async(lambda c: openai(server, c).ping(timeout=0.5))
        elapsed = time.perf_counter() - started
    assert elapsed < 1.5, elapsed
    # Headers with a 200 are an answer: the server is there (the body is not its test).
    assert state == ("unreachable (no answer in 0.5 s)" if fault == "hang" else "reachable")


def test_credentials_in_a_base_url_are_not_quoted_in_errors() -> None:
    """Errors name the server; a password or the key in its URL is left out."""
    with ScriptServer([Behaviour(kind="status", status=500)]) as server:
        url = server.url.replace("http://", "http://user:hunter2-password@") + f"/{SECRET}/v1"
        with pytest.raises(Unavailable) as caught:
            run_async(lambda c: collect(OpenAIProvider("r", model="m", base_url=url,
                                                       client=c, key=SECRET), ask()))
    said = str(caught.value) + repr(OpenAIProvider("r", model="m", base_url=url,
                                                   client=None, key=SECRET))  # type: ignore
    assert "hunter2" not in said and "user:" not in said and "***@127.0.0.1" in said
    assert_no_key(SECRET, said)


ODD_EVENTS = [
    "[]", '"text"', "1", "null", "true", '{"choices": "x"}', '{"choices": [1]}',
    '{"choices": [{"delta": "x"}]}', '{"choices": [{"delta": {"content": 5}}]}',
    '{"choices": [{"delta": {"content": ["a"]}}]}',
    '{"usage": {"prompt_tokens": "x"}}', '{"usage": "x"}', '{"usage": {"prompt_tokens": 1e999}}',
    '{"choices": [{"delta": {"tool_calls": [{"index": "a"}]}}]}',
    '{"choices": [{"delta": {"tool_calls": "x"}}]}',
    '{"choices": [{"delta": {"tool_calls": [{"function": "x"}]}}]}',
    '{"choices": [{"delta": {"tool_calls": [{"index": 0, "function": {"name": "f", '
    '"arguments": "[[[[[[[[[["}}]}}]}',
    '{"error": "x"}', '{"error": {"message": 5}}',
    '{"type": "message_start", "message": "x"}',
    '{"type": "message_start", "message": {"usage": {"input_tokens": "x"}}}',
    '{"type": "content_block_start", "index": "a", "content_block": "x"}',
    '{"type": "content_block_start", "index": 0, "content_block": {"type": "tool_use"}}',
    '{"type": "content_block_delta", "index": "a", "delta": "x"}',
    '{"type": "content_block_delta", "index": 0, "delta": {"text": 5}}',
    '{"type": "content_block_delta", "index": 0, "delta": {"partial_json": "[[[["}}',
    '{"type": "message_delta", "delta": "x", "usage": {"output_tokens": "x"}}',
    '{"type": "error", "error": "x"}', '{"type": "error", "error": {"type": 5}}',
    "[" * 100_000 + "]" * 100_000,
]


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
def test_odd_events_are_provider_errors_or_answers_never_bugs(kind: str) -> None:
    """Every event a server may send that is JSON of an unexpected shape ends in an
    answer or a provider error (retried, fallen back): never another exception,
    which the engine would call a bug in Podium."""
    from podium.core.errors import ProviderError

    class Odd(ScriptServer):
        def respond(self, h: Any, b: Behaviour, body: dict[str, Any]) -> None:
            h.send_response(200)
            h.send_header("content-type", "text/event-stream")
            h.send_header("connection", "close")
            h.end_headers()
            start = '{"type": "message_start", "message": {"usage": {}}}'
            lines = [f"data: {start}\n\n", f"data: {b.text}\n\n",
                     'data: {"type": "message_stop"}\n\n', "data: [DONE]\n\n"]
            h.wfile.write("".join(lines).encode())

    from podium.core.models.provider import Tool

    tools = (Tool("f", "a tool", {"type": "object"}),)
    bugs = []
    with Odd([Behaviour(text=e) for e in ODD_EVENTS]) as server:
        for event in ODD_EVENTS:
            async def call(c: httpx.AsyncClient) -> Any:
                p = openai(server, c) if kind == "openai" else AnthropicProvider(
                    "claude", model="c", base_url=server.url, client=c, key=SECRET)
                return await collect(p, ask(tools=tools))
            try:
                run_async(call)
            except ProviderError:
                pass
            except Exception as e:  # noqa: BLE001 (what this test looks for)
                bugs.append(f"{event[:60]}: {type(e).__name__}: {e}")
    assert not bugs, "\n".join(bugs)


def test_models_check_fails_for_a_remote_without_its_key(podium_home: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from click.testing import CliRunner

    from podium.tui.cli import cli as main

    monkeypatch.delenv("PODIUM_TEST_KEY")
    with ScriptServer([]) as server:
        (podium_home / "config.toml").write_text(
            f'[models.up]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            f'[models.keyless]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            'key_env = "PODIUM_TEST_KEY"\n')
        result = CliRunner().invoke(main, ["models", "--check"])
        assert result.exit_code == 1 and "no key: set PODIUM_TEST_KEY" in result.stdout
        (podium_home / "config.toml").write_text(
            f'[models.up]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n')
        fine = CliRunner().invoke(main, ["models", "--check"])
    assert fine.exit_code == 0 and "reachable" in fine.stdout
