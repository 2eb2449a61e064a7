"""Two epstats index operations at once (issue 13, trial of item 3): CONCURRENTLY statements on
the same table deadlock (each waits out the other's transaction) and leave `_ccnew` copies
behind. epstats's own index work on a table takes turns (an advisory lock, tried, never waited
for in a transaction); a CONCURRENTLY statement chosen as a deadlock's victim by someone else
is repaired and tried once more; and whatever copy a failed REINDEX CONCURRENTLY left,
whatever PostgreSQL named it, is dropped. Real processes and a real server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import indexes, maintenance
from epstats_cli.config import Config
from epstats_cli.db import Session, connect
from epstats_cli.execute import Executor
from epstats_cli.waits import LOCK_CLASS
from tests.conftest import run_cli
from tests.helpers import fill, invalid_indexes

pytestmark = pytest.mark.one_version  # heavy: the first server version only


def _ready(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, extra: str = "") -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 2s}\n" + extra)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 60000)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply").code == 0
    return str(cfg)


def _epstats(cfg: str, dsn: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PGOPTIONS": "-c maintenance_work_mem=1MB"}  # a slow enough build
    env.pop("EPSTATS_CONFIG", None)
    env.pop("EPSTATS_DSN", None)
    return subprocess.Popen(
        [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _runs(conn: psycopg.Connection[Any], task: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT target, status, failure FROM epstats.runs WHERE task = %s ORDER BY id", (task,)
    ).fetchall()


@pytest.mark.parametrize(
    "second",
    [["maintain", "--force", "reindex", "--only", "reindex"], ["indexes", "apply"]],
    ids=["reindex+maintain", "reindex+apply"],
)
def test_two_index_operations_at_once_take_turns(
    second: list[str], dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path)
    if second[0] == "indexes":
        conn.execute("DROP INDEX idx_requests_timestamp")  # something for apply to build
    conn.execute("DELETE FROM epstats.runs")
    for _round in range(3):
        first = _epstats(cfg, dsn, "reindex")
        other = _epstats(cfg, dsn, *second)
        out = [p.communicate(timeout=120) for p in (first, other)]
        for proc, (stdout, stderr) in zip((first, other), out, strict=True):
            assert proc.returncode == 0, (stdout, stderr)
            assert "deadlock" not in stdout + stderr
        assert invalid_indexes(conn) == []
    runs = conn.execute(
        "SELECT target, status, reason FROM epstats.runs WHERE task = 'reindex' ORDER BY id"
    ).fetchall()
    assert {status for _target, status, _reason in runs} <= {"ok", "skipped"}, runs
    # skipped: an index the other run was building (invalid until built) when this one planned
    skipped = [(target, reason) for target, status, reason in runs if status == "skipped"]
    assert all(reason.startswith("invalid index") for _target, reason in skipped), skipped
    if second[0] == "indexes":
        assert _runs(conn, "create") == [("idx_requests_timestamp", "ok", None)]


def _take_turn(dsn: str, oid: int) -> psycopg.Connection[Any]:
    """Another epstats's turn on the table (its application_name, its advisory lock)."""
    other = psycopg.connect(dsn, autocommit=True, application_name="epstats")
    other.execute(
        "SELECT pg_advisory_lock(%s, hashtext('epstats.indexes:' || %s::text))",
        (LOCK_CLASS, oid),
    )
    return other


