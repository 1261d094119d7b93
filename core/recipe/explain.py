"""Pydantic's and tomllib's complaints about a recipe, in words a recipe author can act
on: what is wrong, at which `file:line: field`, and a hint ("did you mean ...")."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from podium.core.errors import RecipeError, did_you_mean
from podium.core.recipe.schema import InputSpec, Recipe
from podium.core.recipe.toml_lines import KeyLines
from podium.core.steps import registry
from podium.core.tools.config import McpServer, ToolsConfig


def toml_syntax_error(e: tomllib.TOMLDecodeError, path: str, source: str) -> RecipeError:
    message = str(e)
    line = None
    if message.endswith(" (at end of document)"):
        message = message.removesuffix(" (at end of document)") + " at the end of the file"
        line = max(1, source.count("\n") + (0 if source.endswith("\n") else 1))
    # tomllib says "... (at line 3, column 7)"; keep the line, drop the parenthesis.
    if "(at line " in message:
        head, _, tail = message.rpartition(" (at line ")
        try:
            line = int(tail.split(",")[0])
            message = head
        except ValueError:
            pass
    return RecipeError(f"TOML syntax: {message}", "check quotes, brackets and `key = value` "
                       "pairs on that line", file=path, line=line)


def field_name(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc)


@dataclass
class _Located:
    loc: tuple[Any, ...]
    message: str
    hint: str | None


def schema_errors(e: ValidationError, data: dict[str, Any], lines: KeyLines,
                   path: str) -> list[RecipeError]:
    located: list[_Located] = []
    seen: set[tuple[Any, ...]] = set()
    for err in e.errors():
        item = _explain(err, data)
        if item is None or item.loc in seen:
            continue
        seen.add(item.loc)
        located.append(item)
    # `promt = ...` is one mistake, not two: drop "missing 'prompt'" when an unknown
    # field beside it is a close match.
    typos = {x.loc[:-1] + (x.hint.split("'")[1],) for x in located
             if x.message.startswith("unknown field") and x.hint and
             x.hint.startswith("did you mean")}
    located = [x for x in located if not (x.message.startswith("missing required field")
                                          and x.loc in typos)]
    errors = [RecipeError(x.message, x.hint, file=path, line=lines.line_of(x.loc),
                          field=field_name(x.loc)) for x in located]
    return sorted(errors, key=lambda e: e.line or 0)


def _explain(err: Any, data: dict[str, Any]) -> _Located | None:
    """Turn one pydantic error into words a recipe author understands."""
    loc = tuple(err["loc"])
    kind = err["type"]
    # pydantic puts the union tag into the path (steps.x.llm.prompt); drop it.
    kinds = registry.names()
    if len(loc) >= 3 and loc[0] == "steps" and loc[2] in kinds:
        loc = loc[:2] + loc[3:]
    if len(loc) >= 5 and loc[0] == "steps" and loc[2] == "step" and loc[3] in kinds:
        loc = loc[:3] + loc[4:]
    owner = _owner(loc, data)
    if kind == "extra_forbidden":
        name = str(loc[-1])
        allowed = _allowed_fields(loc, data)
        hint = did_you_mean(name, allowed, ("Known fields: " + ", ".join(sorted(allowed)))
                            if allowed else None, always=True)
        return _Located(loc, f"unknown field '{name}'", hint)
    if kind == "missing":
        name = str(loc[-1])
        if loc == ("steps",):
            return _Located(loc, "the recipe has no steps",
                            'add one: [steps.first] kind = "llm" prompt = "..."')
        return _Located(loc, f"missing required field '{name}'",
                        f"add `{name} = ...` to {owner}")
    if kind == "union_tag_invalid" and len(loc) >= 3 and loc[2] == "step":
        tag = err.get("ctx", {}).get("tag", "?")
        return _Located(loc + ("kind",), f"a map's step cannot be '{tag}'",
                        "a map runs one " + " or ".join(registry.call_names())
                        + " call per item")
    if kind == "union_tag_invalid":
        tag = err.get("ctx", {}).get("tag", "?")
        hint = did_you_mean(str(tag), kinds, "Kinds: " + ", ".join(kinds), always=True)
        return _Located(loc + ("kind",), f"unknown step kind '{tag}'", hint)
    if kind == "union_tag_not_found":
        return _Located(loc + ("kind",), "missing required field 'kind'",
                        "add `kind = \"llm\"` (or " + ", ".join(kinds[1:]) + f") to {owner}")
    msg = err["msg"]
    if kind == "value_error":
        msg = msg.removeprefix("Value error, ")
    return _Located(loc, msg, _type_hint(loc, err))


def _owner(loc: tuple[Any, ...], data: dict[str, Any]) -> str:
    if len(loc) >= 4 and loc[0] == "steps" and loc[2] == "step":
        return f"[steps.{loc[1]}.step]"
    if len(loc) >= 2 and loc[0] in ("steps", "inputs"):
        return f"[{loc[0]}.{loc[1]}]"
    return "the top of the file"


_TYPE_WORDS = {"int": "a whole number", "float": "a number", "bool": "true or false",
               "string": "a string in quotes", "list": "a list, e.g. [\"a\", \"b\"]",
               "dict": "a table, e.g. { key = \"value\" }"}


def _type_hint(loc: tuple[Any, ...], err: Any) -> str:
    """What the field wants, with an example, for type and range errors."""
    name = str(loc[-1]) if loc else "value"
    kind = str(err["type"])
    ctx = err.get("ctx") or {}
    for key, words in _TYPE_WORDS.items():
        if kind.startswith(key):
            return f"{name} must be {words}"
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        bound = next(iter(ctx.values()), "?")
        sign = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
                "less_than": "<"}[kind]
        return f"{name} must be {sign} {bound}"
    if kind == "literal_error":
        return f"{name} must be one of {ctx.get('expected', 'the allowed values')}"
    if kind in ("too_short", "too_long"):
        return f"{name} has the wrong number of items: {err['msg'].lower()}"
    return f"check the value of {name}"


def _allowed_fields(loc: tuple[Any, ...], data: dict[str, Any]) -> list[str]:
    model: type[BaseModel] | None = None
    if len(loc) == 1:
        model = Recipe
    elif loc[0] == "inputs" and len(loc) == 3:
        model = InputSpec
    elif loc[0] == "tools":
        model = ToolsConfig if len(loc) == 2 else McpServer if len(loc) == 4 else None
    elif loc[0] == "steps" and len(loc) in (3, 4):
        step = data.get("steps", {}).get(loc[1], {})
        nested = len(loc) == 4 and loc[2] == "step"
        if nested:
            step = step.get("step", {}) if isinstance(step, dict) else {}
        name = str(step.get("kind")) if isinstance(step, dict) else ""
        kind = registry.get(name) if name in registry.names() else None
        model = None if kind is None else kind.call if nested else kind.schema
    if model is None:
        return []
    return [f.alias or name for name, f in model.model_fields.items()]
