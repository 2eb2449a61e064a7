"""check latency_p95 on real servers (issue 15): each endpoint's p95 over check.latency_window,
read as `report top --source auto` reads it, judged by the first check.latency_p95 rule it
matches; off without a rule; rows before the window do not count; a window reaching into the
rollup's days reads its histograms (within view.latency_accuracy of percentile_disc); a rollup
an earlier epstats built without histograms is read from the raw rows instead."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.test_latency_rollup import _make_old

pytestmark = pytest.mark.one_version  # heavy: the first server version only

RULES = (
    "  latency_p95:\n"
    "    - {endpoint: '/api/slow%', warning: 5000, critical: 20000}\n"
    "    - {endpoint: '/api/%', warning: 500, critical: 2000}\n"
)


def _setup(dsn: str, tmp_path: Path, window: str = "1h", rules: str = RULES) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "source: {timezone: Asia/Kolkata}\nview: {strategy: incremental}\n"
        f"check:\n  latency_window: {window}\n{rules}"
    )
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    return str(cfg)


def _rows(conn: psycopg.Connection[Any], endpoint: str, ms: str, ago: str, n: int = 200) -> None:
    """`n` rows of `endpoint`, response time `ms` (an SQL expression of g = 1..n), spread over
    the minute before now() less `ago`."""
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp, response_time, status) "
        f"SELECT %s, now() - %s::interval - g * interval '250 ms', {ms}, 200 "
        "FROM generate_series(1, %s) g",
        (endpoint, ago, n),
    )


def _check(cfg: str, dsn: str) -> tuple[int, dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "check", "--only", "latency_p95")
    assert r.stderr == "", r.stderr
    (result,) = json.loads(r.stdout)["checks"]
    return r.code, result


def _exact_p95(conn: psycopg.Connection[Any], endpoint: str, since: str) -> float:
    row = conn.execute(
        "SELECT percentile_disc(0.95) WITHIN GROUP (ORDER BY response_time) FROM requests "
        "WHERE endpoint = %s AND timestamp >= now() - %s::interval",
        (endpoint, since),
    ).fetchone()
    assert row is not None
    return float(row[0])


def test_off_without_a_rule(dsn: str, tmp_path: Path) -> None:
    cfg = _setup(dsn, tmp_path, rules="")
    code, result = _check(cfg, dsn)
    assert (code, result["state"]) == (0, "OK")
    assert result["summary"] == "off (check.latency_p95 has no rule)"


def test_each_endpoint_by_its_first_rule_over_the_window(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _setup(dsn, tmp_path)
    _rows(conn, "/api/users", "g * 5", "10 minutes")  # p95 = 950 ms: WARNING
    _rows(conn, "/api/slow/export", "g * 20", "10 minutes")  # p95 3,800 ms: OK by its own rule
    _rows(conn, "/other", "100000", "10 minutes")  # no rule: not judged
    _rows(conn, "/api/orders", "90000", "3 hours")  # before the window: not counted
    _rows(conn, "/api/orders", "g", "5 minutes")  # p95 190 ms within the window
    code, result = _check(cfg, dsn)
    assert (code, result["state"]) == (1, "WARNING"), result
    assert _exact_p95(conn, "/api/users", "1 hour") == 950
    assert result["summary"] == (
        "p95 over the last 1h: /api/users 950 ms (warning from 500); "
        "2 of 3 endpoints within their thresholds"
    )
    assert (result["value"], result["warning"], result["critical"]) == (0.95, 0.5, 2.0)
    # a slower minute makes it CRITICAL
    _rows(conn, "/api/users", "3000", "1 minute", n=400)
    code, result = _check(cfg, dsn)
    assert (code, result["state"]) == (2, "CRITICAL"), result
    assert result["summary"].startswith("p95 over the last 1h: /api/users 3,000 ms (critical")


def test_a_window_of_days_reads_the_histograms(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _setup(dsn, tmp_path, window="3d")
    # two days back (whole days the rollup holds) and a tail it has not aggregated
    _rows(conn, "/api/users", "1 + g * 7.3", "36 hours", n=2000)
    _rows(conn, "/api/users", "1 + g * 0.37", "2 days", n=2000)
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    _rows(conn, "/api/users", "g * 3.1", "1 minute", n=500)
    code, result = _check(cfg, dsn)
    # the window starts 3 days back: every row is in it
    exact = _exact_p95(conn, "/api/users", "3 days")
    assert abs(result["value"] * 1000 - exact) <= 0.01 * exact, (result, exact)
    assert code == (2 if exact >= 2000 else 1 if exact >= 500 else 0), result
    # a rollup an earlier epstats built, without histograms: the raw rows, exactly
    _make_old(conn, "incremental")
    code, result = _check(cfg, dsn)
    assert result["value"] * 1000 == exact, result
    assert any("read from the raw rows" in d for d in result["details"]), result
