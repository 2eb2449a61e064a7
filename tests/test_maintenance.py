"""vacuum / analyze / reindex / maintain against real servers."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli.maintain import LOCK_CLASS
from tests.conftest import Server, run_cli, wait_for_replay
from tests.helpers import Writer, catalog, fill, invalid_indexes
from tests.test_indexes import _cancel_build_halfway


def _ready(
    dsn: str,
    conn: psycopg.Connection[Any],
    rows: int = 20000,
    strategy: str = "incremental",
    tmp_path: Path | None = None,
    extra: str = "",
) -> str:
    assert tmp_path is not None
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\n" + extra)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, rows)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply").code == 0
    assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
    # this connection's inserts counted now (not up to PGSTAT_IDLE_INTERVAL later), then the
    # rollup analyzed: what the tests expect of maintain does not hang on when the server
    # publishes the counters its analyze rule reads (n_mod_since_analyze)
    conn.execute("SELECT pg_stat_force_next_flush()")
    conn.execute("ANALYZE endpoint_daily_stats")
    return str(cfg)


def _maintain(cfg: str, dsn: str, *args: str) -> tuple[int, list[dict[str, Any]], str]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "maintain", *args)
    doc = json.loads(r.stdout) if r.stdout.strip() else {"tasks": []}
    return r.code, doc["tasks"], r.stderr


FAST_LOCKS = "database: {lock_timeout: 200ms}\nmaintenance: {lock_retries: 0}\n"


def _maintain_held(
    cfg: str, dsn: str, lock: str, *args: str
) -> tuple[int, int, list[dict[str, Any]], str]:
    """maintain while another session holds `lock` (run in its open transaction): the
    holder's pid, then what _maintain gives."""
    with psycopg.connect(dsn) as holder:
        holder.execute(lock)
        pid = holder.info.backend_pid
        code, tasks, err = _maintain(cfg, dsn, *args)
        holder.rollback()
    return pid, code, tasks, err


def test_one_off_commands(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _ready(dsn, conn, tmp_path=tmp_path)
    conn.execute("DELETE FROM requests WHERE status = 404")
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "vacuum", "--analyze")
    assert r.code == 0, r.stderr
    tasks = json.loads(r.stdout)["tasks"]
    assert {t["target"] for t in tasks} == {"public.requests", "public.endpoint_daily_stats"}
    assert all(t["status"] == "ok" and "SKIP_LOCKED, ANALYZE" in t["sql"] for t in tasks)
    stats = conn.execute(
        "SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL, n_dead_tup "
        "FROM pg_stat_user_tables WHERE relname = 'requests'"
    ).fetchone()
    assert stats is not None and stats[0] and stats[1]
    assert run_cli("-c", cfg, "--dsn", dsn, "analyze").code == 0
    r = run_cli(
        "-c", cfg, "--dsn", dsn, "--format", "json", "reindex", "--index", "idx_requests_timestamp"
    )
    assert r.code == 0, r.stderr
    tasks = json.loads(r.stdout)["tasks"]
    assert [t["sql"] for t in tasks] == [
        'REINDEX INDEX CONCURRENTLY "public"."idx_requests_timestamp"'
    ]
    assert invalid_indexes(conn) == []
    r = run_cli("-c", cfg, "--dsn", dsn, "reindex", "--index", "nope")
    assert r.code == 1 and "no index named nope" in r.stderr
    r = run_cli("-c", cfg, "--dsn", dsn, "vacuum", "--full")
    assert r.code == 2 and "ACCESS EXCLUSIVE" in r.stderr and "pg_repack" in r.stderr
    # one-off runs are recorded, so the schedule knows about them
    runs = conn.execute("SELECT task, status FROM epstats.runs ORDER BY id").fetchall()
    assert ("vacuum", "ok") in runs and ("reindex", "ok") in runs


def test_maintain_runs_what_is_due_and_records_it(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path=tmp_path)
    code, tasks, err = _maintain(cfg, dsn)
    assert code == 0, err
    by_task = {t["task"]: t for t in tasks}
    assert by_task["vacuum"]["status"] == "ok"
    assert by_task["analyze"]["status"] == "skipped"  # done by VACUUM (ANALYZE)
    # `view build` (recorded) counts as a refresh
    assert by_task["refresh"]["status"] == "skipped"
    assert by_task["refresh"]["reason"].startswith("not due: next due in ")
    per_index = [t for t in tasks if t["task"] == "reindex" and ".idx_" in t["target"]]
    assert per_index and all(t["status"] == "skipped" for t in per_index)  # fresh: not bloated
    assert all("estimated bloat" in t["reason"] for t in per_index)
    summary = [t for t in tasks if t["task"] == "reindex" and t["target"].startswith("indices")]
    assert [t["status"] for t in summary] == ["ok"]
    rows = conn.execute(
        "SELECT task, target, started_at, finished_at, status, reason, sql FROM epstats.runs"
    ).fetchall()
    assert rows and all(r[2] is not None and r[3] is not None and r[3] >= r[2] for r in rows)
    assert all(r[4] in ("ok", "skipped") and r[5] for r in rows)
    assert any(r[0] == "vacuum" and "VACUUM" in r[6] for r in rows)
    # a second run right after: nothing due
    code, tasks, _ = _maintain(cfg, dsn)
    assert code == 0
    assert all(t["status"] == "skipped" and t["reason"].startswith("not due") for t in tasks), tasks
    r = run_cli("-c", cfg, "--dsn", dsn, "-q", "maintain")
    assert r.code == 0 and r.stdout == "" and r.stderr == ""


