"""Values typed by a person (a review edit, a hand edit, a settled step), shaped like
a step's output: each kind says how (`StepKind.parse_value`); most take JSON checked
against the step's schema where the output is structured, and text elsewhere."""

from __future__ import annotations

import json
from typing import Any

from podium.core.errors import ReviewError
from podium.core.recipe import validate
from podium.core.steps import registry


def parse_value(step: Any, text: str, original: Any = None, *, where: str) -> Any:
    """`text` as a value of `step`'s output, or a `ReviewError` saying what is wrong."""
    text = text.rstrip("\n")
    parser = registry.of(step).parse_value or typed_value
    return parser(step, text, original, where)


def typed_value(step: Any, text: str, original: Any, where: str) -> Any:
    """JSON checked against the step's `schema` where its output is structured (it has
    a schema, or the output it replaces was JSON), else the text itself."""
    schema = getattr(step, "output_schema", None)
    if schema is None and not isinstance(original, dict | list):
        return text
    value = json_value(text, where)
    fail_on(validate.problems(value, schema), where)
    return value


def json_value(text: str, where: str) -> Any:
    """Parsed JSON, or a `ReviewError` pointing at the place it breaks."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise ReviewError(f"{where}: not valid JSON: {e.msg} (line {e.lineno}, column "
                          f"{e.colno})", "this step's output is JSON; keep its shape") from None


def fail_on(problems: list[str], where: str) -> None:
    """Raise what is wrong with a value, if anything."""
    if problems:
        raise ReviewError(f"{where}: the value does not fit the step's schema: "
                          + "; ".join(problems[:5]), "fix those fields and try again")


def label_value(labels: list[str], text: str, where: str) -> str:
    """One of `labels`, typed by a person."""
    label = text.strip()
    if label not in labels:
        raise ReviewError(f"{where}: '{label}' is not one of the labels",
                          "labels: " + ", ".join(labels))
    return label
