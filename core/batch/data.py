"""A dataset read into rows of recipe inputs: JSON Lines, CSV, or a folder of files.

Each row keeps where it came from (its line, or its file's name), so a problem is
reported where a person can find it. A row that cannot be read (a malformed JSON
line, a CSV record with too many fields) becomes a row with a `problem`: it is
stored and reported, and the rest run. Problems with the whole file (it is not
there, it is empty, a CSV lacks a column the recipe needs) are `InputError`s
before anything is stored.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.core.errors import InputError
from podium.core.recipe.inputs import read_file
from podium.core.recipe.schema import Recipe

JSONL = (".jsonl", ".ndjson")
CSV = (".csv", ".tsv")
FOLDER_KEY = "file"  # `--map file=INPUT` names the input a folder's files fill


@dataclass
class DataRow:
    """One row of a dataset: the recipe inputs it gives, or why it cannot be read."""

    index: int
    key: str  # how a person finds it: "line 12", or a file's name
    line: int | None
    values: dict[str, Any] | None
    problem: str | None = None


@dataclass
class Dataset:
    """The rows of a dataset, and the columns no recipe input takes (ignored)."""

    path: Path
    rows: list[DataRow]
    unused: list[str] = field(default_factory=list)


def read_dataset(path: str | Path, recipe: Recipe, mapping: dict[str, str] | None = None,
                 *, limit: int | None = None) -> Dataset:
    """Read `path` (a .jsonl or .csv file, or a folder) into rows for `recipe`.
    `mapping` renames columns to inputs (`{"body": "message"}`)."""
    p = Path(path)
    mapping = dict(mapping or {})
    for column, name in mapping.items():
        if name not in recipe.inputs:
            raise InputError(f"--map {column}={name}: recipe '{recipe.name}' has no input "
                             f"'{name}'", "inputs: " + (", ".join(recipe.inputs) or "none"))
    if not p.exists():
        raise InputError(f"no such file or folder: {p}",
                         "DATA is a .jsonl or .csv file, or a folder of files")
    if p.is_dir():
        rows = list(_folder(p, recipe, mapping, limit))
        unused: list[str] = []
    elif p.suffix.lower() in JSONL:
        rows, unused = _jsonl(p, recipe, mapping, limit)
    elif p.suffix.lower() in CSV:
        rows, unused = _csv(p, recipe, mapping, limit)
    else:
        raise InputError(f"{p}: cannot tell the format from '{p.suffix or 'no suffix'}'",
                         "name it .jsonl (one JSON object a line) or .csv (a header row), "
                         "or pass a folder of files")
    if not rows:
        raise InputError(f"{p} has no rows" if not p.is_dir() else f"{p} has no files",
                         "nothing to run: check the file" if not p.is_dir() else
                         "put the files to process in it")
    return Dataset(p, rows, unused)


def _inputs_of(recipe: Recipe, record: dict[str, Any], mapping: dict[str, str],
               base: Path) -> tuple[dict[str, Any], set[str]]:
    """The recipe inputs a record gives (renamed by `mapping`), and the columns unused.
    A relative path for a `file` input is taken from the dataset's folder."""
    values: dict[str, Any] = {}
    unused = set()
    for column, value in record.items():
        name = mapping.get(column, column)
        if name not in recipe.inputs:
            unused.add(column)
            continue
        if value is None or value == "":  # an empty cell: the input's default applies
            continue
        if recipe.inputs[name].type == "file" and isinstance(value, str) and \
                not Path(value).is_absolute():
            value = str((base / value).resolve())
        values[name] = value
    return values, unused


def _jsonl(p: Path, recipe: Recipe, mapping: dict[str, str],
           limit: int | None) -> tuple[list[DataRow], list[str]]:
    rows: list[DataRow] = []
    unused: set[str] = set()
    for number, text in enumerate(_lines(p), start=1):
        if limit is not None and len(rows) >= limit:
            break
        if not text.strip():
            continue
        key, index = f"line {number}", len(rows)
        try:
            record = json.loads(text)
        except ValueError as e:
            msg = getattr(e, "msg", str(e))
            rows.append(DataRow(index, key, number, None, f"line {number}: not valid JSON: "
                                f"{msg}"))
            continue
        if not isinstance(record, dict):
            rows.append(DataRow(index, key, number, None, f"line {number}: a JSON "
                                f"{type(record).__name__}, not an object of inputs"))
            continue
        values, extra = _inputs_of(recipe, record, mapping, p.parent)
        unused |= extra
        rows.append(DataRow(index, key, number, values))
    if unused and recipe.inputs and not any(r.values for r in rows):
        raise InputError(f"{p}: no key of its objects is an input of recipe '{recipe.name}' "
                         f"(inputs: {', '.join(recipe.inputs)}; keys: {', '.join(sorted(unused))})",
                         "name the keys after the inputs, or map them: --map KEY=INPUT")
    return rows, sorted(unused)


