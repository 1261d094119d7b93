"""The embedded model's answers with their token probabilities, as the cascade sees them.

`build.py --confidence` asks the embedded model every prompt once more, the way the
labels were made (the same call, greedy) but asking for `CONFIDENCE_TOP_LOGPROBS`
alternatives per token, and caches the answers in `local_confidence.json`, so the fit
and `bench/routing.py` need no model. Features come from the functions the engine
uses (`core.routing.confidence_features`, `answer_confidence`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from podium.core.models.provider import Message, ModelRequest, TokenLogprob

HERE = Path(__file__).resolve().parent
CACHE = HERE / "local_confidence.json"
ANSWER_TOKENS = 64


class Answer:
    """One cached local answer: its text, finish reason and token probabilities."""

    def __init__(self, raw: dict[str, Any]) -> None:
        self.text: str = raw["text"]
        self.finish_reason: str | None = raw["finish_reason"]
        self.output_tokens: int = raw["output_tokens"]
        self.logprobs = tuple(TokenLogprob(t, lp, top) for t, lp, top in raw["tokens"])


def load_answers() -> tuple[dict[str, Answer], dict[str, Any]]:
    """id -> cached answer, and the cache's header (model, settings, seconds)."""
    data = json.loads(CACHE.read_text(encoding="utf-8"))
    answers = {k: Answer(v) for k, v in data.pop("answers").items()}
    return answers, data


def request_for(prompt: str, system: str) -> ModelRequest:
    """The request the answers were made with."""
    return ModelRequest((Message("system", system), Message("user", prompt)),
                        temperature=0.0, max_tokens=ANSWER_TOKENS)
