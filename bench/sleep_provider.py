"""A benchmark provider: answers "ok" after a fixed sleep, like a model whose latency
is all waiting (a remote call, or a local server busy elsewhere). It implements the
`core.provider.Provider` protocol so the engine treats it like any other model; it
proves nothing about real backends, only about the engine around them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Literal

from podium.core.models.provider import Chunk, ModelRequest, Usage


class SleepProvider:
    """Sleeps `delay` seconds, then streams "ok" and a final usage chunk."""

    tier: Literal["local", "remote"] = "local"
    supports_schema = False
    supports_tools = False
    needs_key = False
    key_env_var: str | None = None

    def __init__(self, name: str = "bench", delay: float = 0.05) -> None:
        self.name = name
        self.delay = delay

    async def stream(self, request: ModelRequest) -> AsyncIterator[Chunk]:
        """Wait, then answer."""
        await asyncio.sleep(self.delay)
        yield Chunk(text="ok")
        yield Chunk(usage=Usage(10, 1), finish_reason="stop")
