"""Issue 13, item 14: while a step waits (for the machine's turn at the local model, a
retry, a fallback) a person sees what it waits for, live and in the final lines."""

from __future__ import annotations

import asyncio
import fcntl
import os
import subprocess
import tempfile
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from podium.core.errors import Unavailable
from podium.core.events import Event, StepNote
from podium.core.models.provider import Chunk, ModelRequest, Usage
from podium.core.recipe.load import loads
from podium.tui.progress import Progress
from tests.conftest import PODIUM, ScriptedProvider
from tests.test_engine import RemoteScripted, two_tier_engine


class Flaky(RemoteScripted):
    """A remote model that fails `failures` times, then answers."""

    def __init__(self, name: str, failures: int) -> None:
        super().__init__(name, answer="from far away")
        self.failures = failures

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        if self.failures > 0:
            self.failures -= 1
            raise Unavailable(f"{self.name}: cannot connect")
        yield Chunk(text="from far away")
        yield Chunk(usage=Usage(3, 3), finish_reason="stop")


def run_with(engine: Any, toml: str) -> tuple[list[Event], list[str]]:
    events: list[Event] = []
    lines = Progress(stream=_Lines(), live=False)
    engine.on_event = lambda e: (events.append(e), lines(e))
    asyncio.run(engine.run(loads(toml), {}))
    return events, lines.stream.lines  # type: ignore[attr-defined]


class _Lines:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def write(self, text: str) -> int:
        self.lines.extend(x for x in text.splitlines() if x)
        return len(text)

    def flush(self) -> None:
        pass

    def isatty(self) -> bool:
        return False


def test_a_retry_is_said_while_it_waits() -> None:
    engine = two_tier_engine(ScriptedProvider("small"), Flaky("big", failures=1))
    events, lines = run_with(engine, '[steps.ask]\nkind = "llm"\nmodel = "big"\nprompt = "x"\n')
    notes = [e.text for e in events if isinstance(e, StepNote)]
    assert notes and notes[0].startswith("retrying big in ") and "cannot connect" in notes[0]
    assert any(line.startswith("  … ask: retrying big in") for line in lines)


def test_a_fallback_is_said_live_and_in_the_final_line() -> None:
    engine = two_tier_engine(ScriptedProvider("small", answer="from here"),
                             Flaky("big", failures=99))
    events, lines = run_with(engine, '[steps.ask]\nkind = "llm"\nroute = "remote"\n'
                                     'prompt = "x"\n')
    notes = [e.text for e in events if isinstance(e, StepNote)]
    assert any(n.startswith("fell back to small: big: cannot connect") for n in notes)
    final = [line for line in lines if "✓ ask" in line]
    assert final and "fell back to small" in final[0]


@pytest.mark.model
def test_waiting_for_another_process_at_the_local_model_is_said(tmp_path: Path) -> None:
    """Hold the machine's local-model turn here; a `podium run` in another process
    says it waits for it, then runs once the turn is free."""
    lock = Path(tempfile.gettempdir()) / f"podium-llama-{os.getuid()}.lock"
    recipe = tmp_path / "one.toml"
    recipe.write_text('[steps.hi]\nkind = "llm"\nmax_tokens = 4\nprompt = "Say hi."\n')
    env = dict(os.environ, PODIUM_HOME=str(tmp_path / "home"))
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        released = threading.Event()

        def release_soon() -> None:
            time.sleep(3)
            fcntl.flock(handle, fcntl.LOCK_UN)
            released.set()

        threading.Thread(target=release_soon, daemon=True).start()
        done = subprocess.run([PODIUM, "run", str(recipe)], env=env, capture_output=True,
                              text=True, timeout=120)
        released.wait(5)
    assert done.returncode == 0, done.stderr
    assert "waiting for the local model: another Podium process on this machine is " \
        "generating" in done.stderr
