"""Reports against real servers: every number checked against a Python computation."""

from __future__ import annotations

import csv as csv_module
import datetime as dt
import io
import json
import random
import subprocess
import sys
import zoneinfo
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Server, run_cli, wait_for_replay
from tests.rollup_oracle import Agg, close

TZ = "America/New_York"
ZONE = zoneinfo.ZoneInfo(TZ)
NASTY = "/x'; DROP TABLE requests; --%_\"\\"

# the status mix every row carries (issue 18)
MIX = ",status_2xx,status_3xx,status_4xx,status_5xx,status_other"
MIX_KEYS = MIX.split(",")[1:]
PERCENTILES = ",p50_ms,p95_ms,p99_ms"  # issue 15: after the error rate, before the mix


def _rows(
    rng: random.Random, n: int, now: dt.datetime, days: float, endpoints: list[str]
) -> list[tuple[Any, ...]]:
    out = []
    for _ in range(n):
        ts = now - dt.timedelta(hours=2, seconds=rng.uniform(0, days * 86400))
        rt = None if rng.random() < 0.05 else round(rng.lognormvariate(3, 1), 3)
        out.append((rng.choice(endpoints), ts, rt, rng.choice([200, 200, 201, 404, 500, 503])))
    return out


def _copy(conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    with (
        conn.cursor() as cur,
        cur.copy("COPY requests (endpoint, timestamp, response_time, status) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _expected(
    conn: psycopg.Connection[Any],
    from_ts: dt.datetime,
    to_ts: dt.datetime,
    until: dt.datetime | None = None,
) -> dict[str, Agg]:
    out: dict[str, Agg] = {}
    for ep, ts, rt, status in conn.execute(
        "SELECT endpoint, timestamp, response_time, status FROM requests"
    ).fetchall():
        if from_ts <= ts < to_ts and (until is None or ts <= until):
            out.setdefault(ep, Agg()).add(rt, status)
    return out


def _check_rows(rows: list[dict[str, Any]], expected: dict[str, Agg]) -> None:
    assert {r["endpoint"] for r in rows} == set(expected)
    for r in rows:
        e = expected[r["endpoint"]]
        assert (r["requests"], r["errors"], r["min_ms"], r["max_ms"]) == (
            e.requests,
            e.errors,
            e.min,
            e.max,
        ), r["endpoint"]
        assert close(r["avg_ms"], e.total / e.responses if e.responses else None)
        assert close(r["error_rate"], e.errors / e.requests)


@pytest.fixture
def loaded(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> tuple[str, dt.datetime]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"source: {{timezone: {TZ}}}\nview: {{strategy: materialized}}\nreports: {{limit: 100}}\n"
    )
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    rng = random.Random(7)
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    endpoints = ["/a", "/b", "/c", NASTY, "/api/v1/%literal_"]
    _copy(conn, _rows(rng, 6000, now, 40, endpoints))
    # an endpoint with traffic on two days only: reports show the quiet days between them
    today = now.astimezone(ZONE).date()
    _copy(
        conn,
        [
            (
                "/sparse",
                dt.datetime.combine(today - dt.timedelta(days=d), dt.time(12), ZONE),
                2.0,
                200,
            )
            for d in (30, 5)
        ],
    )
    assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
    # rows written since the last refresh: dated after its as-of, up to now
    as_of = _as_of(conn)
    later = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    _copy(
        conn,
        [
            (rng.choice(endpoints), as_of + (later - as_of) * (i + 1) / 26, 1.0 + i, 200)
            for i in range(25)
        ],
    )
    return str(cfg), now


def _as_of(conn: psycopg.Connection[Any]) -> dt.datetime:
    """The instant the rollup is complete through (its bookkeeping row)."""
    row = conn.execute(
        "SELECT as_of FROM endpoint_daily_stats WHERE endpoint IS NULL AND day IS NULL"
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _report(cfg: str, dsn: str, *args: str) -> dict[str, Any]:
    r = run_cli(
        "-c", cfg, "--dsn", dsn, "--format", "json", "report", *args, env={"PGTZ": "Asia/Kolkata"}
    )
    assert r.code == 0, r.stderr
    return json.loads(r.stdout)  # type: ignore[no-any-return]


@pytest.mark.parametrize("source", ["auto", "view", "raw"])
@pytest.mark.parametrize("window", [("--days", "30"), ("--since", "MID", "--until", "MID2")])
def test_top_equals_raw_computation(
    source: str,
    window: tuple[str, ...],
    loaded: tuple[str, dt.datetime],
    dsn: str,
    conn: psycopg.Connection[Any],
) -> None:
    cfg, _ = loaded
    today = dt.datetime.now(ZONE).date()
    args = [
        a.replace("MID2", str(today - dt.timedelta(days=3))).replace(
            "MID", str(today - dt.timedelta(days=20))
        )
        for a in window
    ]
    doc = _report(cfg, dsn, "top", "--source", source, *args)
    from_ts = dt.datetime.fromisoformat(doc["window"]["from"])
    to_ts = dt.datetime.fromisoformat(doc["window"]["to"])
    first_day = (
        (today - dt.timedelta(days=29))
        if window[0] == "--days"
        else (today - dt.timedelta(days=20))
    )
    assert from_ts == dt.datetime.combine(first_day, dt.time(), ZONE)
    watermark = _as_of(conn)
    assert (
        doc["watermark"] is None
        if source == "raw"
        else dt.datetime.fromisoformat(doc["watermark"]) == watermark
    )
    if source == "view":
        expected = _expected(conn, from_ts, to_ts, until=watermark)
        assert doc["source"] == "view"
        if window[0] == "--days":
            assert doc["rows_newer_than_watermark"] == 25
    else:
        expected = _expected(conn, from_ts, to_ts)
    _check_rows(doc["rows"], expected)
    if source == "auto" and window[0] == "--days":
        assert (
            sum(r["requests"] for r in doc["rows"])
            == sum(e.requests for e in _expected(conn, from_ts, to_ts, until=watermark).values())
            + 25
        )


def test_sorting_limit_and_pattern(loaded: tuple[str, dt.datetime], dsn: str) -> None:
    cfg, _ = loaded
    for sort, key in (
        ("requests", "requests"),
        ("avg", "avg_ms"),
        ("max", "max_ms"),
        ("errors", "errors"),
        ("error_rate", "error_rate"),
    ):
        rows = _report(cfg, dsn, "top", "--sort", sort)["rows"]
        values = [r[key] for r in rows]
        assert values == sorted(values, reverse=True), sort
    assert len(_report(cfg, dsn, "top", "--limit", "2")["rows"]) == 2
    rows = _report(cfg, dsn, "top", "--endpoint", "/api/v1/%")["rows"]
    assert [r["endpoint"] for r in rows] == ["/api/v1/%literal_"]
    rows = _report(cfg, dsn, "top", "--endpoint", "/_")["rows"]
    assert {r["endpoint"] for r in rows} == {"/a", "/b", "/c"}


@pytest.mark.parametrize("source", ["auto", "view", "raw"])
def test_endpoint_days(
    source: str, loaded: tuple[str, dt.datetime], dsn: str, conn: psycopg.Connection[Any]
) -> None:
    cfg, _ = loaded
    doc = _report(cfg, dsn, "endpoint", NASTY, "--days", "40", "--source", source)
    from_ts = dt.datetime.fromisoformat(doc["window"]["from"])
    to_ts = dt.datetime.fromisoformat(doc["window"]["to"])
    watermark = _as_of(conn)
    per_day: dict[str, Agg] = {}
    for ts, rt, status in conn.execute(
        "SELECT timestamp, response_time, status FROM requests WHERE endpoint = %s", (NASTY,)
    ).fetchall():
        if from_ts <= ts < to_ts and (source != "view" or ts <= watermark):
            per_day.setdefault(ts.astimezone(ZONE).date().isoformat(), Agg()).add(rt, status)
    # the endpoint has traffic on most days of the window, so the comparison below is not vacuous
    assert len(per_day) >= 30
    first = from_ts.astimezone(ZONE).date()
    assert [r["day"] for r in doc["rows"]] == [
        (first + dt.timedelta(days=i)).isoformat() for i in range(40)
    ]
    for r in doc["rows"]:
        e = per_day.get(r["day"], Agg())
        assert (r["requests"], r["errors"], r["min_ms"], r["max_ms"]) == (
            e.requests,
            e.errors,
            e.min,
            e.max,
        )
        assert close(r["avg_ms"], e.total / e.responses if e.responses else None)
    total = doc["totals"]
    assert total["requests"] == sum(e.requests for e in per_day.values())
    assert close(
        total["avg_ms"],
        sum(e.total for e in per_day.values()) / sum(e.responses for e in per_day.values()),
    )


def test_unknown_endpoint(loaded: tuple[str, dt.datetime], dsn: str) -> None:
    cfg, _ = loaded
    for source in ("auto", "view", "raw"):
        r = run_cli("-c", cfg, "--dsn", dsn, "report", "endpoint", "/b/", "--source", source)
        assert r.code == 1 and "no requests for endpoint '/b/' at all" in r.stderr, r.stderr
        assert "closest: /b" in r.stderr and r.stderr.count("\n") == 1


def _quiet(cfg: str, dsn: str, name: str, since: dt.date, until: dt.date, source: str) -> Any:
    """`report endpoint` of a window where `name` has no requests: every day 0."""
    args = ["endpoint", name, "--since", str(since), "--until", str(until), "--source", source]
    doc = _report(cfg, dsn, *args)
    days = [str(since + dt.timedelta(days=i)) for i in range((until - since).days + 1)]
    assert [r["day"] for r in doc["rows"]] == days, source
    assert all(r["requests"] == 0 and r["errors"] == 0 for r in doc["rows"]), source
    assert doc["totals"]["requests"] == 0
    return doc


@pytest.mark.parametrize("source", ["auto", "view", "raw"])
def test_a_known_endpoint_over_a_quiet_window(
    source: str, loaded: tuple[str, dt.datetime], dsn: str, conn: psycopg.Connection[Any]
) -> None:
    """An outage: /sparse has requests 30 and 5 days ago, none in between. Its quiet days are
    shown, not an error; known from the rollup, from the raw rows it has not aggregated, or
    (raw, without a rollup) by an index on the endpoint, never by a scan of the table."""
    cfg, now = loaded
    today = now.astimezone(ZONE).date()
    since, until = today - dt.timedelta(days=20), today - dt.timedelta(days=10)
    doc = _quiet(cfg, dsn, "/sparse", since, until, source)
    assert doc["notes"] == []
    text = run_cli(
        "-c",
        cfg,
        "--dsn",
        dsn,
        "report",
        "endpoint",
        "/sparse",
        "--since",
        str(since),
        "--until",
        str(until),
        "--source",
        source,
    )
    assert text.code == 0 and "closest" not in text.stderr
    # written since the last refresh, a name the rollup does not have yet
    conn.execute("INSERT INTO requests VALUES ('/brand-new', now(), 1, 200)")
    assert _quiet(cfg, dsn, "/brand-new", since, until, source)["notes"] == []
    # without a rollup: raw rows, known by an index on the endpoint; without one, not checked
    conn.execute("DROP MATERIALIZED VIEW endpoint_daily_stats")
    if source == "view":
        return
    doc = _quiet(cfg, dsn, "/sparse", since, until, source)
    assert any("was not checked" in n for n in doc["notes"]), doc["notes"]
    conn.execute("CREATE INDEX requests_endpoint ON requests (endpoint, status)")
    _quiet(cfg, dsn, "/brand-new", since, until, source)
    r = run_cli("-c", cfg, "--dsn", dsn, "report", "endpoint", "/b/", "--source", source)
    assert r.code == 1 and "closest: /b" in r.stderr, r.stderr


def test_table_output(loaded: tuple[str, dt.datetime], dsn: str) -> None:
    cfg, _ = loaded
    r = run_cli("-c", cfg, "--dsn", dsn, "report", "top", "--source", "view")
    assert r.code == 0
    assert "Error rate" in r.stdout and "%" in r.stdout
    assert "25 raw rows it has not aggregated are not included" in r.stdout
    assert TZ in r.stdout and "query" in r.stdout
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "csv", "report", "top")
    assert r.stdout.splitlines()[0] == (
        "endpoint,requests,avg_ms,min_ms,max_ms,errors,error_rate" + PERCENTILES + MIX
    )


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_data_output_does_not_import_rich(
    fmt: str, loaded: tuple[str, dt.datetime], dsn: str
) -> None:
    """A program reading JSON or CSV does not pay for rich's import (a report's start-up)."""
    cfg, _ = loaded
    args = ["-c", cfg, "--dsn", dsn, "--format", fmt, "report", "top", "--source", "view"]
    code = (
        "import sys; from epstats_cli.cli import main\n"
        f"code = main({args!r})\n"
        "print('RICH', 'rich' in sys.modules, code, file=sys.stderr)"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert "RICH False 0" in r.stderr, r.stderr
    assert "/a" in r.stdout


@pytest.mark.parametrize("source", ["raw", "auto"])
def test_a_nan_response_time_gives_strict_json(
    source: str, loaded: tuple[str, dt.datetime], dsn: str, conn: psycopg.Connection[Any]
) -> None:
    """NaN in the response time (bad data a float column takes) is null in JSON, never the
    NaN or Infinity that strict parsers reject; the other figures stay numbers."""
    cfg, _ = loaded
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp, response_time, status) "
        "VALUES ('/nan', now(), 'NaN', 200), ('/nan', now(), 5, 200)"
    )
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "report", "top", "--source", source)
    assert r.code == 0, r.stderr

    def refuse(constant: str) -> None:
        raise AssertionError(f"not JSON: {constant}")

    rows = {row["endpoint"]: row for row in json.loads(r.stdout, parse_constant=refuse)["rows"]}
    assert rows["/nan"]["requests"] == 2
    assert rows["/nan"]["avg_ms"] is None and rows["/nan"]["p99_ms"] is None
    assert rows["/a"]["avg_ms"] is not None


