"""User tools: typed Python functions become `ToolDef`s, their hints and docstring the
JSON Schema a model sees.

`tool_from_function(fn)` reads the signature: `str`, `int`, `float`, `bool`, `list[...]`,
`dict`, `Literal[...]`, an `Enum`, `X | None` (or `Optional[X]`), a union of plain
types, a `TypedDict` or a pydantic model (as nested objects), and defaults (which make
a parameter optional). The docstring's first paragraph describes the tool, and its
Google-style `Args:` section describes each parameter. The schemas use only the
keywords Podium's validator and the local grammar both follow (type, or a list of
types, enum, properties, required, items, additionalProperties), never `$ref` or
`anyOf`. What cannot become a schema (an untyped parameter, `*args`, `Any`, a class
of its own) is a `ConfigError` naming the function and the parameter, as is a
docstring that documents a parameter the function does not have.

`tools_from_module(spec)` loads a module by file path (`tools/mine.py`) or dotted
name (`mypkg.tools`); its tools are the functions listed in its `__all__` (one rule,
explicit: a helper function is never exposed by accident).
"""

from __future__ import annotations

import enum
import hashlib
import importlib
import importlib.util
import inspect
import json
import re
import sys
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError

from podium.core.errors import ConfigError, ToolError
from podium.core.tools.base import Approval, ToolDef

TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
_PLAIN: dict[Any, str] = {str: "string", int: "integer", float: "number", bool: "boolean",
                          type(None): "null"}
_SECTION = re.compile(r"^(Args|Arguments|Parameters|Returns|Return|Raises|Yields|Examples?|"
                      r"Notes?|Attributes|See Also):\s*$")


class SchemaProblem(Exception):
    """A type hint that cannot become JSON Schema (turned into a `ConfigError`)."""