def test_dry_run_changes_nothing(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _ready(dsn, conn, tmp_path=tmp_path)
    before = catalog(conn)
    history = conn.execute("SELECT count(*) FROM epstats.runs").fetchone()
    stats = conn.execute("SELECT last_vacuum, last_analyze FROM pg_stat_user_tables").fetchall()
    r = run_cli(
        "-c",
        cfg,
        "--dsn",
        dsn,
        "maintain",
        "--dry-run",
        "--force",
        "vacuum,analyze,reindex,refresh,cleanup",
    )
    assert r.code == 0, r.stderr
    for text in (
        "VACUUM (SKIP_LOCKED, ANALYZE)",
        "ANALYZE (SKIP_LOCKED)",
        "REINDEX INDEX CONCURRENTLY",
        "DELETE FROM epstats.runs",
        "INSERT INTO",
    ):
        assert text in r.stdout, text
    r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--dry-run")
    assert r.code == 0 and "due" in r.stdout
    assert catalog(conn) == before
    assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == history
    assert (
        conn.execute("SELECT last_vacuum, last_analyze FROM pg_stat_user_tables").fetchall()
        == stats
    )


def test_two_maintains_at_once(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _ready(dsn, conn, tmp_path=tmp_path)
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute(
            "SELECT pg_advisory_lock(%s, hashtext('epstats.maintain:public.requests'))",
            (LOCK_CLASS,),
        )
        start = time.monotonic()
        proc = subprocess.run(
            [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, "maintain"],
            capture_output=True,
            text=True,
            check=False,
        )
        elapsed = time.monotonic() - start
        assert proc.returncode == 75, proc.stderr
        assert f"pid {holder.info.backend_pid}" in proc.stderr and "started" in proc.stderr
        assert proc.stderr.count("\n") == 1
        assert elapsed < 5  # it does not wait for the lock (a whole process start included)
    # and for real: while one maintain runs (held up, within lock_timeout, by a table lock),
    # a second exits 75 naming it, and the first then finishes its work
    slow = Path(cfg).with_name("slow.yaml")
    slow.write_text(Path(cfg).read_text() + "database: {lock_timeout: 30s}\n")
    with psycopg.connect(dsn) as blocker:
        blocker.execute("LOCK TABLE requests IN SHARE MODE")  # REINDEX CONCURRENTLY waits
        first = subprocess.Popen(
            [
                *(sys.executable, "-m", "epstats_cli", "-c", str(slow), "--dsn", dsn),
                *("maintain", "--only", "reindex", "--force", "reindex"),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            runner = _wait_for_waiting_maintain(conn, first)
            second = subprocess.run(
                [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, "maintain"],
                capture_output=True,
                text=True,
                check=False,
            )
        finally:
            blocker.rollback()
        out, err = first.communicate(timeout=60)
    assert second.returncode == 75, second.stderr
    assert f"pid {runner}" in second.stderr
    assert first.returncode == 0, out + err
    rebuilt = conn.execute(
        "SELECT target FROM epstats.runs WHERE task = 'reindex' AND status = 'ok' ORDER BY 1"
    ).fetchall()
    indices = conn.execute(
        "SELECT 'public.' || indexrelid::regclass::text FROM pg_index "
        "WHERE indrelid IN ('requests'::regclass, 'endpoint_daily_stats'::regclass)"
    ).fetchall()
    # every index once, by the first run only, and the task's summary
    assert rebuilt == sorted([*indices, ("indices of public.requests",)])


def _wait_for_waiting_maintain(conn: psycopg.Connection[Any], proc: subprocess.Popen[str]) -> int:
    """The backend pid of a running maintain once it waits for a table lock."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        row = conn.execute(
            "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks w ON w.pid = a.pid "
            "WHERE a.application_name = 'epstats' AND w.locktype = 'relation' AND NOT w.granted"
        ).fetchone()
        if row:
            return int(row[0])
        time.sleep(0.05)
    raise AssertionError("the first maintain never got to wait for the table lock")


def test_conflicting_lock_fails_that_task_only(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(
        dsn,
        conn,
        tmp_path=tmp_path,
        extra="database: {lock_timeout: 200ms}\nmaintenance: {lock_retries: 1}\n",
    )
    lock = "LOCK TABLE requests IN SHARE MODE"
    pid, code, tasks, err = _maintain_held(cfg, dsn, lock, "--force", "vacuum,analyze,refresh")
    assert code == 1
    failed = [t for t in tasks if t["status"] == "failed"]
    assert {t["task"] for t in failed} >= {"vacuum"}
    assert all(f"pid {pid}" in t["reason"] for t in failed)
    assert any(t["task"] == "refresh" and t["status"] == "ok" for t in tasks)
    assert f"pid {pid}" in err
    recorded = conn.execute(
        "SELECT task, status, error FROM epstats.runs WHERE status = 'failed'"
    ).fetchall()
    assert recorded and all(f"pid {pid}" in (r[2] or "") for r in recorded)
    code, tasks, err = _maintain(cfg, dsn)
    assert code == 0, err
    assert any(t["task"] == "vacuum" and t["status"] == "ok" for t in tasks)


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_a_lock_held_on_the_rollup_fails_its_tasks_only(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """An ACCESS EXCLUSIVE lock on the rollup (a plain REFRESH, a LOCK TABLE) held longer than
    lock_timeout: the tasks that read it fail, each recorded with the holder's pid, and
    maintain still runs the others and prints its document (before, it stopped before any
    task: its rights check and its parameter check waited on the rollup)."""
    cfg = _ready(dsn, conn, strategy=strategy, tmp_path=tmp_path, extra=FAST_LOCKS)
    lock = (
        "REFRESH MATERIALIZED VIEW endpoint_daily_stats"  # a DBA's plain refresh
        if strategy == "materialized"
        else "LOCK TABLE endpoint_daily_stats IN ACCESS EXCLUSIVE MODE"
    )
    pid, code, tasks, err = _maintain_held(
        cfg, dsn, lock, "--force", "vacuum,refresh,verify,cleanup"
    )
    assert code == 1, err
    by_task: dict[str, list[dict[str, Any]]] = {}
    for t in tasks:
        by_task.setdefault(t["task"], []).append(t)
    for task in ("refresh", "verify"):
        assert [t["status"] for t in by_task[task]] == ["failed"], by_task
        assert f"pid {pid}" in by_task[task][0]["reason"]
    # the source table's vacuum ran beside them
    assert any(
        t["target"] == "public.requests" and t["status"] == "ok" for t in by_task["vacuum"]
    ), by_task["vacuum"]
    assert "internal error" not in err and "Traceback" not in err
    recorded = conn.execute(
        "SELECT task, error, failure FROM epstats.runs WHERE status = 'failed' AND task IN "
        "('refresh', 'verify')"
    ).fetchall()
    assert {r[0] for r in recorded} == {"refresh", "verify"}
    assert {r[2] for r in recorded} == {"lock_busy"}  # check's maintain_failed: a busy lock
    assert all(f"pid {pid}" in (r[1] or "") for r in recorded)
    code, tasks, err = _maintain(cfg, dsn, "--force", "refresh,verify")
    assert code == 0, err


def test_a_failed_task_is_on_stderr_even_when_stdout_cannot_be_written(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """cron mails stderr: a task's failure (naming the lock's holder) is there even when the
    document cannot be written (`> /dev/full`), beside the one line that says so."""
    cfg = _ready(dsn, conn, tmp_path=tmp_path, extra=FAST_LOCKS)
    cmd = [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, "--format", "json"]
    with psycopg.connect(dsn) as holder, open("/dev/full", "w") as full:
        holder.execute("LOCK TABLE endpoint_daily_stats IN ACCESS EXCLUSIVE MODE")
        pid = holder.info.backend_pid
        r = subprocess.run(
            [*cmd, "maintain", "--only", "refresh", "--force", "refresh"],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
        holder.rollback()
    assert r.returncode == 1
    lines = r.stderr.splitlines()
    assert any(ln.startswith("epstats: error: refresh ") and f"pid {pid}" in ln for ln in lines)
    assert lines[-1] == "epstats: error: cannot write output: No space left on device", lines


def test_a_verify_whose_repair_meets_a_busy_lock_is_recorded_as_lock_busy(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The verify task finds a day that differs (a late row) and its repair meets a lock held
    on the rollup: the run's summary row is recorded as a busy lock, like the repair's own
    row, so check's maintain_failed judges it as one (it was NULL: read as an error)."""
    cfg = _ready(dsn, conn, tmp_path=tmp_path, extra=FAST_LOCKS)
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp, response_time, status) "
        "VALUES ('/late', now() - interval '6 days', 5, 200)"
    )
    lock = "LOCK TABLE endpoint_daily_stats IN EXCLUSIVE MODE"  # reads still pass
    _pid, code, tasks, err = _maintain_held(cfg, dsn, lock, "--only", "verify", "--force", "verify")
    assert code == 1, err
    assert [t["status"] for t in tasks if t["task"] == "verify"][-1] == "failed", tasks
    kinds = conn.execute(
        "SELECT DISTINCT failure FROM epstats.runs WHERE task = 'verify' AND status = 'failed'"
    ).fetchall()
    assert kinds == [("lock_busy",)], kinds


def test_a_lock_held_on_the_source_table_names_its_holder(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """What decides which tasks are due reads the source table's sizes: a DBA's ACCESS
    EXCLUSIVE lock held past lock_timeout fails maintain, in one line naming the holder."""
    cfg = _ready(dsn, conn, tmp_path=tmp_path, extra=FAST_LOCKS)
    lock = "LOCK TABLE requests IN ACCESS EXCLUSIVE MODE"
    pid, code, _tasks, err = _maintain_held(cfg, dsn, lock, "--force", "refresh")
    assert code == 1
    assert len(err.strip().splitlines()) == 1, err
    assert f"pid {pid}" in err and "holds AccessExclusiveLock on requests" in err, err


def test_writer_is_never_blocked_by_maintain(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, rows=400_000, tmp_path=tmp_path, extra="database: {lock_timeout: 1s}\n")
    conn.execute("DELETE FROM requests WHERE status = 404")
    with Writer(dsn) as writer:
        time.sleep(0.2)
        code, tasks, err = _maintain(cfg, dsn, "--force", "vacuum,analyze,reindex,refresh")
        time.sleep(0.2)
    assert code == 0, err
    assert {t["task"] for t in tasks if t["status"] == "ok"} >= {"vacuum", "reindex", "refresh"}
    assert writer.errors == [] and writer.count > 10
    assert writer.max_wait < 1.0, f"an insert waited {writer.max_wait:.3f}s"
    assert invalid_indexes(conn) == []


def test_cleanup_drops_reindex_leftovers(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, rows=600_000, tmp_path=tmp_path)
    _cancel_build_halfway(dsn, conn, "REINDEX INDEX CONCURRENTLY idx_requests_endpoint_timestamp")
    assert any("_ccnew" in n for n in invalid_indexes(conn))
    code, tasks, err = _maintain(cfg, dsn, "--only", "cleanup")
    assert code == 0, err
    assert any(t["task"] == "cleanup" and "_ccnew" in t["target"] for t in tasks)
    assert invalid_indexes(conn) == []


def test_max_runtime_skips_what_would_not_fit(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path=tmp_path)
    conn.execute(
        "INSERT INTO epstats.runs (task, target, started_at, finished_at, status) "
        "VALUES ('vacuum', 'public.requests', now() - interval '30 days 2 hours', "
        "now() - interval '30 days', 'ok')"
    )
    code, tasks, _ = _maintain(
        cfg, dsn, "--only", "vacuum,refresh", "--force", "refresh", "--max-runtime", "10m"
    )
    assert code == 0
    vac = next(t for t in tasks if t["task"] == "vacuum")
    assert vac["status"] == "skipped" and "would not fit" in vac["reason"]
    assert next(t for t in tasks if t["task"] == "refresh")["status"] == "ok"
    r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--max-runtime", "soon")
    assert r.code == 2 and "--max-runtime" in r.stderr
    r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "vacum")
    assert r.code == 2 and "unknown task vacum" in r.stderr


def test_maintain_needs_init(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute(
        "CREATE TABLE requests (endpoint text, timestamp timestamptz, "
        "response_time float8, status int)"
    )
    r = run_cli("--dsn", dsn, "maintain")
    assert r.code == 1 and "epstats init" in r.stderr and r.stderr.count("\n") == 1


def test_standby_is_skipped(
    server: Server, standby: Server, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path=tmp_path)
    replica = wait_for_replay(server.admin_dsn, standby, conn.info.dbname)
    r = run_cli("-c", cfg, "--dsn", replica, "maintain")
    assert r.code == 0, r.stderr
    assert "hot standby" in r.stdout
    r = run_cli("-c", cfg, "--dsn", replica, "status")
    assert r.code == 0 and "standby" in r.stdout


@pytest.mark.parametrize("strategy", ["materialized"])
def test_maintain_refreshes_materialized(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, strategy=strategy, tmp_path=tmp_path)
    conn.execute("INSERT INTO requests VALUES ('/fresh', now(), 1, 200)")
    code, tasks, err = _maintain(cfg, dsn, "--only", "refresh", "--force", "refresh")
    assert code == 0, err
    assert tasks[0]["reason"].endswith("REFRESH CONCURRENTLY")
    assert conn.execute(
        "SELECT count(*) FROM endpoint_daily_stats WHERE endpoint = '/fresh'"
    ).fetchone() == (1,)
