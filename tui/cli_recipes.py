"""`podium recipe check | schema | list`."""

from __future__ import annotations

import sys
from typing import Any

import click

from podium.tui.cli_common import emit_json, friendly, load_checked, recipe_folders
from podium.tui.progress import plural


@click.group()
def recipe() -> None:
    """Check, list and describe recipes."""


def load_recipe(name: str) -> Any:
    """`load_checked`, with a name the file system refuses (too long, say) reported as
    a recipe error like any other missing recipe, not as a traceback."""
    from podium.core.errors import RecipeError

    try:
        return load_checked(name)
    except OSError as e:
        shown = name if len(name) <= 60 else name[:57] + "..."
        raise RecipeError(f"not a recipe file or name: {e.strerror or e}",
                          "give a recipe file, or a name from: podium recipe list",
                          file=shown) from None


@recipe.command("check")
@click.argument("files", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True,
              help="One JSON object: `status` (valid or error), `error`, `hint`, `errors` "
              "and `files`.")
@friendly
def recipe_check(files: tuple[str, ...], as_json: bool) -> None:
    """Validate recipe FILES without running them (exit 0 valid, 2 invalid).

    Problems are shown as `file:line: field: message`, each with a hint.
    """
    from podium.core.errors import RecipeError, RecipeErrors

    checked: list[dict[str, Any]] = []
    problems: list[RecipeError] = []
    for name in files:
        try:
            loaded = load_recipe(name)
        except RecipeError as e:
            errors = e.errors if isinstance(e, RecipeErrors) else [e]
            problems += errors
            checked.append({"file": name, "valid": False, "problems": len(errors)})
            if not as_json:
                for x in errors:
                    click.secho(str(x), fg="red", err=True)
                    if x.hint:
                        click.echo(f"  hint: {x.hint}", err=True)
            continue
        checked.append({"file": name, "valid": True, "steps": len(loaded.steps)})
        if not as_json:
            click.secho(f"ok  {name}: {plural(len(loaded.steps), 'step')}", fg="green")
    if as_json:
        emit_json(check_report(checked, problems))
    sys.exit(2 if problems else 0)


def check_report(checked: list[dict[str, Any]], problems: list[Any]) -> dict[str, Any]:
    """`recipe check --json`: the shape every `--json` error has (README: `status`,
    `error`, `hint`, and `errors` as `run --json` gives them), each problem also with
    its `file`, `line` and `field`, and a line per file checked."""
    if not problems:
        return {"status": "valid", "files": checked}
    first = problems[0]
    return {"status": "error", "error": str(first), "hint": first.hint,
            "errors": [{"message": str(x), "hint": x.hint, "file": x.file, "line": x.line,
                        "field": x.field} for x in problems],
            "files": checked}


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