def test_waiting_for_the_turn_names_the_other_epstats_or_gives_up_cleanly(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "indexes: {max_wait: 1s}\n")
    oid = conn.execute("SELECT 'requests'::regclass::oid::int").fetchone()
    assert oid is not None
    other = _take_turn(dsn, oid[0])
    pid = other.info.backend_pid
    try:
        r = run_cli("-c", cfg, "--dsn", dsn, "-v", "reindex", "--index", "idx_requests_timestamp")
    finally:
        other.close()
    assert r.code == 1, r.stderr
    said = [line for line in r.stderr.splitlines() if line.startswith("epstats: ")]
    assert said[-1].startswith(
        "epstats: error: reindex public.idx_requests_timestamp: lock not granted within "
        "indexes.max_wait (1s): another epstats is working on the indices of requests "
        f"(pid {pid} (idle"
    ), said
    assert "application epstats" in said[-1]
    waiting = [line for line in said if "is waiting for its turn" in line]
    assert len(waiting) == 1 and f"another epstats (pid {pid} (" in waiting[0]
    assert _runs(conn, "reindex") == [("public.idx_requests_timestamp", "failed", "lock_busy")]
    assert invalid_indexes(conn) == []

    # with time enough, it waits for the turn, then runs
    cfg = _ready(dsn, conn, tmp_path, "indexes: {max_wait: 1m}\n")
    other = _take_turn(dsn, oid[0])
    release = threading.Timer(1.0, other.close)
    release.start()
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "reindex")
    release.join()
    assert r.code == 0, r.stderr
    assert {t["status"] for t in json.loads(r.stdout)["tasks"]} == {"ok"}


@pytest.fixture
def session(dsn: str) -> Iterator[Session]:
    base = Config()
    cfg = replace(
        base,
        database=replace(base.database, lock_timeout=timedelta(seconds=2)),
        indexes=replace(base.indexes, max_wait=timedelta(seconds=1)),
    )
    s = connect(cfg, dsn)
    try:
        yield s
    finally:
        s.conn.close()


