"""End to end through the `podium` command, in subprocesses, on the real embedded
model and a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import PODIUM, ROOT, cli_env


def podium(home: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PODIUM, *args], capture_output=True, text=True, timeout=timeout,
                          env=cli_env(home), cwd=ROOT)


def as_json(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("recipe", ["document-pipeline", "ensemble-vote", "triage",
                                    "quick-answer"])
def test_shipped_recipes_run_offline(podium_home: Path, recipe: str) -> None:
    proc = podium(podium_home, "run", recipe, "--json")
    assert proc.returncode == 0, proc.stderr
    out = as_json(proc)
    assert out["status"] == "succeeded" and out["run_id"]
    assert out["outputs"] and all(v is not None for v in out["outputs"].values())
    assert out["input_tokens"] > 0 and out["output_tokens"] > 0
    assert "Traceback" not in proc.stderr


def test_quick_answer_cascade_says_what_its_checks_found(podium_home: Path) -> None:
    """Offline the cascade keeps the local answer; its reasons say whether the answer
    passed, and name the false arithmetic when the embedded model states some."""
    from podium.core.models.answer_checks import false_arithmetic

    out = as_json(podium(podium_home, "run", "quick-answer", "--json"))
    [step] = out["steps"]
    reasons = " ".join(step["route"]["reasons"])
    assert step["tier"] == "local" and "cascade: the local answer" in reasons
    wrong = false_arithmetic(out["outputs"]["answer"])
    if wrong:
        assert f"the local answer {wrong}, but no remote model is available" in reasons
    else:
        assert "cascade: the local answer passed" in reasons


def test_document_pipeline_outputs_and_show(podium_home: Path) -> None:
    out = as_json(podium(podium_home, "run", "document-pipeline", "--json"))
    assert out["outputs"]["type"] in ("complaint", "invoice", "news article", "recipe",
                                      "contract")
    assert 0 < out["outputs"]["confidence"] <= 1
    entities = out["outputs"]["entities"]
    assert set(entities) == {"people", "organizations", "dates"}
    assert "Maria Lopez" in entities["people"]  # read from the text, not made up
    assert isinstance(out["outputs"]["summary"], str) and out["outputs"]["summary"]
    shown = as_json(podium(podium_home, "show", out["run_id"], "--json"))
    steps = {s["step_id"]: s for s in shown["steps"]}
    assert list(steps) == ["extract", "classify", "entities", "summarize"]
    for sid in ("classify", "entities", "summarize"):
        assert steps[sid]["model"] == "smollm2" and steps[sid]["tier"] == "local"
        assert steps[sid]["input_tokens"] > 0 and steps[sid]["latency_ms"] > 0
        assert steps[sid]["route"]["reasons"]
    assert steps["extract"]["output"].startswith("From: Maria Lopez")
    text = podium(podium_home, "show", out["run_id"]).stdout
    assert "summarize" in text and "smollm2" in text
    listed = as_json(podium(podium_home, "runs", "--json"))
    assert listed[0]["run_id"] == out["run_id"] and listed[0]["status"] == "succeeded"


def test_human_output_and_live_progress(podium_home: Path) -> None:
    proc = podium(podium_home, "run", "ensemble-vote", "-i", "review=Wonderful, I love it!")
    assert proc.returncode == 0
    assert "verdict:" in proc.stdout
    assert "✓ sentiment" in proc.stderr and "succeeded" in proc.stderr


def test_inputs_from_file_and_at_file(podium_home: Path, tmp_path: Path) -> None:
    doc = tmp_path / "note.html"
    doc.write_text("<html><body><p>Invoice 42 from Acme Ltd, due 1 May.</p>"
                   "<script>evil()</script></body></html>")
    inputs = tmp_path / "inputs.json"
    inputs.write_text(json.dumps({"document": str(doc)}))
    out = as_json(podium(podium_home, "run", "document-pipeline", "--input-file",
                         str(inputs), "--json"))
    assert out["status"] == "succeeded"
    shown = as_json(podium(podium_home, "show", out["run_id"], "--json"))
    assert shown["steps"][0]["output"] == "Invoice 42 from Acme Ltd, due 1 May."


def test_failed_run_exits_1_and_keeps_completed_work(podium_home: Path,
                                                     recipe_file: Any) -> None:
    path = recipe_file("""
