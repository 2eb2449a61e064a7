"""One renderer for every command: (columns, rows) -> rich table | json | csv."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import os
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

NUMERIC = ("int", "float", "ms", "pct", "bytes", "seconds")
ATOMIC_KINDS = (*NUMERIC, "ts", "bool")  # shown whole on one line, never wrapped or folded


@dataclass(frozen=True)
class Column:
    """One output column: JSON/CSV key, table header (with units), and how to show values."""

    key: str
    header: str
    kind: str = "text"  # text | int | float | ms | pct | bytes | seconds | ts | bool
    wrap: bool = True  # False for names people copy: kept on one line while the table fits
    # a rich style for some of the column's values as shown, e.g. {"CRITICAL": "bold red"}
    styles: Mapping[str, str] | None = None
    in_table: bool = True  # False: in CSV only (a figure machines want and people can spare)
    in_csv: bool = True  # False: for people only (a bar drawn in characters)


@dataclass
class Table:
    columns: Sequence[Column]
    rows: Sequence[dict[str, Any]]
    title: str | None = None
    footer: Sequence[str] = ()
    shown_empty: bool = True  # False: people do not see it without rows (CSV keeps its header)
    summary: Sequence[dict[str, Any]] = ()  # rows for people after the rows (totals): not CSV


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
    """JSON-safe scalars: ISO 8601 timestamps with offset, floats for numerics, null for a
    NaN or an infinity (a NaN response time is bad data; strict JSON parsers reject NaN)."""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    if isinstance(value, float) and not math.isfinite(value):
        return None  # JSON has no NaN nor Infinity (RFC 8259): null, as strict parsers need
    if isinstance(value, decimal.Decimal):
        if not value.is_finite():
            return None
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


def local_time(instant: dt.datetime, zone: str, seconds: bool = False) -> str:
    """An instant as people read it in a report's footer: its wall-clock time in `zone` (an
    IANA name, source.timezone), to the minute (or second), with the zone's abbreviation."""
    from zoneinfo import ZoneInfo

    local = instant.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M{':%S' if seconds else ''} %Z}"


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def printable(text: str) -> str:
    """Control characters (ESC, BEL, C1 codes) shown as escapes: data such as an endpoint name
    must never drive the terminal."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def render(result: Result, fmt: str, console: Console) -> None:
    """Print a Result in the chosen format. JSON and CSV are written as they are, whatever the
    console's width (write_data); tables for people are laid out to the console's width (see
    `fit`)."""
    if fmt in ("json", "csv"):
        write_data(result, fmt, console.file)
        return
    from rich.text import Text

    shown = [t for t in result.tables if t.rows or t.shown_empty]
    for i, table in enumerate(shown):
        if table.title:
            console.print(Text(printable(table.title), style="bold"))
        _print_table(console, table)
        for line in table.footer:
            console.print(Text(line, style="dim"))
        if table.footer or i + 1 < len(shown):
            console.print()
    for message in result.messages:
        console.print(Text(message), soft_wrap=True)  # never fold SQL people copy


def write_data(result: Result, fmt: str, file: Any) -> None:
    """A Result as JSON or CSV on `file`: no Console, so a command read by a program never
    imports rich (tens of milliseconds of its start-up)."""
    if fmt == "json":
        document = to_jsonable(result.json_document())
        file.write(json.dumps(document, indent=2, allow_nan=False) + "\n")
    else:
        buf = io.StringIO()
        for i, table in enumerate(result.tables):
            if i:
                buf.write("\n")
            writer = csv.writer(buf, lineterminator="\n")
            columns = [c for c in table.columns if c.in_csv]
            writer.writerow([c.key for c in columns])
            for row in table.rows:
                writer.writerow([_csv_value(row.get(c.key)) for c in columns])
        file.write(buf.getvalue())
    file.flush()


# --- laying a table out for people -----------------------------------------------------------

GAP = 2  # cells apart: one space of padding and the blank divider of box.SIMPLE_HEAD
NAME_MIN = 16  # a name (Column.wrap False) folds into lines no narrower than this
PROSE_MIN = 12  # prose wraps into lines no narrower than this (or its own width)
_ATOMIC_TYPES = (int, float, decimal.Decimal, dt.date, dt.time, dt.timedelta)


@dataclass(frozen=True)
class Fit:
    """One column's text and its two widths: `natural` (every cell and the header on one
    line) and `minimum` (numbers, times and header words whole; names and prose folded no
    narrower than NAME_MIN and PROSE_MIN)."""

    column: Column
    header: str
    cells: list[str]
    kind: str  # "atomic" (never wraps) | "prose" (wraps first) | "name" (folds last)
    numeric: bool
    natural: int
    minimum: int


def measure(column: Column, rows: Sequence[dict[str, Any]]) -> Fit:
    """How wide a column wants to be. A column is atomic when its kind says so (numbers,
    timestamps, booleans) or when every value is a number, date or time: such cells never
    wrap. Other text is a name (wrap=False) or prose."""
    from rich.cells import cell_len

    values = [row.get(column.key) for row in rows]
    cells = [format_cell(v, column.kind) for v in values]
    present = [v for v in values if v is not None]
    numeric = column.kind in NUMERIC or _all(present, (int, float, decimal.Decimal))
    atomic = column.kind in ATOMIC_KINDS or _all(present, _ATOMIC_TYPES)
    kind = "atomic" if atomic else "prose" if column.wrap else "name"
    header = printable(column.header)
    lines = [ln for c in cells for ln in (c.splitlines() or [""])]
    widest = max((cell_len(ln) for ln in lines), default=0)
    header_word = max((cell_len(w) for w in header.split()), default=1)
    natural = max(widest, cell_len(header), 1)
    if kind == "atomic":
        minimum = max(widest, header_word)
    else:
        floor = NAME_MIN if kind == "name" else PROSE_MIN
        minimum = max(min(widest, floor), header_word)
    return Fit(column, header, cells, kind, numeric, natural, min(natural, minimum))


def _all(values: list[Any], types: tuple[type, ...]) -> bool:
    """Whether there are values and each is one of `types` (a bool is not a number here)."""
    return bool(values) and all(isinstance(v, types) and not isinstance(v, bool) for v in values)


def fit(columns: Sequence[Fit], width: int) -> list[int] | None:
    """Widths for the columns within `width` (gaps included), or None when even their
    minimums do not fit (the table is then shown one record per block). Space is taken first
    from prose, then from the headers of numbers (their words wrap), last from names; when
    names fold all the same, the headers of numbers stay on one line."""
    available = width - GAP * (len(columns) - 1)
    wrapped = _take(columns, available, ("prose", "atomic", "name"))
    if wrapped is None:
        return None
    if any(w < c.natural for w, c in zip(wrapped, columns, strict=True) if c.kind == "name"):
        return _take(columns, available, ("prose", "name", "atomic")) or wrapped
    return wrapped


def _take(columns: Sequence[Fit], available: int, order: Sequence[str]) -> list[int] | None:
    widths = [c.natural for c in columns]
    minimums = [c.minimum for c in columns]
    for kind in order:
        excess = sum(widths) - available
        if excess <= 0:
            break
        group = [i for i, c in enumerate(columns) if c.kind == kind]
        widths = _narrow(widths, minimums, group, excess)
    return widths if sum(widths) <= available else None


def _narrow(widths: list[int], minimums: list[int], group: list[int], excess: int) -> list[int]:
    """Take `excess` from the widest columns of `group` first (never below their minimums):
    the largest common cap that frees enough, then what it freed too much given back."""

    def capped(cap: int) -> list[int]:
        return [max(minimums[i], min(w, cap)) if i in group else w for i, w in enumerate(widths)]

    total = sum(widths)
    if not group or total - sum(capped(0)) < excess:
        return capped(0)
    low, high = 0, max(widths)  # total - sum(capped(low)) >= excess, capped(high) frees none
    while high - low > 1:
        mid = (low + high) // 2
        if total - sum(capped(mid)) >= excess:
            low = mid
        else:
            high = mid
    narrowed = capped(low)
    surplus = total - sum(narrowed) - excess
    for i in group:
        if surplus <= 0:
            break
        if narrowed[i] == low < widths[i]:
            narrowed[i] += 1
            surplus -= 1
    return narrowed


def _print_table(console: Console, table: Table) -> None:
    from rich import box
    from rich.table import Table as RichTable
    from rich.text import Text

    rows = [*table.rows, *table.summary]
    fits = [measure(c, rows) for c in table.columns if c.in_table]
    widths = fit(fits, console.width)
    if widths is None:
        _print_blocks(console, rows, fits)
        return
    rich_table = RichTable(
        box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, collapse_padding=True
    )
    for f, w in zip(fits, widths, strict=True):
        rich_table.add_column(
            Text(f.header, no_wrap=False, overflow="fold"),
            justify="right" if f.numeric else "left",
            width=w,
            no_wrap=f.kind == "atomic",
            overflow="fold",
        )
    for r in range(len(rows)):
        rich_table.add_row(*(_cell(f, r) for f in fits))
    console.print(rich_table)


def _print_blocks(console: Console, rows: Sequence[dict[str, Any]], fits: Sequence[Fit]) -> None:
    """One record per block, "Header  value" a line: for tables too wide for the console even
    with every name folded. Values fold within the console's width."""
    from rich.cells import cell_len
    from rich.table import Table as RichTable
    from rich.text import Text

    label = min(max(cell_len(f.header) for f in fits), max(console.width // 3, 1))
    grid = RichTable.grid(padding=(0, GAP))
    grid.add_column(width=label, style="bold", overflow="fold")
    grid.add_column(width=max(console.width - label - GAP, 1), overflow="fold")
    for r in range(len(rows)):
        if r:
            grid.add_row("", "")
        for f in fits:
            grid.add_row(Text(f.header), _cell(f, r))
    console.print(grid)


def _cell(f: Fit, row: int) -> Text:
    from rich.text import Text

    text, styles = f.cells[row], f.column.styles
    return Text(text, style=styles.get(text, "") if styles else "")


def _csv_value(value: Any) -> Any:
    value = to_jsonable(value)
    if isinstance(value, list | dict):
        return json.dumps(value)
    return "" if value is None else value
