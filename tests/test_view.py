"""The daily rollup against real servers, both strategies, checked against a Python oracle."""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.helpers import catalog, fill
from tests.rollup_oracle import compare_view, raw_rollup

TZ = "America/New_York"
UTC = dt.timezone.utc


def _config(tmp_path: Path, strategy: str, extra: str = "") -> str:
    cfg = tmp_path / f"{strategy}.yaml"
    cfg.write_text(
        f"source: {{timezone: {TZ}}}\nview: {{strategy: {strategy}, lookback: 2d}}\n" + extra
    )
    return str(cfg)


def _random_rows(rng: random.Random, n: int, now: dt.datetime, days: int) -> list[tuple[Any, ...]]:
    endpoints = ["/a", "/b", "/c/'quoted';", "/d%_"]
    rows = []
    for _ in range(n):
        ts = now - dt.timedelta(seconds=rng.uniform(0, days * 86400))
        rt = None if rng.random() < 0.05 else round(rng.lognormvariate(3, 1), 3)
        status = rng.choice([200, 200, 200, 201, 404, 500, 503])
        rows.append((rng.choice(endpoints), ts, rt, status))
    return rows


def _dst_rows(now: dt.datetime) -> list[tuple[Any, ...]]:
    """Rows around New York's DST end (2026-11-01 06:00 UTC) and local midnights."""
    base = [
        dt.datetime(2026, 11, 1, 3, 59, 59, tzinfo=UTC),  # Oct 31, 23:59:59 EDT
        dt.datetime(2026, 11, 1, 4, 0, 0, tzinfo=UTC),  # Nov 1, 00:00 EDT
        dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT
        dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # 01:30 EST (again)
        dt.datetime(2026, 11, 2, 4, 59, 59, tzinfo=UTC),  # Nov 1, 23:59:59 EST
        dt.datetime(2026, 11, 2, 5, 0, 0, tzinfo=UTC),  # Nov 2, 00:00 EST
    ]
    return [("/dst", ts, 10.0 + i, 500 if i % 2 else 200) for i, ts in enumerate(base) if ts < now]


def _insert(conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    with (
        conn.cursor() as cur,
        cur.copy("COPY requests (endpoint, timestamp, response_time, status) FROM STDIN") as copy,
    ):
        for row in rows:
            copy.write_row(row)


def _now(conn: psycopg.Connection[Any]) -> dt.datetime:
    row = conn.execute("SELECT now()").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _verify(cfg: str, dsn: str, *args: str) -> tuple[int, dict[str, Any]]:
    r = run_cli(
        "-c",
        cfg,
        "--dsn",
        dsn,
        "--format",
        "json",
        "view",
        "verify",
        *args,
        env={"PGTZ": "Asia/Tokyo"},
    )
    return r.code, json.loads(r.stdout)


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_rollup_equals_raw_rows(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _config(tmp_path, strategy)
    env: dict[str, str | None] = {"PGTZ": "Asia/Tokyo"}  # the session zone must not matter
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    rng = random.Random(42)
    now = _now(conn)
    _insert(conn, _random_rows(rng, 4000, now, 40) + _dst_rows(now))

    r = run_cli("-c", cfg, "--dsn", dsn, "view", "build", env=env)
    assert r.code == 0, r.stderr
    assert compare_view(conn, "endpoint_daily_stats", raw_rollup(conn, TZ)) == []
    code, doc = _verify(cfg, dsn, "--days", "60")
    assert code == 0 and doc["differences"] == [] and doc["pending_rows"] == 0

    # new rows, NULL response times, rows a day late
    now = _now(conn)
    late = [
        ("/late", now - dt.timedelta(days=1, hours=1), None, 503),
        ("/a", now - dt.timedelta(hours=30), 0.001, 200),
    ]
    _insert(conn, _random_rows(rng, 500, now, 1) + late)
    code, doc = _verify(cfg, dsn, "--days", "60")
    assert doc["pending_rows"] > 0  # rows newer than the watermark are counted, not flagged
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "refresh", env=env)
    assert r.code == 0, r.stderr
    assert compare_view(conn, "endpoint_daily_stats", raw_rollup(conn, TZ)) == []
    code, doc = _verify(cfg, dsn, "--days", "60")
    assert code == 0, doc["differences"]

    # a row 20 days back: outside the incremental lookback
    _insert(conn, [("/old", _now(conn) - dt.timedelta(days=20), 5.0, 200)])
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "refresh", env=env).code == 0
    code, doc = _verify(cfg, dsn, "--days", "60")
    if strategy == "incremental":
        assert code == 1
        assert [d["endpoint"] for d in doc["differences"]] == ["/old"]
        since = (_now(conn) - dt.timedelta(days=25)).date().isoformat()
        r = run_cli("-c", cfg, "--dsn", dsn, "view", "refresh", "--since", since, env=env)
        assert r.code == 0, r.stderr
        code, doc = _verify(cfg, dsn, "--days", "60")
    assert code == 0, doc["differences"]
    assert compare_view(conn, "endpoint_daily_stats", raw_rollup(conn, TZ)) == []