def _lines(p: Path) -> Iterator[str]:
    try:
        with p.open(encoding="utf-8") as f:
            yield from f
    except UnicodeDecodeError as e:
        raise InputError(f"{p} is not UTF-8 text ({e.reason} at byte {e.start})",
                         "save it as UTF-8") from None
    except OSError as e:
        raise InputError(f"cannot read {p}: {e.strerror}") from None


def _csv(p: Path, recipe: Recipe, mapping: dict[str, str],
         limit: int | None) -> tuple[list[DataRow], list[str]]:
    lines = _lines(p)
    reader = csv.reader(lines, delimiter="\t" if p.suffix.lower() == ".tsv" else ",")
    try:
        header = next(reader)
    except StopIteration:
        return [], []
    except csv.Error as e:
        raise InputError(f"{p}: line 1: cannot read the header: {e}") from None
    header = [h.strip() for h in header]
    header[0] = header[0].lstrip("\ufeff")  # a byte-order mark from a spreadsheet
    given = {mapping.get(h, h) for h in header}
    if recipe.inputs and not given & set(recipe.inputs):
        raise InputError(f"{p}: no column is an input of recipe '{recipe.name}' (inputs: "
                         f"{', '.join(recipe.inputs)}); the header is: {', '.join(header)}",
                         "name the columns after the inputs, or map them: "
                         "--map COLUMN=INPUT")
    for name, spec in recipe.inputs.items():
        if spec.is_required and name not in given:
            column = next((c for c, n in mapping.items() if n == name), name)
            raise InputError(f"{p}: no column '{column}' for the required input '{name}'; "
                             f"the header is: {', '.join(header)}",
                             f"add the column, or map one: --map COLUMN={name}")
    rows: list[DataRow] = []
    unused: set[str] = set()
    last = reader.line_num  # the header's last line
    while limit is None or len(rows) < limit:
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as e:
            rows.append(DataRow(len(rows), f"line {last + 1}", last + 1, None,
                                f"line {last + 1}: {e}"))
            last = reader.line_num
            continue
        number, last = last + 1, reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        key = f"line {number}"
        if len(record) != len(header):
            rows.append(DataRow(len(rows), key, number, None,
                                f"line {number}: {len(record)} fields, the header has "
                                f"{len(header)}"))
            continue
        values, extra = _inputs_of(recipe, dict(zip(header, record, strict=True)), mapping,
                                   p.parent)
        unused |= extra
        rows.append(DataRow(len(rows), key, number, values))
    return rows, sorted(unused)


def folder_input(recipe: Recipe, mapping: dict[str, str]) -> str:
    """The input each file of a folder fills: `--map file=NAME`, else the recipe's one
    `file` input, else its one required text input."""
    if FOLDER_KEY in mapping:
        return mapping[FOLDER_KEY]
    files = [n for n, s in recipe.inputs.items() if s.type == "file"]
    texts = [n for n, s in recipe.inputs.items() if s.type == "string" and s.is_required]
    for candidates in (files, texts):
        if len(candidates) == 1:
            return candidates[0]
    raise InputError(f"a folder fills one input per file, and recipe '{recipe.name}' has "
                     + (f"several that could take it: {', '.join(files or texts)}"
                        if files or texts else "no file or text input"),
                     "say which: --map file=INPUT" if files or texts else
                     "give a .jsonl or .csv of inputs instead")


def _folder(p: Path, recipe: Recipe, mapping: dict[str, str],
            limit: int | None) -> Iterator[DataRow]:
    name = folder_input(recipe, mapping)
    as_file = recipe.inputs[name].type == "file"
    files = sorted(f for f in p.iterdir() if f.is_file() and not f.name.startswith("."))
    for index, f in enumerate(files[:limit] if limit is not None else files):
        if as_file:
            yield DataRow(index, f.name, None, {name: str(f.resolve())})
            continue
        try:
            yield DataRow(index, f.name, None, {name: read_file(name, f)["text"]})
        except InputError as e:
            yield DataRow(index, f.name, None, None, f"{f.name}: {e.message}")
