"""The one renderer: rich tables for people, JSON and CSV for machines."""

from __future__ import annotations

import datetime as dt
import decimal
import io
import json

import pytest

from epstats_cli.render import Column, Result, Table, format_cell, human_bytes, make_console, render

COLS = [
    Column("endpoint", "Endpoint"),
    Column("requests", "Requests", "int"),
    Column("avg_ms", "Avg ms", "ms"),
    Column("error_rate", "Error rate", "pct"),
    Column("at", "At", "ts"),
]
ROWS = [
    {
        "endpoint": "/a",
        "requests": 1234567,
        "avg_ms": 12.3456,
        "error_rate": 0.01234,
        "at": dt.datetime(2026, 11, 27, 4, 0, tzinfo=dt.timezone.utc),
    },
    {"endpoint": "/b", "requests": 5, "avg_ms": None, "error_rate": 0.0, "at": None},
]


def _render(fmt: str, result: Result) -> str:
    buf = io.StringIO()
    render(result, fmt, make_console(file=buf, width=120))
    return buf.getvalue()


def test_table_for_people() -> None:
    out = _render("table", Result([Table(COLS, ROWS, "Title", ["footer line"])]))
    assert "1,234,567" in out and "12.3" in out and "1.23%" in out and "—" in out
    assert "Title" in out and "footer line" in out
    line = next(ln for ln in out.splitlines() if "/b" in ln)
    # numbers are right-aligned under their header
    header = next(ln for ln in out.splitlines() if "Requests" in ln)
    assert line.index("5 ") + 1 == header.index("Requests") + len("Requests")
    assert "\x1b[" not in out  # not a terminal: no colour codes


def test_json_and_csv_for_machines() -> None:
    doc = json.loads(_render("json", Result([Table(COLS, ROWS)])))
    assert doc["rows"][0]["requests"] == 1234567
    assert doc["rows"][0]["avg_ms"] == 12.3456  # unrounded
    assert doc["rows"][0]["at"] == "2026-11-27T04:00:00+00:00"
    csv_text = _render("csv", Result([Table(COLS, ROWS)]))
    assert csv_text.splitlines()[0] == "endpoint,requests,avg_ms,error_rate,at"
    assert csv_text.splitlines()[2] == "/b,5,,0.0,"
    assert json.loads(_render("json", Result([], {"x": decimal.Decimal("1.50")}))) == {"x": 1.5}


def test_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    console = make_console(file=io.StringIO())
    assert console.no_color


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0 bytes"),
        (8192, "8,192 bytes"),
        (12 * 1024, "12.0 kB"),
        (3.5 * 1024**2, "3.5 MB"),
        (250 * 1024**3, "250 GB"),
    ],
)
def test_human_bytes(n: float, text: str) -> None:
    assert human_bytes(n) == text


def test_format_cell() -> None:
    assert format_cell(True, "bool") == "yes"
    assert format_cell(0.5, "pct") == "50.00%"
    assert format_cell(None, "int") == "—"


def test_control_characters_in_data_never_reach_the_terminal() -> None:
    from epstats_cli.render import format_cell

    assert format_cell("/x\x1b[31mred\x1b]0;title\x07", "text") == (
        "/x\\x1b[31mred\\x1b]0;title\\x07"
    )
    assert format_cell("bell\a ÄÖÜ", "text") == "bell\\x07 ÄÖÜ"