def test_compare_makes_up_no_change_from_an_infinite_figure(
    loaded: tuple[str, dt.datetime], dsn: str, conn: psycopg.Connection[Any]
) -> None:
    """--compare with an infinite response time (bad data) on one side: the change is null,
    never x/Infinity = 0 (a made-up "decrease" that ranks the endpoint)."""
    cfg, _ = loaded
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp, response_time, status) VALUES "
        "('/infprev', now() - interval '108 hours', 'Infinity', 200), "
        "('/infprev', now() - interval '1 hour', 5, 200), "
        "('/infnow', now() - interval '108 hours', 5, 200), "
        "('/infnow', now() - interval '1 hour', 'Infinity', 200)"
    )
    doc = _report(cfg, dsn, "top", "--days", "3", "--compare", "--source", "raw")
    rows = {row["endpoint"]: row for row in doc["rows"]}
    for name in ("/infprev", "/infnow"):
        assert rows[name]["previous"]["requests"] == 1, rows[name]
        assert rows[name]["change"]["avg_ms"] is None, rows[name]
        assert rows[name]["change"]["max_ms"] is None, rows[name]
        assert rows[name]["change"]["requests"] == 1.0, rows[name]  # a ratio: as many


def test_falls_back_to_raw_without_view(dsn: str, conn: psycopg.Connection[Any]) -> None:
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    conn.execute("INSERT INTO requests VALUES ('/only', now(), 3, 200)")
    doc = json.loads(run_cli("--dsn", dsn, "--format", "json", "report", "top").stdout)
    assert doc["source"] == "raw" and doc["rows"][0]["requests"] == 1
    assert any("raw rows" in n for n in doc["notes"])
    r = run_cli("--dsn", dsn, "report", "top", "--source", "view")
    assert r.code == 1 and "--source raw" in r.stderr


