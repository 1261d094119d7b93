"""Every file location Podium uses, in one place.

`PODIUM_HOME` puts everything (data, config, cache) under one folder, which is how
tests and portable installs keep off the real home folder. `PODIUM_DB` names the
database file alone.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "podium"


def home() -> Path | None:
    """The `PODIUM_HOME` override, if set."""
    value = os.environ.get("PODIUM_HOME")
    return Path(value).expanduser() if value else None


def data_dir() -> Path:
    """Where the database lives."""
    if (h := home()) is not None:
        return h
    import platformdirs

    return Path(platformdirs.user_data_dir(APP))


def config_dir() -> Path:
    """Where `config.toml` and the keys file live."""
    if (h := home()) is not None:
        return h
    import platformdirs

    return Path(platformdirs.user_config_dir(APP))


def db_path() -> Path:
    """The SQLite file: `PODIUM_DB`, else `<data dir>/podium.db`."""
    if value := os.environ.get("PODIUM_DB"):
        return Path(value).expanduser()
    return data_dir() / "podium.db"


def config_file() -> Path:
    """The user's `config.toml`."""
    return config_dir() / "config.toml"


def recipes_dir() -> Path:
    """The user's own recipes folder (besides `./recipes`)."""
    return config_dir() / "recipes"


def shipped_data(name: str) -> Path:
    """A data file shipped inside Podium (`core/data/`), e.g. the router's examples."""
    return Path(__file__).resolve().parent / "data" / name


def shipped_recipes_dir() -> Path:
    """The recipes shipped with Podium: `recipes/` beside `core/`, in a clone and in the
    installed package alike."""
    return Path(__file__).resolve().parent.parent / "recipes"
