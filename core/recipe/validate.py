"""Check a JSON value against JSON Schema's common keywords: type, enum, const,
properties, required, additionalProperties, items, minItems / maxItems, minimum /
maximum (and exclusive), minLength / maxLength and pattern. Used where a person types
JSON by hand (reviews, edits), so the messages name the path of each problem."""

from __future__ import annotations

import re
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
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        out.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if "const" in schema and not _same(value, schema["const"]):
        out.append(f"{where}: must be {schema['const']!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        out.extend(_number(value, schema, where))
    if isinstance(value, str):
        out.extend(_string(value, schema, where))
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name in schema.get("required", []):
            if name not in value:
                out.append(f"{where}: missing required field '{name}'")
        for name, sub in value.items():
            if name in properties:
                out.extend(problems(sub, properties[name], f"{where}.{name}"))
            elif extra is False:
                out.append(f"{where}: unexpected field '{name}'")
            elif isinstance(extra, dict):
                out.extend(problems(sub, extra, f"{where}.{name}"))
    if isinstance(value, list):
        if isinstance(schema.get("items"), dict):
            for i, sub in enumerate(value):
                out.extend(problems(sub, schema["items"], f"{where}[{i}]"))
        if len(value) < schema.get("minItems", 0):
            out.append(f"{where}: at least {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{where}: at most {schema['maxItems']} items")
    return out


def _same(a: Any, b: Any) -> bool:
    """Equal as JSON values: true is not 1, and 1 is 1.0."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def _number(value: float, schema: dict[str, Any], where: str) -> list[str]:
    out = []
    for key, word in (("minimum", ">="), ("maximum", "<="), ("exclusiveMinimum", ">"),
                      ("exclusiveMaximum", "<")):
        limit = schema.get(key)
        if not isinstance(limit, int | float):
            continue
        ok = {">=": value >= limit, "<=": value <= limit, ">": value > limit,
              "<": value < limit}[word]
        if not ok:
            out.append(f"{where}: must be {word} {limit}")
    return out


def _string(value: str, schema: dict[str, Any], where: str) -> list[str]:
    out = []
    if len(value) < schema.get("minLength", 0):
        out.append(f"{where}: at least {schema['minLength']} characters")
    if "maxLength" in schema and len(value) > schema["maxLength"]:
        out.append(f"{where}: at most {schema['maxLength']} characters")
    pattern = schema.get("pattern")
    if isinstance(pattern, str):
        try:
            if re.search(pattern, value) is None:
                out.append(f"{where}: does not match the pattern {pattern!r}")
        except re.error:
            pass  # a pattern Python cannot read: not a reason to refuse a person's edit
    return out


def _name(value: Any) -> str:
    for kind in _TYPES:
        if _is(value, kind):
            return kind
    return type(value).__name__
