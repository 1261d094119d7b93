"""The OpenAI provider against a real OpenAI-compatible server: llama-cpp-python's
own `llama_cpp.server`, serving the embedded model on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from podium.core.models.provider import Message, ModelRequest, collect
from podium.providers.openai import OpenAIProvider


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def server_url(model_path: Path) -> Iterator[str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model",
                             str(model_path), "--model_alias", "smol", "--host", "127.0.0.1",
                             "--port", str(port), "--n_ctx", "2048"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if httpx.get(url + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                err = proc.stderr.read().decode() if proc.stderr else ""
                pytest.fail(f"llama_cpp.server did not start: {err[-500:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.communicate(timeout=30)


def call(url: str, request: ModelRequest) -> tuple[str, int, int]:
    async def main() -> tuple[str, int, int]:
        async with httpx.AsyncClient(timeout=60) as client:
            provider = OpenAIProvider("served", model="smol", base_url=url, client=client,
                                      schema_mode="json_object")
            pieces: list[str] = []
            r = await collect(provider, request, pieces.append)
            assert "".join(pieces) == r.text
            return r.text, r.usage.input_tokens, r.usage.output_tokens
    return asyncio.run(main())


def test_chat_completion_streams_from_a_real_server(server_url: str) -> None:
    text, tokens_in, tokens_out = call(server_url, ModelRequest(
        messages=(Message("user", "What is the capital of France? Answer briefly."),),
        max_tokens=24, temperature=0.0))
    assert "paris" in text.lower()
    assert tokens_in > 0 and tokens_out > 0


def test_json_schema_through_a_real_server(server_url: str) -> None:
    schema = {"type": "object", "required": ["answer"],
              "properties": {"answer": {"type": "string", "enum": ["yes", "no"]}}}
    text, _, _ = call(server_url, ModelRequest(
        messages=(Message("user", "Is water wet? Answer yes or no."),), max_tokens=32,
        temperature=0.0, schema=schema))
    assert json.loads(text)["answer"] in ("yes", "no")