def test_read_only_role_and_standby(
    server: Server,
    standby: Server,
    loaded: tuple[str, dt.datetime],
    dsn: str,
    conn: psycopg.Connection[Any],
) -> None:
    cfg, _ = loaded
    conn.execute("DROP ROLE IF EXISTS epstats_reader")
    conn.execute("CREATE ROLE epstats_reader LOGIN PASSWORD 'reader-pw'")
    conn.execute("GRANT SELECT ON requests, endpoint_daily_stats TO epstats_reader")
    conn.execute("ALTER ROLE epstats_reader SET default_transaction_read_only = on")
    try:
        ro = server.dsn_for(conn.info.dbname, user="epstats_reader", password="reader-pw")
        for source in ("auto", "view", "raw"):
            assert _report(cfg, ro, "top", "--source", source)["rows"]
        assert _report(cfg, ro, "endpoint", "/a")["rows"]
        replica = wait_for_replay(server.admin_dsn, standby, conn.info.dbname)
        for source in ("auto", "view", "raw"):
            assert _report(cfg, replica, "top", "--source", source)["rows"]
    finally:
        conn.execute("DROP OWNED BY epstats_reader")
        conn.execute("DROP ROLE epstats_reader")


def test_since_a_local_time_reads_the_raw_rows_from_that_instant(
    loaded: tuple[str, dt.datetime], dsn: str, conn: psycopg.Connection[Any]
) -> None:
    cfg, _ = loaded
    # 01:30 on 2026-11-01 happens twice in New York: PostgreSQL reads it as standard time
    since = "2026-11-01 01:30"
    resolved = dt.datetime(2026, 11, 1, 6, 30, tzinfo=dt.timezone.utc)
    for source in ("auto", "raw"):
        doc = _report(cfg, dsn, "top", "--since", since, "--source", source)
        from_ts = dt.datetime.fromisoformat(doc["window"]["from"])
        to_ts = dt.datetime.fromisoformat(doc["window"]["to"])
        assert from_ts == resolved and doc["source"] == {"auto": "view+raw"}.get(source, "raw")
        # auto: that day's raw rows from the instant on, then the rollup's whole days (issue 18)
        assert [p["source"] for p in doc["parts"]] == (
            ["raw", "view"] if source == "auto" else ["raw"]
        )
        assert doc["parts"][0]["from"] == doc["window"]["from"]
        _check_rows(doc["rows"], _expected(conn, from_ts, to_ts))
    r = run_cli("-c", cfg, "--dsn", dsn, "report", "top", "--since", since, "--source", "view")
    assert r.code == 2 and "whole days" in r.stderr and r.stderr.count("\n") == 1
    r = run_cli("-c", cfg, "--dsn", dsn, "report", "top", "--since", since)
    assert r.code == 0 and "2026-11-01 01:30" in r.stdout.replace("T", " ")


