"""vacuumdb's options on real servers: `vacuum --parallel N`, `--min-xid-age`,
`--min-mxid-age`, `analyze --in-stages`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.helpers import fill

pytestmark = pytest.mark.one_version  # heavy: the first server version only


def _ready(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, extra: str = "") -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("view: {strategy: incremental}\n" + extra)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20_000)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply").code == 0
    return str(cfg)


def _tasks(cfg: str, dsn: str, *args: str, code: int = 0) -> list[dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", *args)
    assert r.code == code, r.stderr
    tasks: list[dict[str, Any]] = json.loads(r.stdout)["tasks"]
    return tasks


def test_vacuum_parallel(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _ready(dsn, conn, tmp_path)
    planned = _tasks(cfg, dsn, "vacuum", "--parallel", "2", "--dry-run")
    assert [t["sql"] for t in planned] == ['VACUUM (SKIP_LOCKED, PARALLEL 2) "public"."requests"']
    assert planned[0]["status"] == "planned"
    assert "up to 2 parallel index vacuuming worker(s)" in planned[0]["reason"]
    done = _tasks(cfg, dsn, "vacuum", "--analyze", "--parallel", "2")
    assert [t["sql"] for t in done] == [
        'VACUUM (SKIP_LOCKED, ANALYZE, PARALLEL 2) "public"."requests"'
    ]
    assert done[0]["status"] == "ok"
    last = conn.execute(
        "SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 'requests'"
    ).fetchone()
    assert last == (True,)
    r = run_cli("-c", cfg, "--dsn", dsn, "vacuum", "--parallel", "-1")
    assert r.code == 2 and "--parallel" in r.stderr


def test_vacuum_min_xid_and_mxid_age(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path)
    age = conn.execute("SELECT age(relfrozenxid) FROM pg_class WHERE relname = 'requests'")
    row = age.fetchone()
    assert row is not None and row[0] >= 1
    young = _tasks(cfg, dsn, "vacuum", "--min-xid-age", str(row[0] + 1_000_000))
    assert [t["status"] for t in young] == ["skipped"]
    assert young[0]["reason"].startswith("transaction-ID age ")
    assert f"below --min-xid-age {row[0] + 1_000_000:,}" in young[0]["reason"]
    never = conn.execute(
        "SELECT last_vacuum FROM pg_stat_user_tables WHERE relname = 'requests'"
    ).fetchone()
    assert never == (None,)
    old = _tasks(cfg, dsn, "vacuum", "--min-xid-age", "1")
    assert [t["status"] for t in old] == ["ok"]
    # a fresh table has used no multixact: its multixact age is 0, below any minimum
    mxid = _tasks(cfg, dsn, "vacuum", "--min-mxid-age", "1")
    assert [t["status"] for t in mxid] == ["skipped"]
    assert "multixact age 0 is below --min-mxid-age 1" in mxid[0]["reason"]


def test_analyze_in_stages(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _ready(dsn, conn, tmp_path)
    planned = _tasks(cfg, dsn, "analyze", "--in-stages", "--dry-run")
    assert [t["reason"][:10] for t in planned] == ["stage 1 of", "stage 2 of", "stage 3 of"]
    table = '"public"."requests"'
    assert [t["sql"] for t in planned] == [
        "BEGIN;\nSELECT pg_catalog.set_config('default_statistics_target', '1', true);\n"
        f"ANALYZE (SKIP_LOCKED) {table};\nCOMMIT",
        "BEGIN;\nSELECT pg_catalog.set_config('default_statistics_target', '10', true);\n"
        f"ANALYZE (SKIP_LOCKED) {table};\nCOMMIT",
        f"ANALYZE (SKIP_LOCKED) {table}",
    ]
    analyzed = conn.execute(
        "SELECT last_analyze FROM pg_stat_user_tables WHERE relname = 'requests'"
    ).fetchone()
    assert analyzed == (None,)  # a dry run changes nothing
    done = _tasks(cfg, dsn, "analyze", "--in-stages")
    assert [t["status"] for t in done] == ["ok", "ok", "ok"]
    assert [t["sql"] for t in done] == [t["sql"] for t in planned]
    # the last stage left full statistics (a target of 1 keeps one common value, not 40)
    common = conn.execute(
        "SELECT cardinality(most_common_vals::text::text[]) FROM pg_stats "
        "WHERE tablename = 'requests' AND attname = 'endpoint'"
    ).fetchone()
    assert common == (40,)


def test_analyze_in_stages_skipped_for_a_lock_is_a_failure(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A stage runs in a transaction: a table SKIP_LOCKED skipped there is still retried,
    then reported, never taken for analyzed."""
    cfg = _ready(dsn, conn, tmp_path, "database: {lock_timeout: 200ms}\n"
                 "maintenance: {lock_retries: 0}\n")  # fmt: skip
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
        tasks = _tasks(cfg, dsn, "analyze", "--in-stages", code=1)
        holder.rollback()
    assert tasks[0]["status"] == "failed"
    assert "lock" in tasks[0]["reason"]


