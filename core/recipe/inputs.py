"""A run's inputs: checked against the recipe's `[inputs]`, typed, files read in.

A `file` input becomes `{path, name, text}`, stored with the run, so a resume or a
re-run days later sees the same text even if the file changed or went away.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from podium.core.errors import InputError, did_you_mean
from podium.core.recipe.schema import InputSpec, Recipe

MAX_FILE_BYTES = 5_000_000


def resolve_inputs(recipe: Recipe, given: dict[str, Any], *,
                   base_dir: str | None = None) -> dict[str, Any]:
    """Validate and convert `given` (strings from a command line are fine)."""
    unknown = sorted(set(given) - set(recipe.inputs))
    if unknown:
        name = unknown[0]
        raise InputError(f"recipe '{recipe.name}' has no input '{name}'", did_you_mean(
            name, recipe.inputs, "inputs: " + (", ".join(recipe.inputs) or "none")))
    out: dict[str, Any] = {}
    recipe_dir = Path(recipe.path).parent if recipe.path != "<recipe>" else Path.cwd()
    for name, spec in recipe.inputs.items():
        if name in given:
            out[name] = convert(name, spec, given[name], Path(base_dir) if base_dir else
                                Path.cwd())
        elif spec.default is not None:
            out[name] = convert(name, spec, spec.default, recipe_dir)
        elif spec.is_required:
            raise InputError(f"missing input '{name}'" + (f" ({spec.description})"
                                                          if spec.description else ""),
                             f"pass it with -i {name}=VALUE")
        else:
            out[name] = None
    return out


def convert(name: str, spec: InputSpec, value: Any, base: Path) -> Any:
    """One input value to its declared type."""
    kind = spec.type
    if kind == "file":
        if isinstance(value, dict) and "text" in value:
            return value  # already read (a resumed or re-run run)
        return read_file(name, base / str(value))
    if isinstance(value, str) and len(value) > MAX_FILE_BYTES:
        raise InputError(f"input '{name}' is {len(value):,} characters, over the limit of "
                         f"{MAX_FILE_BYTES:,}", "a model reads far less than that: pass an "
                         "excerpt, or split the work with a map step over parts")
    if kind == "string":
        return value if isinstance(value, str) else json.dumps(value)
    if isinstance(value, str):
        try:
            value = json.loads(value) if kind in ("list", "object", "number", "integer") else \
                value.strip().lower()
        except ValueError:  # JSONDecodeError, or a number past Python's digit limit
            raise InputError(f"input '{name}' must be {kind}: cannot parse {value[:40]!r}",
                             "lists and objects are JSON, e.g. -i tags='[\"a\",\"b\"]'") from None
    checks = {
        "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
        "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "list": lambda v: isinstance(v, list),
        "object": lambda v: isinstance(v, dict),
    }
    if kind == "boolean":
        if value in (True, "true", "yes", "1", 1):
            return True
        if value in (False, "false", "no", "0", 0):
            return False
        raise InputError(f"input '{name}' must be true or false, not {value!r}")
    if not checks[kind](value):
        raise InputError(f"input '{name}' must be {kind}, not {type(value).__name__}")
    return value


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._skip = 0

    _BLOCKS = frozenset({"p", "div", "br", "li", "h1", "h2", "h3", "h4", "tr", "table",
                         "ul", "ol", "section", "article", "header", "footer"})

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag in ("script", "style"):
            self._skip += 1
        elif tag in self._BLOCKS:  # <br> has no end tag, so breaks go in at the start
            self.parts.append("\n")
        elif tag in ("td", "th"):
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("script", "style") and self._skip:
            self._skip -= 1
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skip:
            self.parts.append(data)


def read_file(name: str, path: Path) -> dict[str, Any]:
    """Read a text, Markdown, HTML or JSON file as text."""
    if path.is_dir():
        raise InputError(f"input '{name}': {path} is a directory", "pass one file")
    if not path.is_file():
        raise InputError(f"input '{name}': no such file: {path}", "check the path")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InputError(f"input '{name}': {path} is over {MAX_FILE_BYTES // 1_000_000} MB",
                         "pass a smaller file or an excerpt")
    raw = path.read_bytes()
    if b"\x00" in raw[:4096]:
        raise InputError(f"input '{name}': {path} looks binary",
                         "pass a text, Markdown, HTML or JSON file")
    text = raw.decode("utf-8", errors="replace")
    if path.suffix.lower() in (".html", ".htm"):
        parser = _Text()
        parser.feed(text)
        text = "".join(parser.parts)
    # Keep paragraphs and indentation (Markdown, code); drop trailing spaces and runs
    # of blank lines.
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in text.splitlines()))
    text = text.strip("\n")
    return {"path": str(path.resolve()), "name": path.name, "text": text}