def test_incremental_refresh_touches_only_recent_days(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _config(tmp_path, "incremental")
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20000)
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    old = conn.execute(
        "SELECT day, xmin::text FROM endpoint_daily_stats WHERE day < current_date - 5"
    ).fetchall()
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "view", "refresh")
    assert r.code == 0
    task = json.loads(r.stdout)["tasks"][0]
    assert task["status"] == "ok" and "days from" in task["reason"]
    status = json.loads(
        run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "view", "status").stdout
    )
    first_recomputed = task["reason"].split("days from ")[1][:10]
    assert (
        status["settled_through"]
        == (dt.date.fromisoformat(first_recomputed) - dt.timedelta(days=1)).isoformat()
    )
    assert status["as_of"] is not None and status["parameter_mismatch"] == []
    # a backfill from a recent day still covers the whole lookback window
    today = conn.execute("SELECT (now() AT TIME ZONE %s)::date", (TZ,)).fetchone()[0]  # type: ignore[index]
    r = run_cli(
        "-c", cfg, "--dsn", dsn, "--format", "json", "view", "refresh", "--since", today.isoformat()
    )
    reason = json.loads(r.stdout)["tasks"][0]["reason"]
    assert reason.split("days from ")[1][:10] <= first_recomputed
    assert (
        conn.execute(
            "SELECT day, xmin::text FROM endpoint_daily_stats WHERE day < current_date - 5"
        ).fetchall()
        == old
    )


def test_dry_run_changes_nothing(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    for strategy in ("materialized", "incremental"):
        cfg = _config(tmp_path, strategy)
        assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
        before = catalog(conn)
        r = run_cli("-c", cfg, "--dsn", dsn, "view", "build", "--dry-run")
        assert r.code == 0 and "CREATE" in r.stdout
        assert catalog(conn) == before
    fill(conn, 1000)
    cfg = _config(tmp_path, "incremental")
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    conn.execute("INSERT INTO requests VALUES ('/new', now(), 1, 200)")
    state = conn.execute("SELECT * FROM epstats.rollup_state").fetchall()
    before = conn.execute("SELECT * FROM endpoint_daily_stats ORDER BY 1, 2").fetchall()
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "refresh", "--dry-run")
    assert r.code == 0 and "DELETE FROM" in r.stdout and "INSERT INTO" in r.stdout
    assert conn.execute("SELECT * FROM endpoint_daily_stats ORDER BY 1, 2").fetchall() == before
    assert conn.execute("SELECT * FROM epstats.rollup_state").fetchall() == state


GUIDE_VIEW = """
CREATE MATERIALIZED VIEW endpoint_daily_stats AS
SELECT endpoint, DATE_TRUNC('day', timestamp) AS day, COUNT(*) AS request_count,
       AVG(response_time) AS avg_response_time, MAX(response_time) AS max_response_time,
       MIN(response_time) AS min_response_time,
       SUM(CASE WHEN status >= 500 THEN 1 ELSE 0 END) AS error_count
FROM requests GROUP BY endpoint, DATE_TRUNC('day', timestamp);
CREATE INDEX idx_endpoint_daily_stats_endpoint ON endpoint_daily_stats(endpoint);
CREATE INDEX idx_endpoint_daily_stats_day ON endpoint_daily_stats(day);
"""


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_guide_view_is_recognised_and_replaced(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _config(tmp_path, strategy)
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    conn.execute(GUIDE_VIEW)
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "view", "status")
    doc = json.loads(r.stdout)
    assert doc["built_by_epstats"] is False
    lacks = " ".join(doc["lacks"])
    for needed in (
        "total_response_time",
        "response_count",
        "max_timestamp",
        "unique index on (endpoint, day)",
        "column day is timestamp with time zone",
        "source.timezone",
    ):
        assert needed in lacks, needed
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "build")
    assert r.code == 1 and "--replace" in r.stderr
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "refresh")
    assert r.code == 1 and "--replace" in r.stderr

    r = run_cli("-c", cfg, "--dsn", dsn, "view", "build", "--replace")
    assert r.code == 0, r.stderr
    doc = json.loads(run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "view", "status").stdout)
    assert doc["built_by_epstats"] and doc["lacks"] == [] and doc["strategy"] == strategy
    assert compare_view(conn, "endpoint_daily_stats", raw_rollup(conn, TZ)) == []
    leftovers = conn.execute(
        "SELECT relname FROM pg_class WHERE relname LIKE '%epstats_new%' "
        "OR relname LIKE 'idx_endpoint_daily_stats%'"
    ).fetchall()
    assert leftovers == []
    # and switching strategy later works the same way
    other = "incremental" if strategy == "materialized" else "materialized"
    cfg2 = _config(tmp_path, other)
    assert run_cli("-c", cfg2, "--dsn", dsn, "view", "build", "--replace").code == 0
    assert run_cli("-c", cfg2, "--dsn", dsn, "view", "verify").code == 0


