"""The journal of one attempt of a map or an ensemble: finished items are committed in
small groups (within `GROUP_S`, or every `GROUP_MAX` items), as the run loop groups
step results, so a killed process loses at most the items in flight or just
finished, and a burst of quick items costs one commit, not one each."""

from __future__ import annotations

import asyncio
import hashlib
import time
from typing import Any

from podium.core.errors import PodiumError
from podium.core.store import Store, dumps
from podium.core.store.items import ItemRow, KeptItem

GROUP_S = 0.005
GROUP_MAX = 1000


def items_key(step_key: str, feedback: list[tuple[Any, str]]) -> str:
    """The key of a step's items: its cache key (definition, inputs, the outputs it
    reads, the models it may use) and the reviewers' feedback it is made with."""
    if not feedback:
        return step_key
    return hashlib.sha256((step_key + dumps(feedback)).encode()).hexdigest()


class StoredItems:
    """An `ItemJournal` on the store, bound to one attempt of one step."""

    def __init__(self, store: Store, run_id: str, step_id: str, attempt: int,
                 key: str) -> None:
        self.store = store
        self.run_id = run_id
        self.step_id = step_id
        self.attempt = attempt
        self.key = key
        self._rows: list[ItemRow] = []
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def kept(self) -> dict[int, KeptItem]:
        """Items finished earlier (by any attempt) under this key."""
        return self.store.kept_items(self.run_id, self.step_id, self.key)

    def record(self, row: ItemRow) -> None:
        """Keep `row`; commit now if the group is full or old enough, else soon."""
        now = time.monotonic()
        if not self._rows:
            self._since = now
        self._rows.append(row)
        if len(self._rows) >= GROUP_MAX or now - self._since >= GROUP_S:
            self.flush()
        elif self._timer is None:  # the next item may be a long way off
            self._timer = asyncio.get_running_loop().call_later(GROUP_S, self._soon)

    def _soon(self) -> None:
        self._timer = None
        try:
            self.flush()
        except PodiumError:  # kept for the step's last flush, which raises it
            pass

    def flush(self) -> None:
        """Commit what is recorded."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._rows:
            self.store.add_items(self.run_id, self.step_id, self.key, self.attempt,
                                 self._rows)
            self._rows = []
