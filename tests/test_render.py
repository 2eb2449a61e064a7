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


def test_json_is_strict_a_nan_or_an_infinity_is_null() -> None:
    """JSON has no NaN nor Infinity: a NaN response time (bad data in a numeric column) must
    not make the document one that strict parsers reject."""
    rows = [
        {"endpoint": "/nan", "avg_ms": float("nan"), "max_ms": float("inf")},
        {"endpoint": "/dec", "avg_ms": decimal.Decimal("NaN"), "max_ms": decimal.Decimal("-Inf")},
    ]
    cols = [Column("endpoint", "Endpoint"), Column("avg_ms", "Avg"), Column("max_ms", "Max")]
    text = _render("json", Result([Table(cols, rows)], {"rows": rows, "p": [float("-inf")]}))

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    doc = json.loads(text, parse_constant=refuse)
    assert [r["avg_ms"] for r in doc["rows"]] == [None, None]
    assert [r["max_ms"] for r in doc["rows"]] == [None, None]
    assert doc["p"] == [None]


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


# --- nothing cut at any width ----------------------------------------------------------------

LONG_ENDPOINT = "/api/v1/" + "".join(chr(97 + (i * 7) % 26) for i in range(5000))
LONG_INDEX = "idx_requests_endpoint_timestamp_status_response_time_covering_x"  # 63 bytes
WIDE_COLS = [
    Column("endpoint", "Endpoint", wrap=False),
    Column("index", "Index", wrap=False),
    Column("requests", "Requests", "int"),
    Column("avg_ms", "Avg ms", "ms"),
    Column("max_ms", "Max ms", "ms"),
    Column("error_rate", "Error rate", "pct"),
    Column("size", "Size", "bytes"),
    Column("day", "Day"),  # dates inferred: never wrapped
    Column("detail", "Detail"),
]
WIDE_ROWS = [
    {
        "endpoint": LONG_ENDPOINT,
        "index": LONG_INDEX,
        "requests": 123456789,
        "avg_ms": 98765.4321,
        "max_ms": 1234567.8,
        "error_rate": 0.123456,
        "size": 12 * 1024**3,
        "day": dt.date(2026, 11, 27),
        "detail": "the index was built concurrently and is valid; scans since the last reset",
    },
    {
        "endpoint": "/api/short",
        "index": "idx_requests_timestamp",
        "requests": 5,
        "avg_ms": None,
        "max_ms": 0.25,
        "error_rate": 0.0,
        "size": 8192,
        "day": dt.date(2026, 1, 2),
        "detail": "ok",
    },
]
NUMBERS = ["123,456,789", "98,765.4", "1,234,567.8", "12.35%", "12.0 GB", "0.2", "0.00%", "5"]


def _at(width: int, result: Result, fmt: str = "table") -> str:
    buf = io.StringIO()
    render(result, fmt, make_console(file=buf, width=width))
    return buf.getvalue()


@pytest.mark.parametrize("width", [60, 80, 200])
def test_names_and_numbers_are_never_cut(width: int) -> None:
    from tests.layout_check import assert_fits, assert_number, assert_whole

    out = _at(width, Result([Table(WIDE_COLS, WIDE_ROWS, "Wide", ["a footer"])]))
    assert_fits(out, width)
    assert_whole(out, LONG_ENDPOINT, LONG_INDEX, "/api/short", "idx_requests_timestamp")
    assert_whole(out, "2026-11-27", "2026-01-02", "12.0 GB", "8,192 bytes")
    assert_whole(out, str(WIDE_ROWS[0]["detail"]))
    assert_number(out, *NUMBERS)


@pytest.mark.parametrize("width", [60, 80, 200])
def test_report_top_with_a_5000_character_endpoint(width: int) -> None:
    """The endpoint folds in its cell; every number of the row stays on its first line."""
    from tests.layout_check import assert_fits, assert_number, assert_whole, plain_lines

    cols = [Column("endpoint", "Endpoint", wrap=False), *WIDE_COLS[2:6]]
    out = _at(width, Result([Table(cols, WIDE_ROWS, "Top 2 endpoints by requests")]))
    assert_fits(out, width)
    assert_whole(out, LONG_ENDPOINT, "/api/short")
    assert_number(out, *NUMBERS[:4])
    lines = plain_lines(out)
    assert any(ln.startswith("────") for ln in lines[:4])  # a table, even at 60 columns
    first = next(ln for ln in lines if ln.startswith("/api/v1/"))
    assert all(n in first for n in NUMBERS[:4]), first  # beside the endpoint's first piece


