"""`epstats check` on real servers: OK when healthy, and each condition turns its check."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg

from epstats_cli import health
from tests.conftest import run_cli
from tests.helpers import fill
from tests.test_indexes import _cancel_build_halfway


def _healthy(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, extra: str = "", rows: int = 20000
) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("view: {strategy: incremental}\n" + extra)
    for args in (["init", "--with-requests-table"],):
        assert run_cli("-c", str(cfg), "--dsn", dsn, *args).code == 0
    fill(conn, rows)
    for args in (["indexes", "apply"], ["view", "build"], ["maintain"]):
        r = run_cli("-c", str(cfg), "--dsn", dsn, *args)
        assert r.code == 0, r.stderr
    return str(cfg)


def _check(cfg: str, dsn: str, *args: str) -> tuple[int, dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "check", *args)
    doc = json.loads(r.stdout)
    return r.code, {c["name"]: c for c in doc["checks"]} | {
        "_status": doc["status"],
        "_line": doc["line"],
    }


def test_healthy_is_ok(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _healthy(dsn, conn, tmp_path)
    code, checks = _check(cfg, dsn)
    assert code == 0, checks
    assert checks["_status"] == "OK" and checks["_line"].startswith("EPSTATS OK - 12 checks OK |")
    assert set(checks) - {"_status", "_line"} == set(health.CHECKS)
    r = run_cli("-c", cfg, "--dsn", dsn, "check")
    assert r.code == 0 and r.stdout.startswith("EPSTATS OK") and r.stdout.count("\n") == 1
    assert "dead_tuples=" in r.stdout and "invalid_indexes=0;;1" in r.stdout


def test_stale_analyze_warns(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _healthy(
        dsn,
        conn,
        tmp_path,
        "maintenance: {schedule: {analyze: 1s}}\n"
        "check: {overdue: {warning: 1, critical: 100000}}\n",
    )
    time.sleep(1.2)
    code, checks = _check(cfg, dsn, "--only", "analyze_age")
    assert code == 1 and checks["analyze_age"]["state"] == "WARNING"
    assert list(checks) == ["analyze_age", "_status", "_line"]


def test_invalid_index_is_critical(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _healthy(dsn, conn, tmp_path, rows=600_000)
    _cancel_build_halfway(dsn, conn, "CREATE INDEX CONCURRENTLY extra ON requests(status)")
    code, checks = _check(cfg, dsn)
    assert code == 2 and checks["invalid_indexes"]["state"] == "CRITICAL"
    assert "extra" in checks["invalid_indexes"]["summary"]
    assert checks["_line"].startswith("EPSTATS CRITICAL - invalid_indexes:")


def test_missing_and_redundant_indexes_warn(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _healthy(dsn, conn, tmp_path)
    conn.execute("DROP INDEX idx_requests_timestamp")
    conn.execute("CREATE INDEX idx_requests_endpoint ON requests(endpoint)")
    code, checks = _check(cfg, dsn)
    assert code == 1
    assert checks["missing_indexes"]["state"] == "WARNING"
    assert "idx_requests_timestamp" in checks["missing_indexes"]["summary"]
    assert checks["redundant_indexes"]["state"] == "WARNING"


def test_stale_view_warns(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _healthy(
        dsn,
        conn,
        tmp_path,
        "maintenance: {schedule: {refresh: 1s}}\n"
        "check: {overdue: {warning: 1, critical: 100000}}\n",
    )
    conn.execute("INSERT INTO requests VALUES ('/late', now(), 1, 200)")
    time.sleep(1.2)
    code, checks = _check(cfg, dsn, "--only", "view_staleness")
    assert code == 1 and checks["view_staleness"]["state"] == "WARNING"
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "refresh").code == 0
    code, checks = _check(cfg, dsn, "--only", "view_staleness")
    assert code == 0


def test_failed_maintain_is_critical(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _healthy(
        dsn, conn, tmp_path, "database: {lock_timeout: 100ms}\nmaintenance: {lock_retries: 0}\n"
    )
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE requests IN SHARE MODE")
        assert run_cli("-c", cfg, "--dsn", dsn, "maintain", "--force", "vacuum").code == 1
        holder.rollback()
    code, checks = _check(cfg, dsn)
    assert code == 2 and checks["maintain_failed"]["state"] == "CRITICAL"
    assert "vacuum" in checks["maintain_failed"]["summary"]


def test_unreachable_is_critical_and_bad_config_unknown(tmp_path: Path) -> None:
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run_cli("--dsn", f"host=127.0.0.1 port={port} user=x dbname=x", "check")
    assert r.code == 2 and r.stdout.startswith("EPSTATS CRITICAL - connect:")
    bad = tmp_path / "bad.yaml"
    bad.write_text("view: {strategy: nope}\n")
    r = run_cli("-c", str(bad), "check")
    assert r.code == 3 and r.stdout.startswith("EPSTATS UNKNOWN - config:")
    r = run_cli("check", "--only", "bogus")
    assert r.code == 2 and "unknown check bogus" in r.stderr


def test_missing_table_is_unknown(dsn: str) -> None:
    r = run_cli("--dsn", dsn, "check", "--only", "dead_tuples")
    assert r.code == 3 and "EPSTATS UNKNOWN - dead_tuples: cannot check" in r.stdout