def _epstats(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "epstats_cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_killed_refresh_leaves_view_as_it_was(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _config(tmp_path, strategy)
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 800_000)
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    fill(conn, 200_000)
    before = conn.execute("SELECT * FROM endpoint_daily_stats ORDER BY 1, 2").fetchall()
    args = ["-c", cfg, "--dsn", dsn, "view", "refresh"]
    if strategy == "incremental":
        args += ["--full"]
    proc = _epstats(*args)
    killed = False
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and proc.poll() is None:
        row = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'epstats' "
            "AND state = 'active' AND (query LIKE 'REFRESH%%' OR query LIKE 'INSERT INTO%%')"
        ).fetchone()
        if row:
            time.sleep(0.1)
            killed = bool(conn.execute("SELECT pg_terminate_backend(%s)", (row[0],)).fetchone())
            break
        time.sleep(0.01)
    proc.communicate()
    assert killed, "the refresh finished before it could be killed"
    assert proc.returncode != 0
    assert conn.execute("SELECT * FROM endpoint_daily_stats ORDER BY 1, 2").fetchall() == before
    r = run_cli(
        "-c",
        cfg,
        "--dsn",
        dsn,
        "view",
        "refresh",
        *(["--full"] if strategy == "incremental" else []),
    )
    assert r.code == 0, r.stderr
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "verify", "--days", "60").code == 0


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_concurrent_refreshes_are_serialised(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _config(tmp_path, strategy, "database: {lock_timeout: 200ms}\n")
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 400_000)
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    fill(conn, 100_000)
    extra = ["--full"] if strategy == "incremental" else []
    procs = [_epstats("-c", cfg, "--dsn", dsn, "view", "refresh", *extra) for _ in range(2)]
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "verify", "--days", "60").code == 0


def test_verify_says_complete_through_in_the_source_zone(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The session's TimeZone (the database's, Pacific/Chatham: +13:45) never shows: the
    rollup's as-of is in source.timezone, to the second, with its abbreviation."""
    from zoneinfo import ZoneInfo

    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET TimeZone = 'Pacific/Chatham'")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {timezone: America/St_Johns}\n")
    args = ["-c", str(cfg), "--dsn", dsn]
    assert run_cli(*args, "init", "--with-requests-table").code == 0
    _insert(conn, [("/a", _now(conn) - dt.timedelta(hours=1), 1.0, 200)])
    assert run_cli(*args, "view", "build").code == 0
    row = conn.execute("SELECT as_of FROM endpoint_daily_stats WHERE endpoint IS NULL").fetchone()
    assert row is not None
    local = row[0].astimezone(ZoneInfo("America/St_Johns"))
    r = run_cli(*args, "view", "verify", env={"PGTZ": None})
    assert r.code == 0, r.stderr
    line = next(ln for ln in r.stdout.splitlines() if "complete through" in ln)
    assert f"complete through {local:%Y-%m-%d %H:%M:%S} {local:%Z};" in line, line
    assert local.tzname() in ("NST", "NDT") and "+13:45" not in line and "+12:45" not in line


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_verify_takes_infinite_and_nan_response_times_as_equal(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Bad data a float column takes ('Infinity', '-Infinity', 'NaN'): the rollup's sums equal
    the raw rows' (Infinity - Infinity is NaN, which must not read as a difference), so
    verify passes and the verify task repairs nothing, run after run."""
    cfg = _config(tmp_path, strategy)
    args = ["-c", cfg, "--dsn", dsn]
    assert run_cli(*args, "init", "--with-requests-table").code == 0
    now = _now(conn)
    rows = [
        ("/inf", now - dt.timedelta(days=2), float("inf"), 200),
        ("/inf", now - dt.timedelta(days=2), 5.0, 200),
        ("/ninf", now - dt.timedelta(days=1), float("-inf"), 200),
        ("/nan", now - dt.timedelta(days=1), float("nan"), 500),
        ("/ok", now - dt.timedelta(days=1), 3.0, 200),
    ]
    _insert(conn, rows)
    assert run_cli(*args, "view", "build").code == 0
    r = run_cli(*args, "--format", "json", "view", "verify", "--days", "5")
    assert r.code == 0, r.stdout + r.stderr
    r = run_cli(*args, "--format", "json", "maintain", "--force", "verify", "--only", "verify")
    assert r.code == 0, r.stderr
    assert "repaired" not in r.stdout, r.stdout
