"""The store: one SQLite file holding everything Podium does (see `database.py`)."""

from podium.core.store.database import Store
from podium.core.store.records import (
    TERMINAL_RUN,
    Finished,
    ReviewRecord,
    RunRecord,
    Status,
    StepRecord,
    dumps,
    new_run_id,
)

__all__ = ["TERMINAL_RUN", "Finished", "ReviewRecord", "RunRecord", "Status", "StepRecord", "Store",
           "dumps", "new_run_id"]
