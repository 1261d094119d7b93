"""The one retry policy: whether and when to try again after an error.

Retryability is declared by the error's class (`PodiumError.retryable`); the policy
adds the count, jittered exponential backoff, and a cap on how long a server's
`Retry-After` may hold us: past the cap the error stands, so a routed call falls
back and a pinned one fails, in bounded time. Model calls, step attempts and map
items all retry through it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from podium.core.errors import PodiumError, RateLimited

MAX_WAIT_S = 30.0


@dataclass(frozen=True)
class RetryPolicy:
    """`retries` more attempts after the first, the first delay `backoff` seconds,
    doubling each time with jitter; never a wait longer than `max_wait`."""

    retries: int
    backoff: float
    max_wait: float = MAX_WAIT_S

    def delay(self, tries: int, error: PodiumError) -> float | None:
        """Seconds to wait before trying again after failed try number `tries` (0 for
        the first), or None: do not try again."""
        if not error.retryable or tries >= self.retries:
            return None
        wait: float = self.backoff * 2**tries * (0.5 + random.random())
        if isinstance(error, RateLimited) and error.retry_after is not None:
            if error.retry_after > self.max_wait:
                return None  # an hour's wait is a refusal: fall back or fail now
            wait = max(wait, error.retry_after)
        return min(wait, self.max_wait)


# A model call's own retries, inside one step attempt.
CALL_POLICY = RetryPolicy(retries=2, backoff=0.25)
