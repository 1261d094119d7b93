"""A batch's rows out of the database: JSON Lines, CSV or Parquet (with pyarrow)."""

from __future__ import annotations

import csv
import io
import json
import sys
from typing import Any

from podium.core.batch.runner import state_of
from podium.core.errors import InputError


def export_records(store: Any, batch_id: str, *, steps: bool = False) -> list[dict[str, Any]]:
    """One record per row, in row order. `steps`: every step's output as well."""
    out = []
    for r in store.batch_rows(batch_id, outputs=True):
        record: dict[str, Any] = {"index": r.index, "key": r.key, "line": r.line,
                                  "status": state_of(r), "run_id": r.run_id,
                                  "inputs": r.inputs, "outputs": r.outputs, "error": r.error}
        if steps:
            record["steps"] = {s.step_id: s.output for s in store.get_steps(r.run_id)} \
                if r.run_id else {}
        out.append(record)
    return out


def _cell(value: Any) -> Any:
    """A value for a flat table: text stays text, the rest is JSON."""
    return value if value is None or isinstance(value, str | int | float) else \
        json.dumps(value, ensure_ascii=False)


def flat(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Records with one column per input (`input.NAME`) and output (`output.NAME`)."""
    rows = []
    for r in records:
        row = {k: r[k] for k in ("index", "key", "line", "status", "run_id", "error")}
        for group, prefix in (("inputs", "input."), ("outputs", "output."),
                              ("steps", "step.")):
            for name, value in (r.get(group) or {}).items():
                row[prefix + name] = _cell(value)
        rows.append(row)
    return rows


def write_export(store: Any, batch_id: str, fmt: str, path: str | None, *,
                 steps: bool = False) -> int:
    """Write the batch's rows as `fmt` to `path` (stdout when None); returns how many."""
    records = export_records(store, batch_id, steps=steps)
    if fmt == "jsonl":
        text = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in records)
        _put(text, path)
    elif fmt == "csv":
        rows = flat(records)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        _put(buffer.getvalue(), path)
    else:
        try:
            import pyarrow as pa
            import pyarrow.parquet as pq
        except ImportError:
            raise InputError("parquet export needs pyarrow, which is not installed",
                             "pip install pyarrow (or export --format jsonl / csv)") from None
        if not path:
            raise InputError("parquet is binary: give a file", "add -o rows.parquet")
        rows = flat(records)
        columns = list(dict.fromkeys(k for row in rows for k in row))
        table = pa.Table.from_pylist([{c: (None if row.get(c) is None else
                                           row[c] if c in ("index", "line") else str(row[c]))
                                       for c in columns} for row in rows])
        pq.write_table(table, path)
    return len(records)


def _put(text: str, path: str | None) -> None:
    if path is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with open(path, "w", encoding="utf-8", newline="") as f:
        f.write(text)
