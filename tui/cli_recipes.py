"""`podium recipe check | schema | list`."""

from __future__ import annotations

import sys
from typing import Any

import click

from podium.tui.cli_common import emit_json, friendly, load_checked, recipe_folders


@click.group()
def recipe() -> None:
    """Check, list and describe recipes."""


@recipe.command("check")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True, help="Problems as JSON.")
@friendly
def recipe_check(files: tuple[str, ...], as_json: bool) -> None:
    """Validate recipe FILES without running them (exit 0 valid, 2 invalid)."""
    from podium.core.errors import RecipeError, RecipeErrors

    report = []
    bad = False
    for name in files:
        try:
            loaded = load_checked(name)
            report.append({"file": name, "valid": True, "steps": len(loaded.steps)})
            if not as_json:
                click.secho(f"ok  {name}: {len(loaded.steps)} steps", fg="green")
        except RecipeError as e:
            bad = True
            errors = e.errors if isinstance(e, RecipeErrors) else [e]
            report.append({"file": name, "valid": False, "errors": [
                {"file": x.file, "line": x.line, "field": x.field, "message": x.message,
                 "hint": x.hint} for x in errors]})
            if not as_json:
                for x in errors:
                    click.secho(str(x), fg="red", err=True)
                    if x.hint:
                        click.echo(f"  hint: {x.hint}", err=True)
    if as_json:
        emit_json(report)
    sys.exit(2 if bad else 0)


@recipe.command("schema")
def recipe_schema() -> None:
    """Print the JSON Schema of the recipe format (for editors)."""
    from podium.core.recipe.load import json_schema

    emit_json(json_schema())


@recipe.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON array.")
def recipe_list(as_json: bool) -> None:
    """Recipes that can be run by name."""
    import tomllib

    seen: dict[str, dict[str, Any]] = {}
    for folder in recipe_folders():
        for f in sorted(folder.glob("*.toml")):
            if f.stem in seen:
                continue
            try:
                description = tomllib.loads(f.read_text()).get("description", "")
            except (OSError, ValueError):
                description = "(unreadable)"
            seen[f.stem] = {"name": f.stem, "path": str(f), "description": description}
    if as_json:
        emit_json(list(seen.values()))
        return
    for r in seen.values():
        click.echo(f"{r['name']:<22} {r['description']}")
