"""TOML in, a validated `Recipe` with its plan out, or every problem at once.

A recipe is checked completely before anything runs: the TOML syntax, the schema
(unknown keys, missing fields, wrong types), template syntax, references to steps
and inputs, and cycles. Each problem is reported as `file:line: field: message`
with a hint, so a typo costs one glance, not a failed run.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from podium.core.errors import RecipeError, RecipeErrors, did_you_mean
from podium.core.recipe import check, plan
from podium.core.recipe.explain import field_name, schema_errors, toml_syntax_error
from podium.core.recipe.schema import ModelOptions, Recipe
from podium.core.recipe.toml_lines import KeyLines
from podium.core.steps import kinds as _kinds  # noqa: F401  (importing it registers the built-in kinds)
from podium.core.steps import registry

if TYPE_CHECKING:
    from podium.core.store import RunRecord, Store


ROUTES = ("auto", "local", "remote", "cascade", "judge")


def load(path: str | Path) -> Recipe:
    """Read and validate a recipe file. Raises `RecipeErrors` listing every problem."""
    p = Path(path)
    try:
        source = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RecipeError(f"no such recipe file: {p}", "check the path, or run `podium "
                          "recipe list` to see the shipped recipes", file=str(p)) from None
    except IsADirectoryError:
        raise RecipeError("this is a directory, not a recipe file", "give a recipe file (.toml)",
                          file=str(p)) from None
    except (OSError, UnicodeDecodeError) as e:
        raise RecipeError(f"cannot read recipe: {e}", file=str(p)) from None
    return loads(source, str(p))


def loads(source: str, path: str = "<recipe>", *, checked: bool = False) -> Recipe:
    """Validate recipe TOML text; `path` names it in errors. `checked`: the source is a
    version pinned by a stored run, checked in full when that run was created, so the
    reference checks (which compile every template) are skipped; a resume of a long
    recipe then costs no more than the steps it runs."""
    try:
        data = tomllib.loads(source)
    except tomllib.TOMLDecodeError as e:
        raise toml_syntax_error(e, path, source) from None
    except RecursionError:
        raise RecipeError("TOML nested too deeply to read (brackets or inline tables "
                          "inside one another hundreds of times)",
                          "flatten the structure: use [table] headers", file=path,
                          line=_deepest_line(source)) from None
    lines = KeyLines(source)
    try:
        recipe = registry.recipe_model().model_validate(data)
    except ValidationError as e:
        raise RecipeErrors(schema_errors(e, data, lines, path)) from None
    except RecursionError:
        raise RecipeError("nested too deeply to check (a schema inside itself hundreds of "
                          "times?)", "flatten the structure", file=path,
                          line=_deepest_line(source, 50)) from None
    recipe._source = source
    recipe._path = path
    if not recipe.name:
        recipe.name = Path(path).stem if path != "<recipe>" else "recipe"
    if checked:
        found: list[check.Problem] = []
        deps, governed = check.dependencies(recipe, found, compile=False)
    else:
        found, deps, governed = check.analyse(recipe)
    if found:
        raise RecipeErrors(sorted([
            RecipeError(pr.message, pr.hint, file=path, line=lines.line_of(pr.loc),
                        field=field_name(pr.loc))
            for pr in found
        ], key=lambda e: e.line or 0))
    recipe._plan = plan.build(deps, list(recipe.steps), governed)
    return recipe


def _deepest_line(source: str, limit: int = 100) -> int:
    """The line where brackets and braces first nest past `limit` (strings ignored
    roughly: this only points a person at the place)."""
    depth = 0
    for number, line in enumerate(source.splitlines(), 1):
        for ch in line:
            depth += 1 if ch in "[{" else -1 if ch in "]}" else 0
            if depth > limit:
                return number
    return 1


def json_schema() -> dict[str, Any]:
    """The JSON Schema of the recipe format (for editors and `podium recipe schema`)."""
    schema = registry.recipe_model().model_json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "Podium recipe"
    return schema


def check_models(recipe: Recipe, catalog: list[str]) -> None:
    """Every model a recipe names must be in the catalog (config-dependent, so apart
    from `loads`). Raises `RecipeErrors` with locations."""
    lines = KeyLines(recipe.source)
    known = sorted(catalog)
    problems: list[RecipeError] = []

    def check_one(loc: tuple[Any, ...], name: str | None) -> None:
        if not name or name in catalog or name in ROUTES:
            return
        close = did_you_mean(name, known)
        problems.append(RecipeError(
            f"unknown model '{name}'",
            (f"{close} " if close else "") + "models: " + ", ".join(known)
            + " (add others to config.toml; see `podium models`)",
            file=recipe.path, line=lines.line_of(loc), field=field_name(loc)))

    for sid, step in recipe.steps.items():
        calls: list[tuple[tuple[Any, ...], Any]] = [(("steps", sid), step)]
        nested = registry.of(step).nested
        if nested is not None:
            calls.append((("steps", sid, nested), getattr(step, nested)))
        for base, call in calls:
            if isinstance(call, ModelOptions):
                check_one(base + ("model",), call.model)
                check_one(base + ("route",), call.route)
                for i, fallback in enumerate(call.fallbacks):
                    check_one(base + ("fallbacks", i), fallback)
            for i, model in enumerate(getattr(call, "models", None) or []):
                check_one(base + ("models", i), model)
            if getattr(call, "judge_model", None):
                check_one(base + ("judge_model",), call.judge_model)
    if problems:
        raise RecipeErrors(problems)


def pinned(store: Store, run: RunRecord) -> Recipe:
    """The recipe version a stored run ran (checked in full when the run was made)."""
    _, path, source = store.recipe_source(run.recipe_hash)
    return loads(source, path, checked=True)