def test_an_interrupted_in_stages_leaves_analyze_due(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """SIGTERM during stage 2: stage 1 had committed statistics at a target of 1. The message
    says so, and only a finished final stage counts as an analyze: maintain's analyze stays
    due (not "next due in 23h"), until a full ANALYZE."""
    import os
    import signal
    import subprocess
    import sys
    import time

    cfg = _ready(dsn, conn, tmp_path, "maintenance: {lock_retries: 100}\n")
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    conn.execute("SELECT pg_stat_force_next_flush()")  # the fill counted before the analyze
    assert run_cli("-c", cfg, "--dsn", dsn, "analyze").code == 0  # a full one, just now

    def analyze_due() -> dict[str, Any]:
        return _tasks(cfg, dsn, "maintain", "--dry-run", "--only", "analyze")[0]

    assert analyze_due()["status"] == "skipped"

    def wait_for(query: str) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()
            if conn.execute(query).fetchone():
                return
            time.sleep(0.02)
        raise AssertionError(f"never saw: {query}")

    run = "SELECT 1 FROM epstats.runs WHERE task = 'analyze' AND target = '{}' AND status = '{}'"
    rollup_holder = psycopg.connect(dsn)
    table_holder = psycopg.connect(dsn)
    env = {k: v for k, v in os.environ.items() if k not in ("EPSTATS_CONFIG", "EPSTATS_DSN")}
    try:
        # stage 1 of the table runs; the rollup's waits for its lock, meanwhile the table is
        # locked, then the rollup's released: stage 2 of the table waits, and is interrupted
        rollup_holder.execute("LOCK TABLE endpoint_daily_stats IN ACCESS EXCLUSIVE MODE")
        proc = subprocess.Popen(
            [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, "analyze",
             "--in-stages"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        )  # fmt: skip
        wait_for(run.format("public.requests (stage 1 of 3)", "ok"))
        table_holder.execute("LOCK TABLE requests IN ACCESS EXCLUSIVE MODE")
        rollup_holder.rollback()
        wait_for(run.format("public.requests (stage 2 of 3)", "running"))
        proc.send_signal(signal.SIGTERM)
        _out, err = proc.communicate(timeout=60)
    finally:
        rollup_holder.close()
        table_holder.close()
    assert proc.returncode == 143, err
    assert (
        "analyze public.requests (stage 2 of 3) did not finish; the statistics of "
        "public.requests are left at stage 1's target (default_statistics_target 1)"
    ) in err
    due = analyze_due()
    assert due["status"] == "planned", due
    assert "an `analyze --in-stages` did not finish" in due["reason"]
    assert run_cli("-c", cfg, "--dsn", dsn, "analyze").code == 0
    assert analyze_due()["status"] == "skipped"


def test_min_xid_age_judges_each_partition(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """As vacuumdb, relation by relation: on a partitioned table only the partitions that
    reach --min-xid-age are vacuumed (their age the reason), the others skipped with theirs."""
    conn.execute(
        'CREATE TABLE requests (endpoint text NOT NULL, "timestamp" timestamptz NOT NULL, '
        'response_time double precision, status integer) PARTITION BY RANGE ("timestamp");'
        "CREATE TABLE requests_old PARTITION OF requests "
        "FOR VALUES FROM (MINVALUE) TO (now() - interval '2 days');"
        "CREATE TABLE requests_new PARTITION OF requests "
        "FOR VALUES FROM (now() - interval '2 days') TO (MAXVALUE)"
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init").code == 0
    fill(conn, 5_000)
    for _ in range(20):
        conn.execute("SELECT pg_catalog.txid_current()")  # each its own transaction
    conn.execute("VACUUM (FREEZE) requests_new")  # young again
    ages = dict(
        conn.execute(
            "SELECT relname, age(relfrozenxid) FROM pg_class WHERE relname LIKE 'requests_%'"
        ).fetchall()
    )
    assert ages["requests_old"] > ages["requests_new"] + 10
    tasks = _tasks(c, dsn, "vacuum", "--min-xid-age", str(ages["requests_old"]))
    by = {t["target"]: t for t in tasks}
    assert set(by) == {"public.requests_new", "public.requests_old"}
    assert by["public.requests_old"]["status"] == "ok"
    assert by["public.requests_old"]["sql"] == 'VACUUM (SKIP_LOCKED) "public"."requests_old"'
    assert by["public.requests_old"]["reason"].startswith(
        f"transaction-ID age {ages['requests_old']:,} reaches {ages['requests_old']:,}"
    )
    assert by["public.requests_new"]["status"] == "skipped"
    assert "below --min-xid-age" in by["public.requests_new"]["reason"]
    vacuumed = conn.execute(
        "SELECT relname FROM pg_stat_user_tables WHERE last_vacuum IS NOT NULL ORDER BY 1"
    ).fetchall()
    assert ("requests_old",) in vacuumed
