"""What the `podium` commands share: error display, JSON output, and building the
store, the engine and recipes. Imports nothing heavy at module level."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

F = TypeVar("F", bound=Callable[..., Any])
# Exit codes: 0 succeeded, 1 failed, 2 bad usage / recipe / input, 3 waiting for a
# person (review), 130 cancelled.
EXIT = {"succeeded": 0, "failed": 1, "waiting": 3, "cancelled": 130}


def friendly(fn: F) -> F:
    """Show `PodiumError`s (and the database errors a failing disk causes) as message +
    hint, and exit with their code."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import sqlite3

        from podium.core.errors import PodiumError, RecipeErrors

        try:
            try:
                return fn(*args, **kwargs)
            except sqlite3.Error as e:
                # The store maps what the filesystem does to its writes where they
                # happen; a read that meets a failing disk or a damaged page lands here.
                from podium.core import paths
                from podium.core.store.faults import fault

                mapped = fault(e, paths.db_path())
                if mapped is None:  # not the environment's doing: a bug, shown as one
                    raise
                raise mapped from e
        except PodiumError as e:
            errors = e.errors if isinstance(e, RecipeErrors) else [e]
            for each in errors:
                click.secho(f"error: {each}", fg="red", err=True)
                if each.hint:
                    click.echo(f"hint: {each.hint}", err=True)
            if kwargs.get("as_json"):  # scripts asked for JSON: give them JSON
                emit_json({"status": "error", "error": str(e), "hint": e.hint,
                           "errors": [{"message": str(x), "hint": x.hint} for x in errors]})
            sys.exit(e.exit_code)

    return wrapper  # type: ignore[return-value]


def emit_json(value: Any) -> None:
    """One JSON document on stdout."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def open_store() -> Any:
    from podium.core.store import Store

    return Store.open()


def make_engine(store: Any, on_event: Any) -> Any:
    from podium.tui.factory import make_engine as build

    return build(store, on_event=on_event)


def drive(store: Any, start: Callable[[Any], Any], as_json: bool, quiet: bool,
          extra: dict[str, Any] | None = None) -> None:
    """Run the engine coroutine `start(engine)` with live progress, print the run's
    outputs (or one JSON object, with `extra` merged in), and exit with the run's
    status code. `start` may give None: another process runs the run."""
    import asyncio

    from podium.tui.progress import Progress

    progress = Progress(quiet=quiet)
    engine = make_engine(store, progress)
    async def main() -> Any:
        try:
            return await start(engine)
        finally:
            await engine.hub.aclose()

    try:
        with progress:
            result = asyncio.run(main())
    except KeyboardInterrupt:
        rid = progress.run_id or "?"
        click.secho(f"cancelled run {rid}", fg="yellow", err=True)
        click.echo(f"hint: continue with: podium resume {rid}", err=True)
        if as_json:
            emit_json({**(extra or {}), "run_id": rid, "status": "cancelled",
                       "outputs": None})
        sys.exit(130)
    if result is None:
        busy = store.get_run(extra["review"]["run_id"]) if extra and "review" in extra \
            else None
        if as_json:
            emit_json({**(extra or {}), "run_id": busy.id if busy else None,
                       "status": busy.shown_status if busy else None})
        elif busy is not None:
            click.echo(f"run {busy.id} is running in process {busy.pid}, which picks up "
                       "the decision", err=True)
        sys.exit(0)
    run = store.get_run(result.run_id)
    if as_json:
        from podium.tui.views import run_json

        emit_json({**(extra or {}), **run_json(store, run)})
    else:
        from podium.tui.views import print_outputs

        print_outputs(store, run)
    sys.exit(EXIT.get(result.status, 1))


def parse_pairs(pairs: tuple[str, ...], what: str) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"expected NAME=VALUE, got {pair!r}", param_hint=what)
        if value.startswith("@"):  # NAME=@file reads a text value from a file
            try:
                value = Path(value[1:]).read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as e:
                raise click.BadParameter(f"cannot read {value[1:]} as text: {e}",
                                         param_hint=what) from None
        out[name.strip()] = value
    return out


def find_recipe(name: str) -> Path:
    """A recipe by path, or by name in ./recipes, the user's recipes folder or the
    recipes shipped with Podium."""
    from podium.core import paths
    from podium.core.errors import RecipeError, did_you_mean

    p = Path(name)
    if p.exists():
        return p
    stem = p.name.removesuffix(".toml")
    for folder in recipe_folders():
        candidate = folder / f"{stem}.toml"
        if candidate.exists():
            return candidate
    known = sorted({f.stem for d in recipe_folders() for f in d.glob("*.toml")})
    raise RecipeError(f"no recipe by that name (not a file, nor in {paths.recipes_dir()} or "
                      "./recipes)", did_you_mean(stem, known, "list them with: podium "
                                                 "recipe list"), file=name)


def recipe_folders() -> list[Path]:
    """Where recipes are looked up by name, first match wins."""
    from podium.core import paths

    shipped = paths.shipped_recipes_dir()
    folders = [Path("recipes"), paths.recipes_dir(), shipped]
    return [f for f in dict.fromkeys(f.resolve() for f in folders) if f.is_dir()]


def load_checked(name: str) -> Any:
    """Load a recipe and check its models against the catalog."""
    from podium.core.config import load_settings
    from podium.core.recipe import load as recipes

    loaded = recipes.load(find_recipe(name))
    recipes.check_models(loaded, list(load_settings().catalog()))
    return loaded
