"""Writing result rows for people (a table) and machines (csv, json, jsonl, parquet) to a stream."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, BinaryIO, TextIO

FORMATS = ("table", "csv", "json", "jsonl", "parquet")


def _cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


def write_rows(
    rows: Sequence[dict[str, Any]],
    columns: Sequence[str],
    fmt: str,
    *,
    out: TextIO | None = None,
    title: str | None = None,
    caption: str | None = None,
    max_width: int = 60,
) -> None:
    """Write `rows` (dicts) with `columns` in `fmt` to `out` (stdout by default).

    `title` and `caption` (above and below) are for a table only: machine formats carry rows alone.
    """
    out = out or sys.stdout
    if fmt == "json":
        json.dump([{c: r.get(c) for c in columns} for r in rows], out, default=_json_default,
                  ensure_ascii=False, indent=2)
        out.write("\n")
    elif fmt == "jsonl":
        for r in rows:
            out.write(json.dumps({c: r.get(c) for c in columns}, default=_json_default, ensure_ascii=False))
            out.write("\n")
    elif fmt == "csv":
        writer = csv.writer(out)
        writer.writerow(columns)
        for r in rows:
            writer.writerow([_cell(r.get(c)) for c in columns])
    elif fmt == "parquet":
        _write_parquet(rows, columns, getattr(out, "buffer", None) or sys.stdout.buffer)
    elif fmt == "table":
        _write_table(rows, columns, out, title, caption, max_width)
    else:
        raise ValueError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)


def _write_parquet(rows: Sequence[dict[str, Any]], columns: Sequence[str], stream: BinaryIO) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {c: [_parquet_cell(r.get(c)) for r in rows] for c in columns}
    buf = io.BytesIO()
    pq.write_table(pa.table(data), buf)
    stream.write(buf.getvalue())
    stream.flush()


def _parquet_cell(value: Any) -> Any:
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


def _write_table(rows, columns, out: TextIO, title: str | None, caption: str | None, max_width: int) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, caption=caption, show_lines=False, header_style="bold")
    for c in columns:
        table.add_column(c, overflow="ellipsis", max_width=max_width, no_wrap=True)
    for r in rows:
        # Text, not str: a prompt such as "list[int]" must not be read as rich markup.
        table.add_row(*[Text("" if r.get(c) is None else str(_cell(r.get(c)))) for c in columns])
    width = 200 if not out.isatty() else None
    Console(file=out, width=width).print(table)