[steps.ok]
kind = "template"
template = "fine"
[steps.bad]
kind = "template"
template = "{{ steps.ok.nothing.here }}"
[steps.after]
kind = "template"
template = "{{ steps.bad }}"
""")
    proc = podium(podium_home, "run", str(path), "--json")
    assert proc.returncode == 1
    out = as_json(proc)
    assert out["status"] == "failed" and out["outputs"] == {}
    steps = {s["step_id"]: s for s in out["steps"]}
    assert steps["ok"]["status"] == "succeeded" and steps["ok"]["output"] == "fine"
    assert steps["after"]["status"] == "skipped" and "'bad' failed" in steps["after"]["reason"]
    assert "Traceback" not in proc.stderr


def test_bad_recipe_exits_2_with_location(podium_home: Path, recipe_file: Any) -> None:
    path = recipe_file('[steps.a]\nkind = "llm"\npromt = "hi"\n')
    for args in (["run", str(path)], ["recipe", "check", str(path)]):
        proc = podium(podium_home, *args)
        assert proc.returncode == 2
        assert f"{path}:3: steps.a.promt: unknown field 'promt'" in proc.stderr
        assert "did you mean 'prompt'?" in proc.stderr
        assert "Traceback" not in proc.stderr
    assert podium(podium_home, "recipe", "check", "triage").returncode == 0


def test_expected_errors_have_hints_not_tracebacks(podium_home: Path) -> None:
    cases = [
        (["run", "no-such-recipe"], 2, "no-such-recipe: no recipe by that name"),
        (["run", "triage", "-i", "mesage=hi"], 2, "did you mean 'message'?"),
        (["run", "triage", "-i", "oops"], 2, "expected NAME=VALUE"),
        (["show", "zzzz"], 2, "no run 'zzzz'"),
        (["resume", "zzzz"], 2, "no run 'zzzz'"),
    ]
    for args, code, text in cases:
        proc = podium(podium_home, *args)
        assert proc.returncode == code, (args, proc.stderr)
        assert text in proc.stderr, (args, proc.stderr)
        assert "Traceback" not in proc.stderr


def test_recipe_schema_models_and_list(podium_home: Path) -> None:
    schema = as_json(podium(podium_home, "recipe", "schema"))
    assert schema["title"] == "Podium recipe" and "steps" in schema["properties"]
    models = as_json(podium(podium_home, "models", "--json"))
    assert models[0]["name"] == "smollm2" and models[0]["available"] and models[0]["default"]
    listed = podium(podium_home, "recipe", "list").stdout
    assert "document-pipeline" in listed and "triage" in listed


def test_two_processes_share_one_database(podium_home: Path) -> None:
    env = cli_env(podium_home)
    procs = [subprocess.Popen([PODIUM, "run", "ensemble-vote", "--json", "-q"], env=env,
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    ids = {json.loads(out)["run_id"] for out, _ in results}
    assert len(ids) == 2
    db = sqlite3.connect(podium_home / "podium.db")
    assert db.execute("SELECT COUNT(*) FROM runs WHERE status = 'succeeded'").fetchone()[0] == 2


def test_route_explains_one_or_many(podium_home: Path, tmp_path: Path) -> None:
    out = as_json(podium(podium_home, "route", "--json", "Explain why the sky is blue."))
    assert set(out) == {"model", "tier", "score", "reasons"}
    assert out["tier"] == "local" and 0 <= out["score"] <= 1
    assert any("no remote model" in r for r in out["reasons"])
    prompts = tmp_path / "p.jsonl"
    prompts.write_text('{"prompt": "hi"}\n\n{"prompt": "def f(x):\\n    return x * 2"}\n')
    lines = podium(podium_home, "route", "--file", str(prompts)).stdout.splitlines()
    scores = [json.loads(line)["score"] for line in lines]
    assert len(scores) == 2 and scores[1] > scores[0]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n")
    proc = podium(podium_home, "route", "--file", str(bad))
    assert proc.returncode == 2 and "line 1" in proc.stderr


def test_chat_is_stored_and_resumable(podium_home: Path) -> None:
    def chat(*args: str, lines: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([PODIUM, "chat", "--max-tokens", "16", *args], input=lines,
                              capture_output=True, text=True, timeout=120,
                              env=cli_env(podium_home), cwd=ROOT)

    first = chat(lines="What is the capital of France? Answer briefly.\n")
    assert first.returncode == 0, first.stderr
    assert "smollm2 (local)" in first.stdout and "tok" in first.stdout
    chat_id = first.stdout.split()[1]
    again = chat("--resume", chat_id, lines="And of Italy?\n")
    assert again.returncode == 0 and "2 messages" in again.stdout
    db = sqlite3.connect(podium_home / "podium.db")
    roles = [r[0] for r in db.execute("SELECT role FROM messages WHERE chat_id = ? "
                                      "ORDER BY position", (chat_id,))]
    assert roles == ["user", "assistant", "user", "assistant"]
    tokens = db.execute("SELECT SUM(input_tokens) FROM messages WHERE chat_id = ?",
                        (chat_id,)).fetchone()[0]
    assert tokens > 0
    missing = chat("--resume", "nope", lines="")
    assert missing.returncode == 2 and "no chat 'nope'" in missing.stderr


def test_models_add_writes_a_valid_config(podium_home: Path, model_path: Path) -> None:
    added = podium(podium_home, "models", "add", "copy", "--path", str(model_path))
    assert added.returncode == 0, added.stderr
    remote = podium(podium_home, "models", "add", "gpt", "--base-url",
                    "https://api.example.invalid/v1", "--key-env", "PODIUM_NO_SUCH_KEY")
    assert remote.returncode == 0
    listed = {m["name"]: m for m in as_json(podium(podium_home, "models", "--json"))}
    assert listed["copy"]["available"] and listed["copy"]["tier"] == "local"
    assert listed["gpt"]["state"] == "no key: set PODIUM_NO_SUCH_KEY"
    config = (podium_home / "config.toml").read_text()
    broken = podium(podium_home, "models", "add", "bad", "--provider", "openai")
    assert broken.returncode == 2 and "needs `base_url`" in broken.stderr
    assert (podium_home / "config.toml").read_text() == config  # rolled back
    again = podium(podium_home, "models", "add", "copy", "--path", str(model_path))
    assert again.returncode == 2 and "already in the catalog" in again.stderr


def test_models_check_reports_reachability(podium_home: Path) -> None:
    (podium_home / "config.toml").write_text(
        '[models.down]\nprovider = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n')
    rows = {m["name"]: m for m in as_json(podium(podium_home, "models", "--check", "--json"))}
    assert rows["down"]["state"].startswith("unreachable") and not rows["down"]["available"]
    assert rows["smollm2"]["state"] == "ready"
    # A port past 65535 is unreachable too, not a traceback.
    (podium_home / "config.toml").write_text(
        '[models.odd]\nprovider = "openai"\nbase_url = "http://127.0.0.1:99999/v1"\n')
    odd = podium(podium_home, "models", "--check", "--json")
    assert odd.returncode == 1 and "Traceback" not in odd.stderr, odd.stderr
    assert as_json(odd)[-1]["state"].startswith("unreachable")


def test_models_check_asks_each_server_with_its_own_wire_format(podium_home: Path,
                                                                 monkeypatch: Any) -> None:
    from tests.servers import ScriptServer

    monkeypatch.setenv("PODIUM_GOOD_KEY", "sk-good")
    monkeypatch.setenv("PODIUM_BAD_KEY", "refused")
    with ScriptServer([]) as server:
        (podium_home / "config.toml").write_text(
            f'[models.gpt]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            'key_env = "PODIUM_GOOD_KEY"\n'
            f'[models.claude]\nprovider = "anthropic"\nbase_url = "{server.url}"\n'
            'key_env = "PODIUM_GOOD_KEY"\n'
            f'[models.stale]\nprovider = "openai"\nbase_url = "{server.url}/v1"\n'
            'key_env = "PODIUM_BAD_KEY"\n')
        checked = podium(podium_home, "models", "--check", "--json")
    rows = {m["name"]: m for m in as_json(checked)}
    assert rows["gpt"]["state"] == rows["claude"]["state"] == "reachable"
    assert rows["stale"]["state"] == "key refused" and not rows["stale"]["available"]
    heads = [(g["path"], {k.lower(): v for k, v in g["headers"].items()}) for g in server.gets]
    assert sorted((p, h.get("authorization") or h.get("x-api-key")) for p, h in heads) == [
        ("/v1/models", "Bearer refused"), ("/v1/models", "Bearer sk-good"),
        ("/v1/models", "sk-good")]
    assert all(h.get("anthropic-version") for _, h in heads if "x-api-key" in h)
    assert "sk-good" not in checked.stdout + checked.stderr
