"""One renderer for every command: (columns, rows) -> rich table | json | csv."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console

NUMERIC = ("int", "float", "ms", "pct", "bytes", "seconds")


@dataclass(frozen=True)
class Column:
    """One output column: JSON/CSV key, table header (with units), and how to show values."""

    key: str
    header: str
    kind: str = "text"  # text | int | float | ms | pct | bytes | seconds | ts | bool
    wrap: bool = True  # False for names people copy: never cut or folded
    styles: tuple[tuple[str, str], ...] = ()  # (shown text, rich style) pairs, e.g. states


@dataclass
class Table:
    columns: Sequence[Column]
    rows: Sequence[dict[str, Any]]
    title: str | None = None
    footer: Sequence[str] = ()


@dataclass
class Result:
    """What a command produced: tables for people, one JSON document for machines."""

    tables: list[Table] = field(default_factory=list)
    document: Any = None
    messages: list[str] = field(default_factory=list)  # extra lines for people, after the tables

    def json_document(self) -> Any:
        if self.document is not None:
            return self.document
        if len(self.tables) == 1:
            return {"rows": list(self.tables[0].rows)}
        return {t.title or f"table{i}": list(t.rows) for i, t in enumerate(self.tables)}


def make_console(no_color: bool = False, file: Any = None, width: int | None = None) -> Console:
    """The one Console a command prints to (injected, so tests can capture it)."""
    from rich.console import Console

    class QuietOnClosedPipe(Console):
        def on_broken_pipe(self) -> None:
            """rich exits 1 here; epstats ends quietly (cli.main: a closed pipe is exit 0)."""
            self.quiet = True
            raise BrokenPipeError

    target = file if file is not None else sys.stdout
    is_tty = hasattr(target, "isatty") and target.isatty()
    if width is None and not is_tty:
        width = max(160, int(os.environ.get("COLUMNS", "0") or 0))
    return QuietOnClosedPipe(
        file=target,
        no_color=no_color or "NO_COLOR" in os.environ,
        width=width,
        highlight=False,
        soft_wrap=False,
    )


def to_jsonable(value: Any) -> Any:
    """JSON-safe scalars: ISO 8601 timestamps with offset, floats for numerics."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    return value


def human_bytes(n: float) -> str:
    """Sizes like pg_size_pretty: 8192 bytes, 12 kB, 3.4 MB, 1.2 GB."""
    if n < 10 * 1024:
        return f"{int(n):,} bytes"
    for unit in ("kB", "MB", "GB", "TB"):
        n /= 1024
        if n < 1024 or unit == "TB":
            return f"{n:,.1f} {unit}" if n < 100 else f"{n:,.0f} {unit}"
    raise AssertionError("unreachable")


def format_cell(value: Any, kind: str) -> str:
    """How a value reads in a table for people."""
    if value is None:
        return "—"
    if kind == "int":
        return f"{int(value):,}"
    if kind == "float":
        return f"{float(value):,.2f}"
    if kind == "ms":
        return f"{float(value):,.1f}"
    if kind == "seconds":
        return f"{float(value):,.2f}"
    if kind == "pct":
        return f"{float(value) * 100:.2f}%"
    if kind == "bytes":
        return human_bytes(float(value))
    if kind == "bool":
        return "yes" if value else "no"
    if kind == "ts" and isinstance(value, dt.datetime):
        return value.isoformat(sep=" ", timespec="seconds")
    return printable(str(value))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Control characters (ESC, BEL, C1 codes) shown as escapes: data such as an endpoint name
    must never drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render(result: Result, fmt: str, console: Console) -> None:
    """Print a Result in the chosen format."""
    if fmt == "json":
        console.file.write(json.dumps(to_jsonable(result.json_document()), indent=2) + "\n")
        console.file.flush()
        return
    if fmt == "csv":
        buf = io.StringIO()
        for i, table in enumerate(result.tables):
            if i:
                buf.write("\n")
            writer = csv.writer(buf, lineterminator="\n")
            writer.writerow([c.key for c in table.columns])
            for row in table.rows:
                writer.writerow([_csv_value(row.get(c.key)) for c in table.columns])
        console.file.write(buf.getvalue())
        console.file.flush()
        return
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    for table in result.tables:
        rich_table = RichTable(
            title=table.title,
            title_justify="left",
            title_style="bold",
            box=box.SIMPLE_HEAD,
        )
        for col in table.columns:
            rich_table.add_column(
                col.header,
                justify="right" if col.kind in NUMERIC else "left",
                no_wrap=col.kind in NUMERIC or not col.wrap,
            )
        for row in table.rows:
            rich_table.add_row(*(_cell(row.get(c.key), c) for c in table.columns))
        console.print(rich_table)
        for line in table.footer:
            console.print(Text(line, style="dim"))
        if table.footer:
            console.print()
    for message in result.messages:
        console.print(Text(message), soft_wrap=True)  # never fold SQL people copy


def _cell(value: Any, column: Column) -> Any:
    """A table cell: the shown text, in the column's style for that text (if any)."""
    from rich.text import Text

    shown = format_cell(value, column.kind)
    return Text(shown, style=dict(column.styles).get(shown, ""))


def _csv_value(value: Any) -> Any:
    value = to_jsonable(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "" if value is None else value
