"""The one place a front end's engine is built: settings -> providers -> hub -> engine.
The CLI uses it, and so will the Textual app; tests pass their own store and settings."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from podium.core.config import Settings, load_settings
from podium.core.events import Event
from podium.core.models.calibrate import active_fit, outcome_keeper
from podium.core.models.hub import Budget
from podium.core.run.engine import Engine
from podium.core.store import Store
from podium.providers.registry import build_hub
from podium.providers.tool_source import provided_tools


def make_engine(store: Store, settings: Settings | None = None, *,
                on_event: Callable[[Event], None] | None = None) -> Engine:
    """An engine on `store` with the models `settings` (default: config.toml) describe,
    the router fit of the local model configured (with this store's judged
    comparisons and the outcomes its runs saw, and keeping new ones), and config's
    budget caps."""
    settings = settings or load_settings()
    hub = build_hub(settings)
    hub.fit = active_fit(store, settings)
    hub.on_outcome = outcome_keeper(store, settings)
    if settings.budget_per_run is not None or settings.budget_per_day is not None or \
            settings.tokens_per_run is not None:
        midnight = dt.datetime.combine(dt.date.today(), dt.time()).timestamp()
        hub.budget = Budget.from_settings(settings, store.cost_since(midnight))
    return Engine(store, hub, max_parallel=settings.max_parallel, on_event=on_event,
                  tool_sources=provided_tools)
