"""What both wire formats share about tool calls."""

from __future__ import annotations

import json
from typing import Any

from podium.core.errors import BadResponse


def tool_arguments(text: str, where: str) -> dict[str, Any]:
    """A streamed tool call's arguments, parsed once whole: an object, or a retryable
    `BadResponse` (a model that wrote broken JSON may write it right next time)."""
    try:
        value = json.loads(text or "{}")
    except (json.JSONDecodeError, RecursionError):
        raise BadResponse(f"{where}: the arguments are not valid JSON: {text[:80]!r}",
                          "retried automatically") from None
    if not isinstance(value, dict):
        raise BadResponse(f"{where}: the arguments are not a JSON object")
    return value
