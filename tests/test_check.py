"""`epstats check` on real servers: OK when healthy, and each condition turns its check."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import health
from epstats_cli.config import load as load_config
from epstats_cli.db import session
from epstats_cli.errors import OperationFailed
from epstats_cli.health.facts import Gatherer, IndexFacts, MaintenanceFacts, RollupFreshness
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
        "_status": doc["state"],
        "_line": doc["line"],
    }


def test_healthy_is_ok(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _healthy(dsn, conn, tmp_path)
    code, checks = _check(cfg, dsn)
    assert code == 0, checks
    assert checks["_status"] == "OK"
    assert checks["_line"].startswith(f"EPSTATS OK - {len(health.CHECKS)} checks OK |")
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
    """A failure that is not a busy lock takes check.maintain_failed (default critical); busy
    locks: tests/test_nagios.py."""
    cfg = _healthy(dsn, conn, tmp_path)
    conn.execute(
        "ALTER TABLE endpoint_daily_stats ADD CONSTRAINT nope CHECK (request_count < 0) NOT VALID"
    )
    assert run_cli("-c", cfg, "--dsn", dsn, "maintain", "--force", "refresh").code == 1
    code, checks = _check(cfg, dsn)
    assert code == 2 and checks["maintain_failed"]["state"] == "CRITICAL"
    assert "refresh failed at" in checks["maintain_failed"]["summary"]
    assert 'violates check constraint "nope"' in checks["maintain_failed"]["summary"]


def test_failure_times_are_in_source_timezone(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """maintain_failed prints when the task failed in source.timezone, with its zone, whatever
    the session's TimeZone (here the database's, a zone 17 hours away)."""
    from zoneinfo import ZoneInfo

    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET timezone = 'Pacific/Chatham'")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {timezone: America/St_Johns}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    row = conn.execute(
        "INSERT INTO epstats.runs (task, target, started_at, finished_at, status, error, failure)"
        " VALUES ('vacuum', 'public.requests', now() - interval '1 hour', now(), 'failed',"
        " 'disk on fire', 'error') RETURNING started_at"
    ).fetchone()
    assert row is not None
    at = row[0].astimezone(ZoneInfo("America/St_Johns"))
    assert at.strftime("%Z") in ("NST", "NDT")
    code, checks = _check(str(cfg), dsn, "--only", "maintain_failed")
    assert code == 2
    summary = checks["maintain_failed"]["summary"]
    assert summary == f"vacuum failed at {at:%Y-%m-%d %H:%M %Z}: disk on fire", summary


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
    assert r.code == 3 and "unknown check bogus" in r.stdout  # UNKNOWN, not CRITICAL


def test_missing_table_is_critical(dsn: str) -> None:
    r = run_cli("--dsn", dsn, "check", "--only", "dead_tuples")
    assert r.code == 2 and "EPSTATS CRITICAL - source_table: public.requests does not" in r.stdout


def test_gatherers_read_what_the_catalog_says(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Each fact group against an independent query of the same server."""
    cfg = _healthy(dsn, conn, tmp_path)
    with session(load_config(cfg, {}), dsn) as s:
        facts = Gatherer(s)
        table = facts.table()
        assert table is facts.table()  # read once
        size, reltuples, xid = one(
            conn,
            "SELECT pg_total_relation_size(c.oid), c.reltuples::bigint, age(c.relfrozenxid) "
            "FROM pg_class c WHERE c.oid = 'requests'::regclass",
        )
        assert (table.total_bytes, table.estimated_rows, table.xid_age) == (size, reltuples, xid)
        assert table.last_vacuumed is not None and table.last_analyzed is not None
        server = facts.server()
        assert server.autovacuum_freeze_max_age == int(
            one(conn, "SHOW autovacuum_freeze_max_age")[0]
        )
        assert server.max_connections == int(one(conn, "SHOW max_connections")[0])
        assert (server.database, server.in_recovery) == (conn.info.dbname, False)
        assert facts.indexes() == IndexFacts((), (), {})
        assert facts.rollup() == RollupFreshness(True, "", None)
        history = facts.maintenance()
        statuses = dict(conn.execute("SELECT DISTINCT task, status FROM epstats.runs").fetchall())
        assert history.available and {t: r.last_status for t, r in history.runs.items()} == {
            t: st for t, st in statuses.items() if t in history.runs
        }
        assert {"vacuum", "build"} <= set(history.runs)  # the build counts as a refresh
        bloat = facts.table_bloat()
        assert bloat is not None
        assert bloat.size_bytes == one(conn, "SELECT pg_relation_size('requests')")[0]
        names = {
            r[0]
            for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'requests'")
        }
        assert {b.name for b in facts.index_bloat()} == names

        late = one(
            conn, "INSERT INTO requests VALUES ('/late', now(), 1, 200) RETURNING timestamp"
        )[0]
        fresh = Gatherer(s).rollup()
        assert (fresh.usable, fresh.oldest_unaggregated) == (True, late)
        assert fresh.age_seconds is not None and 0 <= fresh.age_seconds < 60  # by the server


