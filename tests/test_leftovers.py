"""Leftovers do not wait a day (issue 13, item 7): an invalid index, the new rollup of a
`view build --replace` stopped between its two transactions, or a run its killed process left
`running` makes cleanup due at once, and cleanup (or the next --replace) drops it or marks it
interrupted; reindex never targets an invalid index."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import config, rollup, source
from epstats_cli.db import connect
from epstats_cli.execute import Executor
from epstats_cli.rollup.inspect import facts
from tests.conftest import run_cli
from tests.helpers import fill, invalid_indexes

SPARE = "endpoint_daily_stats_epstats_new"
BUILD_LOCK = "epstats.build:public.endpoint_daily_stats"  # what `view build --replace` holds
REPLACE = ("view", "build", "--replace")


def _ready(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, strategy: str) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    for args in (["indexes", "apply"], ["view", "build"], ["maintain"]):
        r = run_cli("-c", str(cfg), "--dsn", dsn, *args)
        assert r.code == 0, r.stderr
    return str(cfg)


def _stop_between_build_and_swap(dsn: str, strategy: str) -> None:
    """What a `view build --replace` killed after its first transaction leaves."""
    s = connect(config.build({"view": {"strategy": strategy}}), dsn)
    try:
        steps = rollup.plan_build(s, strategy, facts(s), 0, source.check_columns(s))
        assert [st.task for st in steps] == ["build", "swap"]
        assert Executor(s).run(steps[0]).status == "ok"
    finally:
        s.conn.close()


def _exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def _cleanup(cfg: str, dsn: str) -> dict[str, dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "maintain", "--only", "cleanup")
    assert r.code == 0, r.stderr
    return {t["target"]: t for t in json.loads(r.stdout)["tasks"]}


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_a_stopped_replace_is_cleaned_up_at_once(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, strategy)
    _stop_between_build_and_swap(dsn, strategy)
    assert _exists(conn, SPARE)
    # the next --replace is not stuck on it (it was: DuplicateTable, every time)
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "build", "--replace")
    assert r.code == 0, r.stderr
    assert not _exists(conn, SPARE)
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "verify").code == 0

    # cleanup ran minutes ago, yet the leftover makes it due now; it drops it and its state row
    _stop_between_build_and_swap(dsn, strategy)
    tasks = _cleanup(cfg, dsn)
    summary = tasks["leftovers of public.requests"]
    assert summary["status"] == "ok", tasks
    assert f"leftover(s) of interrupted work: public.{SPARE}" in summary["reason"]
    assert tasks[f"public.{SPARE}"]["status"] == "ok"
    assert not _exists(conn, SPARE)
    state = conn.execute("SELECT view_name FROM epstats.rollup_state").fetchall()
    assert state == [("public.endpoint_daily_stats",)]
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "verify").code == 0
    # nothing left: not due again
    tasks = _cleanup(cfg, dsn)
    assert tasks["leftovers of public.requests"]["reason"].startswith("not due")


def test_a_running_replace_is_not_a_leftover(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "materialized")
    _stop_between_build_and_swap(dsn, "materialized")
    with psycopg.connect(dsn, autocommit=True) as builder:  # holds the build lock
        builder.execute("SELECT pg_advisory_lock(hashtext(%s))", (BUILD_LOCK,))
        tasks = _cleanup(cfg, dsn)
        spare = tasks[f"public.{SPARE}"]
        assert spare["status"] == "skipped"
        assert f"(pid {builder.info.backend_pid})" in spare["reason"]
        r = run_cli("-c", cfg, "--dsn", dsn, "view", "build", "--replace")
        assert r.code == 1 and "another `epstats view build --replace`" in r.stderr
    assert _exists(conn, SPARE)
    assert _cleanup(cfg, dsn)[f"public.{SPARE}"]["status"] == "ok"


def test_an_invalid_index_is_cleaned_up_at_once_and_never_reindexed(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "materialized")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY broken ON requests (endpoint)")
    assert invalid_indexes(conn) == ["broken"]
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "reindex")
    assert r.code == 0, r.stderr
    broken = [t for t in json.loads(r.stdout)["tasks"] if t["target"] == "public.broken"]
    assert [t["status"] for t in broken] == ["skipped"]
    recorded = conn.execute("SELECT status FROM epstats.runs WHERE target = 'public.broken'")
    assert recorded.fetchall() == [("skipped",)]
    assert invalid_indexes(conn) == ["broken"]  # untouched: no broken_ccnew beside it
    tasks = _cleanup(cfg, dsn)
    assert tasks["public.broken"]["status"] == "ok"
    assert (
        "1 leftover(s) of interrupted work: public.broken"
        in (tasks["leftovers of public.requests"]["reason"])
    )
    assert invalid_indexes(conn) == []


def _gone(conn: psycopg.Connection[Any], pid: int) -> None:
    """Wait until server process `pid` has ended."""
    deadline = time.monotonic() + 60
    while conn.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone():
        assert time.monotonic() < deadline, f"backend {pid} never ended"
        time.sleep(0.05)


def _swaps(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute("SELECT status FROM epstats.runs WHERE task = 'swap' ORDER BY id")
    return [r[0] for r in rows.fetchall()]


def test_a_replace_killed_during_its_swap_is_cleaned_up_by_the_next_maintain(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "materialized")
    Path(cfg).write_text("view: {strategy: materialized}\ndatabase: {lock_timeout: 1s}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("EPSTATS_CONFIG", "EPSTATS_DSN")}
    with psycopg.connect(dsn) as reader:  # a long read: the swap waits for it
        reader.execute("SELECT count(*) FROM endpoint_daily_stats")
        proc = subprocess.Popen(
            [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, *REPLACE],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
        )
        deadline = time.monotonic() + 60
        found = None
        while found is None:
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            found = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                "AND query LIKE 'DROP MATERIALIZED VIEW%%'"
            ).fetchone()
            time.sleep(0.02)
        os.kill(proc.pid, signal.SIGKILL)  # nothing recorded, the swap's row still `running`
        proc.communicate()
        _gone(conn, found[0])  # its transaction ends at lock_timeout: rolled back
    assert _exists(conn, SPARE) and _swaps(conn)[-1] == "running"

    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "maintain")
    assert r.code == 0, r.stderr
    tasks = {t["target"]: t for t in json.loads(r.stdout)["tasks"] if t["task"] == "cleanup"}
    reason = tasks["leftovers of public.requests"]["reason"]
    assert reason.startswith("2 leftover(s) of interrupted work:"), reason
    assert "the swap of public.endpoint_daily_stats left running (run " in reason
    assert tasks[f"public.{SPARE}"]["status"] == "ok"
    assert not _exists(conn, SPARE) and _swaps(conn)[-1] == "interrupted"
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "verify").code == 0
    # a later --replace succeeds, and nothing is left for cleanup
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "build", "--replace")
    assert r.code == 0, r.stderr
    assert _cleanup(cfg, dsn)["leftovers of public.requests"]["reason"].startswith("not due")


def test_a_run_left_running_by_a_killed_process_makes_cleanup_due_at_once(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "incremental")
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build", "--replace").code == 0
    # killed after its swap committed, before it recorded how the swap ended
    with psycopg.connect(dsn) as gone:
        pid = gone.info.backend_pid
    _gone(conn, pid)
    conn.execute(
        "UPDATE epstats.runs SET status = 'running', finished_at = NULL, pid = %s "
        "WHERE id = (SELECT max(id) FROM epstats.runs WHERE task = 'swap')",
        (pid,),
    )
    # a run whose process is still there is no leftover
    with psycopg.connect(dsn) as alive:
        conn.execute(
            "INSERT INTO epstats.runs (task, target, started_at, status, pid) "
            "VALUES ('build', 'public.endpoint_daily_stats', now(), 'running', %s)",
            (alive.info.backend_pid,),
        )
        tasks = _cleanup(cfg, dsn)
        reason = tasks["leftovers of public.requests"]["reason"]
        assert reason.startswith("1 leftover(s) of interrupted work: the swap of "), reason
        assert _swaps(conn) == ["interrupted"]
    conn.execute("DELETE FROM epstats.runs WHERE status = 'running'")
    assert _cleanup(cfg, dsn)["leftovers of public.requests"]["reason"].startswith("not due")


def test_an_invalid_index_a_build_still_runs_on_is_named_and_left_alone(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """An epstats killed mid-build leaves its CREATE INDEX (or REINDEX) CONCURRENTLY running
    on the server: the index is invalid until that build ends. Cleanup leaves it alone, as
    before, but says why, naming the build (pid, application, phase): never silently."""
    cfg = _ready(dsn, conn, tmp_path, "materialized")
    holder = psycopg.connect(dsn, autocommit=False)
    holder.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    builder = psycopg.connect(dsn, autocommit=True, application_name="orphaned-build")
    try:
        holder.execute("SELECT 1 FROM requests LIMIT 1")  # a snapshot the build waits for
        pid = builder.info.backend_pid
        thread_error: list[BaseException] = []

        def build() -> None:  # waits for the holder's snapshot, its index invalid till then
            try:
                builder.execute("CREATE INDEX CONCURRENTLY slow_one ON requests (status)")
            except psycopg.Error as exc:
                thread_error.append(exc)

        import threading

        t = threading.Thread(target=build)
        t.start()
        deadline = time.monotonic() + 30
        query = "SELECT 1 FROM pg_stat_progress_create_index WHERE pid = %s AND index_relid <> 0"
        while not conn.execute(query, (pid,)).fetchone():
            assert time.monotonic() < deadline, "the build never started"
            time.sleep(0.05)
        tasks = _cleanup(cfg, dsn)  # not due: the reason names the build
        said = f"public.slow_one (CREATE INDEX CONCURRENTLY, pid {pid}, orphaned-build)"
        assert said in tasks["leftovers of public.requests"]["reason"], tasks
        forced_cleanup = ("maintain", "--force", "cleanup", "--only", "cleanup")
        r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", *forced_cleanup)
        assert r.code == 0, r.stderr
        forced = {t["target"]: t for t in json.loads(r.stdout)["tasks"]}
        slow = forced["public.slow_one"]
        assert slow["status"] == "skipped", slow
        assert f"pid {pid}, orphaned-build" in slow["reason"], slow
        assert _exists(conn, "public.slow_one")  # never dropped under a running build
        holder.rollback()
        t.join(timeout=60)
        assert not thread_error, thread_error
        assert invalid_indexes(conn) == []
    finally:
        holder.close()
        builder.close()
