"""The store: one SQLite file holding everything Podium does (see `database.py`)."""

from core.store.database import Store
from core.store.records import (
    TERMINAL_RUN,
    Finished,
    ReviewRecord,
    RunRecord,
    StepRecord,
    dumps,
    new_run_id,
)

__all__ = ["TERMINAL_RUN", "Finished", "ReviewRecord", "RunRecord", "StepRecord", "Store",
           "dumps", "new_run_id"]