def test_a_failed_gatherer_is_read_once(dsn: str, tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {table: nowhere}\n")
    with session(load_config(str(cfg), {}), dsn) as s:
        facts = Gatherer(s)
        with pytest.raises(OperationFailed) as first:
            facts.table()
        with pytest.raises(OperationFailed) as again:
            facts.table()
        assert again.value is first.value
        assert first.value.message == "source table public.nowhere does not exist"
        assert facts.table_bloat() is None  # judged OK: nothing to estimate
        with pytest.raises(OperationFailed, match="epstats init --with-requests-table"):
            facts.index_bloat()
        assert facts.maintenance() == MaintenanceFacts(False, {})
        with pytest.raises(OperationFailed, match=r"source table public\.nowhere does not exist"):
            facts.rollup()  # the raw rows are read first: UNKNOWN, not "no rollup"


def one(conn: psycopg.Connection[Any], query: str) -> tuple[Any, ...]:
    row = conn.execute(query).fetchone()
    assert row is not None
    return tuple(row)


def test_status_sections_keep_their_json_shape(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _healthy(dsn, conn, tmp_path)
    conn.execute("DROP INDEX idx_requests_timestamp")
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "status")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert list(doc) == [
        "server", "table", "indexes", "rollup", "maintenance", "endpoints", "role_settings",
    ]  # fmt: skip
    assert list(doc["endpoints"]) == [
        "per_day", "raw_per_day", "normalized_per_day", "normalization", "requests_per_day",
        "method", "estimated", "day", "rows_read", "from", "raw_from",
    ]  # fmt: skip
    assert doc["endpoints"]["method"] == "rollup" and doc["endpoints"]["per_day"] <= 40
    assert list(doc["server"]) == [
        "server_version", "database", "database_bytes", "in_recovery", "started_at",
        "max_connections", "autovacuum_freeze_max_age", "now",
    ]  # fmt: skip
    assert doc["table"]["present"] is True and doc["table"]["estimated_rows"] == 20000
    by_name = {i["name"]: i for i in doc["indexes"]}
    assert by_name["idx_requests_timestamp"]["missing"] is True
    assert "missing" not in by_name["idx_requests_endpoint_timestamp"]
    assert list(doc["rollup"]) == [
        "name", "usable", "strategy", "built_by_epstats", "size_bytes", "watermark", "rows",
        "oldest_unaggregated", "unaggregated_age_seconds",
    ]  # fmt: skip
    assert doc["rollup"]["strategy"] == "incremental" and doc["rollup"]["built_by_epstats"]
    assert [t["task"] for t in doc["maintenance"]] == [
        "cleanup", "partitions", "vacuum", "analyze", "reindex", "refresh", "retention", "verify",
    ]  # fmt: skip
    statuses = {t["task"]: t["last_status"] for t in doc["maintenance"]}
    assert statuses["vacuum"] == "ok"
    # `view build` counts as a refresh (recorded as the build, not on its own)
    refresh = next(t for t in doc["maintenance"] if t["task"] == "refresh")
    assert refresh["last_ok"] is not None and refresh["due_now"] is False
    assert statuses["analyze"] is None  # done by VACUUM (ANALYZE): not recorded on its own
    conn.execute("DROP SCHEMA epstats CASCADE")
    doc = json.loads(run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "status").stdout)
    assert doc["maintenance"] == "no run history (epstats init)"


def test_status_says_never_refreshed_for_a_rollup_without_a_watermark() -> None:
    """The status table for people: never `None` (a rollup read with no watermark)."""
    from epstats_cli.cli.health import _more_tables

    rollup = {
        "name": "public.endpoint_daily_stats",
        "usable": True,
        "strategy": "incremental",
        "built_by_epstats": True,
        "rows": 0,
        "size_bytes": 8192,
        "watermark": None,
        "oldest_unaggregated": None,
        "unaggregated_age_seconds": None,
    }
    (table,) = _more_tables({"rollup": rollup})
    values = {row["item"]: row["value"] for row in table.rows}
    assert values["watermark"] == "never refreshed"
