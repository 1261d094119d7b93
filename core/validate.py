"""Check a JSON value against the subset of JSON Schema that recipes use
(`core.recipe.check_json_schema`): type, properties, required, enum, items and
additionalProperties. Used where a person types JSON by hand (reviews, edits), so
the messages name the path of each problem."""

from __future__ import annotations

from typing import Any

_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "boolean": (bool,),
    "number": (int, float), "integer": (int,), "null": (type(None),),
}


def _is(value: Any, kind: str) -> bool:
    if kind in ("number", "integer") and isinstance(value, bool):
        return False  # JSON true is not 1
    if kind == "integer" and isinstance(value, float):
        return value.is_integer()
    return isinstance(value, _TYPES.get(kind, (object,)))


def problems(value: Any, schema: dict[str, Any] | None, where: str = "$") -> list[str]:
    """Every way `value` breaks `schema`, as `path: what is wrong`; empty when it fits."""
    if not schema:
        return []
    kind = schema.get("type")
    kinds = kind if isinstance(kind, list) else [kind] if kind else []
    if kinds and not any(_is(value, k) for k in kinds):
        return [f"{where}: expected {' or '.join(kinds)}, got {_name(value)}"]
    out: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{where}: missing required field '{name}'")
        for name, sub in value.items():
            if name in properties:
                out.extend(problems(sub, properties[name], f"{where}.{name}"))
            elif schema.get("additionalProperties") is False:
                out.append(f"{where}: unexpected field '{name}'")
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        for i, sub in enumerate(value):
            out.extend(problems(sub, schema["items"], f"{where}[{i}]"))
    return out


def _name(value: Any) -> str:
    for kind in _TYPES:
        if _is(value, kind):
            return kind
    return type(value).__name__