def tool_from_function(fn: Callable[..., Any], *, name: str | None = None,
                       approval: Approval = "auto") -> ToolDef:
    """`fn` as a tool: its hints and docstring become the schema; sync or async."""
    what = getattr(fn, "__qualname__", repr(fn))
    tool_name: str = name or str(getattr(fn, "__name__", ""))
    if not TOOL_NAME.fullmatch(tool_name):
        raise ConfigError(f"tool function {what}: '{tool_name}' cannot name a tool",
                          "use letters, digits, '_' and '-', up to 64 characters")
    try:
        signature = inspect.signature(fn)
        hints = typing.get_type_hints(fn, include_extras=False)
    except (NameError, TypeError, ValueError) as e:
        raise ConfigError(f"tool function {what}: its type hints cannot be read: {e}",
                          "define the types it names at the module's top level") from None
    summary, documented = parse_docstring(inspect.getdoc(fn) or "")
    properties: dict[str, Any] = {}
    required: list[str] = []
    adapters: dict[str, TypeAdapter[Any]] = {}
    positional: list[str] = []
    for pname, param in signature.parameters.items():
        where = f"tool function {what}: parameter '{pname}'"
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            star = "*" if param.kind == param.VAR_POSITIONAL else "**"
            raise ConfigError(f"{where} is {star}{pname}, which a schema cannot describe",
                              "give the tool named, typed parameters")
        if pname not in hints:
            raise ConfigError(f"{where} has no type hint",
                              f"annotate it, e.g. {pname}: str")
        try:
            schema = json_schema(hints[pname])
        except SchemaProblem as e:
            raise ConfigError(f"{where}: {e}", "use str, int, float, bool, list[...], "
                              "Literal[...], an Enum, X | None, a TypedDict or a pydantic "
                              "model") from None
        adapter = _adapter(hints[pname])
        if adapter is not None:
            adapters[pname] = adapter
        if pname in documented:
            schema["description"] = documented[pname]
        if param.default is param.empty:
            required.append(pname)
        elif _is_json(param.default):
            schema["default"] = param.default
        properties[pname] = schema
        if param.kind == param.POSITIONAL_ONLY:
            positional.append(pname)
    unknown = sorted(set(documented) - set(properties))
    if unknown:
        raise ConfigError(f"tool function {what}: its docstring describes "
                          f"'{unknown[0]}', which is not one of its parameters",
                          "parameters: " + (", ".join(properties) or "none"))
    parameters: dict[str, Any] = {"type": "object", "properties": properties,
                                  "additionalProperties": False}
    if required:
        parameters["required"] = required

    def arguments_of(given: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        values: dict[str, Any] = {}
        for key, value in given.items():
            if key not in adapters:  # checked against its schema already
                values[key] = value
                continue
            try:
                values[key] = adapters[key].validate_python(value)
            except ValidationError as e:
                problem = e.errors()[0]
                raise ToolError(f"{tool_name}: argument '{key}': {problem['msg']}") from None
        args = [values.pop(p) for p in positional if p in values]
        return args, values

    if inspect.iscoroutinefunction(fn):
        async def run_async(given: dict[str, Any]) -> str:
            args, kwargs = arguments_of(given)
            return as_text(await fn(*args, **kwargs))

        run: Callable[[dict[str, Any]], Any] = run_async
    else:
        def run_sync(given: dict[str, Any]) -> str:
            args, kwargs = arguments_of(given)
            return as_text(fn(*args, **kwargs))

        run = run_sync
    return ToolDef(name=tool_name, description=summary or tool_name.replace("_", " "),
                   parameters=parameters, run=run, approval=approval)


def _adapter(hint: Any) -> TypeAdapter[Any] | None:
    """What turns a JSON argument into the value the function expects (an Enum member,
    a pydantic model...). None where pydantic cannot (a `typing.TypedDict` before Python
    3.12): the JSON value, already checked against the schema, is passed as it is."""
    try:
        return TypeAdapter(hint)
    except Exception:
        return None


def as_text(value: Any) -> str:
    """A function's result as the text an agent reads: strings as they are, anything
    else as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, ensure_ascii=False, default=str)


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return False
    return True


def json_schema(hint: Any) -> dict[str, Any]:
    """The JSON Schema of a type hint, or `SchemaProblem` saying why there is none."""
    if hint in _PLAIN:
        return {"type": _PLAIN[hint]}
    origin, args = get_origin(hint), get_args(hint)
    if origin is Literal:
        kinds = {_PLAIN.get(type(a)) for a in args}
        if None in kinds:
            raise SchemaProblem(f"Literal values must be str, int, float or bool: {hint}")
        schema: dict[str, Any] = {"enum": list(args)}
        if len(kinds) == 1:
            schema["type"] = kinds.pop()
        return schema
    if origin in (Union, types.UnionType):
        members = [json_schema(a) for a in args]
        if all(set(m) == {"type"} and isinstance(m["type"], str) for m in members):
            return {"type": [m["type"] for m in members]}
        nulls = [m for m in members if m == {"type": "null"}]
        if len(nulls) == 1 and len(members) == 2:  # Optional of a richer schema
            other = dict(next(m for m in members if m != {"type": "null"}))
            if isinstance(other.get("type"), str):
                other["type"] = [other["type"], "null"]
                if "enum" in other:
                    other["enum"] = [*other["enum"], None]
                return other
        raise SchemaProblem(f"{_name(hint)} is a union a tool schema cannot describe "
                            "(only plain types, or one type | None)")
    if hint is list or origin is list:
        items = json_schema(args[0]) if args else None
        return {"type": "array", **({"items": items} if items else {})}
    if hint is dict or origin is dict:
        if args and args[0] is not str:
            raise SchemaProblem("a dict's keys must be str (JSON object keys are)")
        values = json_schema(args[1]) if args else None
        return {"type": "object", **({"additionalProperties": values} if values else {})}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        choices = tuple(m.value for m in hint)
        return json_schema(Literal.__getitem__(choices))
    if isinstance(hint, type) and issubclass(hint, BaseModel):
        fields = {n: (f.annotation, f.is_required(), f.description)
                  for n, f in hint.model_fields.items()}
        return _object(hint, fields)
    if typing.is_typeddict(hint):
        hints = typing.get_type_hints(hint)
        keys = getattr(hint, "__required_keys__", frozenset(hints))
        return _object(hint, {n: (h, n in keys, None) for n, h in hints.items()})
    raise SchemaProblem(f"{_name(hint)} has no JSON Schema here")


def _object(cls: type, fields: dict[str, tuple[Any, bool, str | None]]) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    for fname, (hint, _, description) in fields.items():
        try:
            properties[fname] = json_schema(hint)
        except SchemaProblem as e:
            raise SchemaProblem(f"{cls.__name__}.{fname}: {e}") from None
        if description:
            properties[fname]["description"] = description
    required = [n for n, (_, needed, _) in fields.items() if needed]
    return {"type": "object", "properties": properties, "additionalProperties": False,
            **({"required": required} if required else {})}


def _name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """(what the function does: the text before any section, parameter -> description
    from a Google-style `Args:` section)."""
    lines = doc.splitlines()
    summary: list[str] = []
    described: dict[str, str] = {}
    section: str | None = None
    current: str | None = None
    indent = 0
    for line in lines:
        header = _SECTION.match(line.strip())
        if header and (len(line) - len(line.lstrip())) <= 4:
            section, current = header.group(1), None
            continue
        if section is None:
            summary.append(line.strip())
            continue
        if section not in ("Args", "Arguments", "Parameters") or not line.strip():
            continue
        here = len(line) - len(line.lstrip())
        entry = re.match(r"\s*\*{0,2}([A-Za-z_]\w*)\s*(?:\([^)]*\))?\s*:\s*(.*)$", line)
        if entry and (current is None or here <= indent):
            current, indent = entry.group(1), here
            described[current] = entry.group(2).strip()
        elif current is not None:  # a continuation line
            described[current] = f"{described[current]} {line.strip()}".strip()
    text = " ".join(" ".join(summary).split())
    return text, described


def tools_from_module(spec: str, *, base: str | Path | None = None,
                      approval: Approval = "auto") -> list[ToolDef]:
    """The tools of a module: the functions in its `__all__`. `spec` is a file path
    (`.py`, relative to `base` or the current folder) or a dotted module name."""
    module = _load(spec, Path(base) if base is not None else Path.cwd())
    names = getattr(module, "__all__", None)
    if names is None:
        raise ConfigError(f"tool module {spec} has no __all__",
                          "list the functions that are tools in __all__ = [...]")
    tools = []
    for fname in names:
        fn = getattr(module, fname, None)
        if fn is None:
            raise ConfigError(f"tool module {spec}: __all__ names '{fname}', which it "
                              "does not define")
        if not inspect.isfunction(fn) and not inspect.iscoroutinefunction(fn):
            raise ConfigError(f"tool module {spec}: '{fname}' in __all__ is not a function",
                              "only functions can be tools")
        tools.append(tool_from_function(fn, approval=approval))
    if not tools:
        raise ConfigError(f"tool module {spec} lists no tools in __all__")
    return tools


def _load(spec: str, base: Path) -> types.ModuleType:
    is_path = spec.endswith(".py") or "/" in spec or "\\" in spec
    if not is_path:
        try:
            return importlib.import_module(spec)
        except ModuleNotFoundError as e:
            if e.name is not None and spec.startswith(e.name):
                raise ConfigError(f"no tool module '{spec}'",
                                  "give a module Python can import, or a file path "
                                  "ending in .py") from None
            raise ConfigError(f"tool module {spec} could not be imported: {e}") from None
        except Exception as e:
            raise ConfigError(f"tool module {spec} failed while importing: "
                              f"{type(e).__name__}: {e}") from None
    path = (base / Path(spec).expanduser()).resolve()
    if not path.is_file():
        raise ConfigError(f"no tool module file {path}",
                          "the path is relative to the recipe (or the current folder)")
    name = "podium_tools_" + hashlib.sha256(str(path).encode()).hexdigest()[:12]
    found = importlib.util.spec_from_file_location(name, path)
    if found is None or found.loader is None:
        raise ConfigError(f"{path} cannot be loaded as a Python module")
    module = importlib.util.module_from_spec(found)
    sys.modules[name] = module  # what its hints name must be found while they are read
    try:
        found.loader.exec_module(module)
    except Exception as e:
        sys.modules.pop(name, None)
        raise ConfigError(f"tool module {path} failed while importing: "
                          f"{type(e).__name__}: {e}") from None
    return module