def test_a_table_that_fits_is_one_line_a_row() -> None:
    from tests.layout_check import plain_lines

    rows = [dict(WIDE_ROWS[1], endpoint=f"/api/v1/e{i}") for i in range(3)]
    out = _at(200, Result([Table(WIDE_COLS, rows)]))
    lines = plain_lines(out)
    assert len(lines) == 2 + 3, out  # header, rule, one line per row
    assert lines[0].split() == [
        "Endpoint", "Index", "Requests", "Avg", "ms", "Max", "ms", "Error", "rate", "Size",
        "Day", "Detail",
    ]  # fmt: skip


def test_too_narrow_for_the_columns_shows_one_record_per_block() -> None:
    from tests.layout_check import plain_lines

    out = _at(40, Result([Table(WIDE_COLS, WIDE_ROWS[1:])]))
    lines = [ln.rstrip() for ln in plain_lines(out)]
    assert lines[0].split(None, 1) == ["Endpoint", "/api/short"]
    assert any(ln.split() == ["Requests", "5"] for ln in lines)
    assert any(ln.split() == ["Error", "rate", "0.00%"] for ln in lines)


def test_fit_takes_from_prose_then_headers_then_names() -> None:
    from epstats_cli.render import fit, measure

    rows = [{"name": "n" * 30, "n": 1234567, "prose": "word " * 20}]
    fits = [
        measure(Column("name", "Name", wrap=False), rows),
        measure(Column("n", "Many requests", "int"), rows),
        measure(Column("prose", "Why"), rows),
    ]
    assert [f.natural for f in fits] == [30, 13, 100]
    assert [f.minimum for f in fits] == [16, 9, 12]
    assert fit(fits, 200) == [30, 13, 100]
    assert fit(fits, 30 + 13 + 20 + 4) == [30, 13, 20]  # prose wraps first
    assert fit(fits, 30 + 9 + 12 + 4) == [30, 9, 12]  # then the header of the number
    assert fit(fits, 20 + 9 + 12 + 4) == [16, 13, 12]  # a name folds: headers stay whole
    assert fit(fits, 16 + 9 + 12 + 4) == [16, 9, 12]
    assert fit(fits, 16 + 9 + 12 + 3) is None  # below every minimum: blocks


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_machines_get_the_same_text_at_any_width(fmt: str) -> None:
    result = Result([Table(WIDE_COLS, WIDE_ROWS, "Wide")])
    text = _at(20, result, fmt)
    assert text == _at(500, result, fmt)
    assert LONG_ENDPOINT in text and "…" not in text


def test_an_empty_csv_still_has_its_header_row() -> None:
    empty = Table(COLS, [], "differences", ["all equal"], shown_empty=False)
    assert _at(80, Result([empty]), "csv") == "endpoint,requests,avg_ms,error_rate,at\n"
    out = _at(80, Result([empty], messages=["OK: all equal"]))
    assert "differences" not in out and "Endpoint" not in out and "OK: all equal" in out
    shown = _at(80, Result([Table(COLS, [], "none yet")]))
    assert "none yet" in shown and "Endpoint" in shown


def test_a_column_may_style_its_values() -> None:
    from rich.console import Console

    from epstats_cli.render import Column as C

    cols = [C("name", "Check", wrap=False), C("state", "State", styles={"CRITICAL": "bold red"})]
    buf = io.StringIO()
    console = Console(file=buf, width=80, force_terminal=True, color_system="standard")
    render(Result([Table(cols, [{"name": "x", "state": "CRITICAL"}])]), "table", console)
    assert "\x1b[1;31mCRITICAL" in buf.getvalue()


def test_a_pipe_gets_a_wide_console(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    assert make_console(file=io.StringIO()).width == 160
    monkeypatch.setenv("COLUMNS", "250")
    assert make_console(file=io.StringIO()).width == 250


@pytest.mark.parametrize("width", [40, 200])
def test_columns_and_rows_for_people_or_machines_only(width: int) -> None:
    """A bar drawn in characters and a totals row are for people (not CSV); a column machines
    want and people can spare is in CSV only. At 40 columns the table is blocks, the same
    columns and rows."""
    from tests.layout_check import plain_lines

    cols = [
        Column("day", "Day"),
        Column("trend", "Bar", in_csv=False),
        Column("requests", "Requests", "int"),
        Column("spare", "Spare", "int", in_table=False),
    ]
    rows = [{"day": "2026-11-01", "trend": "███", "requests": 3, "spare": 9}]
    table = Table(cols, rows, "t", summary=[{"day": "total", "trend": "", "requests": 3}])
    assert _at(width, Result([table]), "csv") == "day,requests,spare\n2026-11-01,3,9\n"
    out = "\n".join(plain_lines(_at(width, Result([table]))))
    assert "███" in out and "total" in out and "Spare" not in out and "9" not in out