def test_a_failed_reindex_drops_its_copy_whatever_it_is_named(
    session: Session, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Planned, the copy would be `_ccnew`; by the time it runs that name is taken (by a valid
    index of someone's: no leftover, which reindex would drop first), so PostgreSQL names it
    `_ccnew1`: that is the one to drop, and the other index is left alone."""
    _ready(dsn, conn, tmp_path)
    [step] = maintenance.plan_reindex(session, "idx_requests_timestamp")
    assert step.index == ("public", "idx_requests_timestamp_ccnew")
    conn.execute("CREATE INDEX CONCURRENTLY idx_requests_timestamp_ccnew ON requests (status)")
    holder = psycopg.connect(dsn)  # an old snapshot: the REINDEX waits it out, the DROP not
    holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT txid_current(), count(*) FROM pg_class")
    try:
        ex = Executor(session)
        result = ex.run(step)
    finally:
        holder.rollback()
        holder.close()
    assert result.status == "failed" and result.failure == "lock_busy", result
    repairs = [entry.text for entry in ex.log if entry.kind == "repair"]
    assert repairs == ['DROP INDEX CONCURRENTLY IF EXISTS "public"."idx_requests_timestamp_ccnew1"']
    assert invalid_indexes(conn) == []
    assert conn.execute("SELECT to_regclass('idx_requests_timestamp_ccnew')").fetchone() != (None,)


def test_a_deadlock_victim_is_repaired_and_tried_once_more(
    session: Session, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Another session holds a snapshot, then asks for a lock the build holds: the build waits
    for it, it for the build, and the build (whose deadlock check comes first) is the victim."""
    _ready(dsn, conn, tmp_path)
    conn.execute("DROP INDEX idx_requests_timestamp")
    other = psycopg.connect(dsn)
    other.execute("SET deadlock_timeout = '1min'")
    other.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    other.execute("SELECT count(*) FROM requests")
    other_pid = other.info.backend_pid

    def lock_then_end() -> None:
        with psycopg.connect(dsn, autocommit=True) as watch:
            for _ in range(3000):
                waiting = watch.execute(
                    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'epstats' "
                    "AND %s = ANY(pg_blocking_pids(pid))",
                    (other_pid,),
                ).fetchone()
                if waiting:
                    break
                time.sleep(0.02)
        other.execute("LOCK TABLE requests IN SHARE MODE")  # waits for the build: a deadlock
        other.commit()

    ender = threading.Thread(target=lock_then_end, daemon=True)
    ender.start()
    notes: list[str] = []
    patient = replace(session.config.indexes, max_wait=timedelta(minutes=1))
    s = replace(session, config=replace(session.config, indexes=patient))
    try:
        ex = Executor(s, note=notes.append)
        [create] = [st for st in indexes.make_plan(s).steps if st.task == "create"]
        result = ex.run(create)
        ender.join()
    finally:
        other.close()
    assert result.status == "ok", result
    assert [entry.kind for entry in ex.log] == ["run", "repair", "retry"], ex.log
    assert any("was a deadlock's victim" in n for n in notes), notes
    assert invalid_indexes(conn) == []


def test_another_sessions_build_in_progress_is_neither_reindexed_nor_cleaned_up(
    session: Session, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """While someone else's REINDEX CONCURRENTLY waits out an old snapshot, its `_ccnew` copy is
    invalid: it is neither a leftover for cleanup (which names the build and leaves it alone)
    nor an index for reindex to skip."""
    _ready(dsn, conn, tmp_path)
    holder = psycopg.connect(dsn)
    holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT txid_current(), count(*) FROM pg_class")
    builder = psycopg.connect(dsn, autocommit=True)
    errors: list[BaseException] = []

    def build() -> None:
        try:
            builder.execute("REINDEX INDEX CONCURRENTLY idx_requests_timestamp")
        except BaseException as exc:  # reported below
            errors.append(exc)

    thread = threading.Thread(target=build)
    thread.start()
    try:
        for _ in range(3000):
            if invalid_indexes(conn) == ["idx_requests_timestamp_ccnew"]:
                break
            time.sleep(0.01)
        assert invalid_indexes(conn) == ["idx_requests_timestamp_ccnew"]
        reindexed = [s.target for s in maintenance.plan_reindex(session)]
        cleaned = {s.target: s for s in maintenance.plan_cleanup(session)}
    finally:
        holder.rollback()
        holder.close()
        thread.join(timeout=60)
        builder.close()
    assert not errors, errors
    assert "public.idx_requests_timestamp_ccnew" not in reindexed, reindexed
    left = cleaned["public.idx_requests_timestamp_ccnew"]
    assert left.skip and "REINDEX CONCURRENTLY still running on it" in left.skip, left.skip
    assert invalid_indexes(conn) == []


def test_reindex_behind_the_same_old_transaction_does_not_pile_up_copies(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A REINDEX CONCURRENTLY that gave up waiting for an old transaction leaves its invalid
    `_ccnew` copy (it cannot be dropped while that transaction runs). Retried behind the same
    transaction, reindex first tries to drop that copy, cannot, and leaves the index alone,
    saying cleanup must run first: no `_ccnew1`, `_ccnew2`... Once the transaction has ended,
    reindex drops the copy itself and rebuilds."""
    cfg = _ready(dsn, conn, tmp_path, "indexes: {max_wait: 1s}\n")
    holder = psycopg.connect(dsn)  # an old transaction: REINDEX CONCURRENTLY waits for it
    try:
        holder.execute("SELECT count(*) FROM requests")
        holder.execute("INSERT INTO requests VALUES ('/old', now(), 1, 200)")
        args = ("-c", cfg, "--dsn", dsn, "--format", "json", "reindex", "--index")
        r = run_cli(*args, "idx_requests_timestamp")
        assert r.code == 1, r.stderr
        assert invalid_indexes(conn) == ["idx_requests_timestamp_ccnew"]
        for _again in range(2):
            r = run_cli(*args, "idx_requests_timestamp")
            assert r.code == 0, (r.stdout, r.stderr)
            [task] = json.loads(r.stdout)["tasks"]
            assert task["status"] == "skipped", task
            assert "idx_requests_timestamp_ccnew" in task["reason"], task
            assert "epstats maintain --only cleanup" in task["reason"], task
            assert invalid_indexes(conn) == ["idx_requests_timestamp_ccnew"]
    finally:
        holder.rollback()
        holder.close()
    r = run_cli(*args, "idx_requests_timestamp")
    assert r.code == 0, r.stderr
    [task] = json.loads(r.stdout)["tasks"]
    assert task["status"] == "ok", task
    assert invalid_indexes(conn) == []
    assert [row[1] for row in _runs(conn, "reindex")] == ["failed", "skipped", "skipped", "ok"]