@pytest.mark.parametrize("source", ["auto", "view", "raw"])
def test_endpoint_shows_every_day(source: str, loaded: tuple[str, dt.datetime], dsn: str) -> None:
    """Two days with traffic, 30 days apart: every day between them is a row with 0 requests,
    in JSON, CSV and the table."""
    cfg, now = loaded
    today = now.astimezone(ZONE).date()
    doc = _report(cfg, dsn, "endpoint", "/sparse", "--days", "31", "--source", source)
    days = [r["day"] for r in doc["rows"]]
    assert days == [str(today - dt.timedelta(days=30 - i)) for i in range(31)]
    busy = {str(today - dt.timedelta(days=d)) for d in (30, 5)}
    for r in doc["rows"]:
        quiet = dict(requests=0, avg_ms=None, min_ms=None, max_ms=None, errors=0, error_rate=None)
        want = dict(requests=1, avg_ms=2.0, min_ms=2.0, max_ms=2.0, errors=0, error_rate=0.0)
        assert {k: r[k] for k in want} == (want if r["day"] in busy else quiet), r
    assert doc["totals"]["requests"] == 2
    args = ["-c", cfg, "--dsn", dsn]
    csv = run_cli(
        *args,
        "--format",
        "csv",
        "report",
        "endpoint",
        "/sparse",
        "--days",
        "31",
        "--source",
        source,
    )
    # CSV: the JSON rows and their keys, no more (the bar and the totals are the table's)
    read = list(csv_module.DictReader(io.StringIO(csv.stdout)))
    assert (
        list(read[0])
        == list(doc["rows"][0])
        == [
            "day",
            "requests",
            "avg_ms",
            "min_ms",
            "max_ms",
            "errors",
            "error_rate",
            *PERCENTILES.split(",")[1:],
            *MIX_KEYS,
        ]
    )
    assert [r["day"] for r in read] == days
    for got, want in zip(read, doc["rows"], strict=True):
        assert got == {k: "" if v is None else str(v) for k, v in want.items()}
    text = run_cli(*args, "report", "endpoint", "/sparse", "--days", "31", "--source", source)
    assert text.code == 0 and str(today - dt.timedelta(days=17)) in text.stdout
    assert "total" in text.stdout and "█" in text.stdout


def test_no_requests_in_the_window(loaded: tuple[str, dt.datetime], dsn: str) -> None:
    cfg, _ = loaded
    args = ["-c", cfg, "--dsn", dsn]
    r = run_cli(*args, "report", "top", "--endpoint", "/nothing%")
    assert r.code == 0 and "No requests like '/nothing%' in this window" in r.stdout
    assert "Top 0" not in r.stdout
    r = run_cli(*args, "report", "top", "--min-requests", "1000000")
    assert "No endpoint with at least 1,000,000 requests in this window" in r.stdout
    assert _report(cfg, dsn, "top", "--endpoint", "/nothing%")["rows"] == []
    r = run_cli(*args, "--format", "csv", "report", "top", "--endpoint", "/nothing%")
    header = "endpoint,requests,avg_ms,min_ms,max_ms,errors,error_rate" + PERCENTILES + MIX
    assert r.stdout == header + "\n"
