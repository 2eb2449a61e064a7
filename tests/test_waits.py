"""CONCURRENTLY statements and old transactions (issue 13, item 3): they wait under
indexes.max_wait, not database.lock_timeout, say for whom while a person watches, and on
giving up name the pid and leave the invalid index to cleanup."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import zoneinfo
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from epstats_cli import indexes, maintain, waits
from epstats_cli.config import Config
from epstats_cli.db import Session, connect
from epstats_cli.execute import Executor, Mode, Statement, Step
from tests.conftest import Server, run_cli
from tests.helpers import fill, invalid_indexes

pytestmark = pytest.mark.one_version  # heavy: the first server version only

SHORT = "database: {lock_timeout: 300ms}\nmaintenance: {lock_retries: 0}\n"


def _config(tmp_path: Path, extra: str = "") -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(SHORT + extra)
    return str(cfg)


def _ready(dsn: str, conn: psycopg.Connection[Any], cfg: str, rows: int = 20000) -> None:
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, rows)


def _old_transaction(dsn: str) -> psycopg.Connection[Any]:
    """A REPEATABLE READ transaction with a snapshot and a row written: what CREATE INDEX
    CONCURRENTLY waits out (twice: as a writer, then as an old snapshot)."""
    holder = psycopg.connect(dsn)
    holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT count(*) FROM requests")
    holder.execute("INSERT INTO requests VALUES ('/old', now(), 1, 200)")
    return holder


def _end_later(holder: psycopg.Connection[Any], seconds: float) -> threading.Thread:
    def end() -> None:
        time.sleep(seconds)
        holder.commit()

    thread = threading.Thread(target=end, daemon=True)
    thread.start()
    return thread


def test_a_build_waits_out_an_old_transaction_and_says_for_whom(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _config(tmp_path)  # lock_timeout 300ms; indexes.max_wait: the default 10m
    _ready(dsn, conn, cfg)
    holder = _old_transaction(dsn)
    pid = holder.info.backend_pid
    try:
        ender = _end_later(holder, 2.5)
        start = time.monotonic()
        r = run_cli("-c", cfg, "--dsn", dsn, "-v", "indexes", "apply")
        ender.join()
    finally:
        holder.close()
    assert r.code == 0, r.stderr
    assert time.monotonic() - start >= 2.0  # it waited for the holder, past lock_timeout
    waits = [line for line in r.stderr.splitlines() if "is waiting for" in line]
    assert waits, r.stderr
    assert f"is waiting for pid {pid} to finish its transaction (" in waits[0]
    assert "idle in transaction since " in waits[0] and ", open " in waits[0]
    assert "INSERT INTO requests VALUES ('/old'" in waits[0]  # its query's first line
    assert "indexes.max_wait (10m)" in waits[0]
    assert invalid_indexes(conn) == []


def test_reindex_waits_too_and_cron_hears_nothing(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _config(tmp_path)
    _ready(dsn, conn, cfg)
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    holder = _old_transaction(dsn)
    try:
        ender = _end_later(holder, 2.0)
        r = run_cli("-c", cfg, "--dsn", dsn, "reindex", "--index", "idx_requests_timestamp")
        ender.join()
    finally:
        holder.close()
    assert r.code == 0, r.stderr
    assert r.stderr == ""  # no person watching, no -v: quiet
    assert invalid_indexes(conn) == []


def test_giving_up_names_the_pid_and_cleanup_removes_the_leftover(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _config(tmp_path, "indexes: {max_wait: 1s}\n")
    _ready(dsn, conn, cfg)
    assert run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "cleanup").code == 0
    holder = _old_transaction(dsn)
    pid = holder.info.backend_pid
    try:
        r = run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply")
        assert r.code == 1
        errors = [line for line in r.stderr.splitlines() if line]
        built = ["idx_requests_timestamp", "idx_requests_endpoint_timestamp"]
        assert sorted(invalid_indexes(conn)) == sorted(built)
        for line, name in zip(errors, built, strict=True):
            waited = f"it waited for pid {pid} to finish its transaction ("
            assert "within indexes.max_wait (1s)" in line and waited in line, line
            assert f"an invalid index {name} was left behind" in line
            assert "epstats maintain --only cleanup" in line
    finally:
        holder.rollback()
        holder.close()
    # cleanup ran a moment ago, but a leftover makes it due at once
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "maintain", "--only", "cleanup")
    assert r.code == 0, r.stderr
    dropped = {t["target"] for t in json.loads(r.stdout)["tasks"] if t["status"] == "ok"}
    assert {"public.idx_requests_timestamp", "public.idx_requests_endpoint_timestamp"} <= dropped
    assert invalid_indexes(conn) == []


@pytest.fixture
def session(dsn: str) -> Iterator[Session]:
    base = Config()
    cfg = replace(
        base,
        database=replace(base.database, lock_timeout=timedelta(milliseconds=200)),
        indexes=replace(base.indexes, max_wait=timedelta(seconds=42)),
    )
    s = connect(cfg, dsn)
    try:
        yield s
    finally:
        s.conn.close()


def _lock_timeout(session: Session) -> str:
    row = session.conn.execute("SHOW lock_timeout").fetchone()
    assert row is not None
    return str(row[0])


def test_only_concurrently_steps_run_under_max_wait(
    session: Session, conn: psycopg.Connection[Any]
) -> None:
    conn.execute("CREATE TABLE seen (mode text, lock_timeout text)")
    record = "INSERT INTO seen VALUES ({mode}, current_setting('lock_timeout'))"
    ex = Executor(session)
    for mode in Mode:
        query = sql.SQL(record).format(mode=sql.Literal(mode.value))
        assert ex.run(Step("t", "seen", "why", [Statement(query)], mode)).status == "ok"
        assert _lock_timeout(session) == "200ms"
    failing = Step("t", "x", "why", [Statement(sql.SQL("SELECT 1/0"))], Mode.CONCURRENTLY)
    assert ex.run(failing).status == "failed"
    assert _lock_timeout(session) == "200ms"  # restored after an error too
    assert dict(conn.execute("SELECT mode, lock_timeout FROM seen").fetchall()) == {
        "autocommit": "200ms",
        "transaction": "200ms",
        "concurrently": "42s",
    }


# --- giving up within max_wait and a bounded repair; naming blockers of other roles ----------


def _session(dsn: str, lock_timeout: timedelta, max_wait: timedelta) -> Session:
    base = Config()
    cfg = replace(
        base,
        database=replace(base.database, lock_timeout=lock_timeout),
        maintenance=replace(base.maintenance, lock_retries=2),
        indexes=replace(base.indexes, max_wait=max_wait),
    )
    return connect(cfg, dsn)


def test_giving_up_tries_the_repair_once_within_its_budget(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The old transaction blocks the repair's DROP INDEX CONCURRENTLY too: it is sent once
    (no lock retries, no second repair after the give-up), so the step gives up within
    indexes.max_wait plus the repair budget, not lock_timeout times six more."""
    _ready(dsn, conn, _config(tmp_path))
    s = _session(dsn, timedelta(seconds=2), timedelta(seconds=1))
    holder = _old_transaction(dsn)
    pid = holder.info.backend_pid
    try:
        ex = Executor(s, record=True)
        create = next(st for st in indexes.make_plan(s).steps if st.task == "create")
        result = ex.run(create)
    finally:
        holder.rollback()
        holder.close()
        s.conn.close()
    assert result.status == "failed" and result.failure == "left_behind", result
    assert result.error is not None
    assert "lock not granted within indexes.max_wait (1s)" in result.error
    assert f"it waited for pid {pid} to finish its transaction (" in result.error
    assert f"an invalid index {create.target} was left behind" in result.error
    repairs = [entry.text for entry in ex.log if entry.kind == "repair"]
    assert repairs == [f'DROP INDEX CONCURRENTLY IF EXISTS "public"."{create.target}"'], ex.log
    assert conn.execute(
        "SELECT failure FROM epstats.runs WHERE target = %s", (create.target,)
    ).fetchone() == ("left_behind",)


@pytest.fixture
def roles(server: Server, dsn: str, conn: psycopg.Connection[Any]) -> Iterator[dict[str, str]]:
    """Two login roles without superuser: `owner` owns the database (and so what init
    creates); `other` may read and write requests. Their DSNs (other's application: bobapp)."""
    owner, other = f"o_{conn.info.dbname}", f"b_{conn.info.dbname}"
    for role in (owner, other):
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(sql.Identifier(role)))
    conn.execute(
        sql.SQL("ALTER DATABASE {} OWNER TO {}").format(
            sql.Identifier(conn.info.dbname), sql.Identifier(owner)
        )
    )
    conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(owner)))
    dbname = conn.info.dbname
    try:
        yield {
            "owner": server.dsn_for(dbname, user=owner, password="pw"),
            "other": server.dsn_for(dbname, user=other, password="pw", application_name="bobapp"),
            "other_name": other,
        }
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {dbname} WITH (FORCE)")
        for role in (owner, other):
            server.execute(f'DROP ROLE IF EXISTS "{role}"')


def _grant_other(conn: psycopg.Connection[Any], dsn: str, other: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as owner:
        owner.execute(
            sql.SQL("GRANT SELECT, INSERT ON requests TO {}").format(sql.Identifier(other))
        )


def test_a_blocker_of_another_role_is_named(
    roles: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """epstats runs as the table's owner, the old transaction as another role: neither is a
    superuser, so pg_stat_activity hides that session's age and query, but not whose it is."""
    cfg = _config(tmp_path, "indexes: {max_wait: 1s}\n")
    _ready(roles["owner"], conn, cfg)
    _grant_other(conn, roles["owner"], roles["other_name"])
    holder = _old_transaction(roles["other"])
    pid = holder.info.backend_pid
    try:
        r = run_cli("-c", cfg, "--dsn", roles["owner"], "-v", "indexes", "apply")
    finally:
        holder.rollback()
        holder.close()
    assert r.code == 1, r.stderr
    who = f"pid {pid} to finish its transaction ("
    errors = [line for line in r.stderr.splitlines() if line.startswith("epstats: error:")]
    waits = [line for line in r.stderr.splitlines() if "is waiting for" in line]
    assert len(errors) == 2 and waits, r.stderr
    for line in errors + waits:
        assert who in line, line
        assert f"user {roles['other_name']}, application bobapp: <insufficient privilege>" in line
    assert "no blocker visible" not in r.stderr


def test_an_old_snapshot_of_another_role_is_found_in_pg_locks(
    roles: dict[str, str], conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Nobody seen blocking (a give-up faster than the watch): the open transactions of this
    database that hold a snapshot, found through pg_locks, whoever's they are."""
    cfg = _config(tmp_path)
    _ready(roles["owner"], conn, cfg, rows=10)
    holder = psycopg.connect(roles["other"])
    holder.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    holder.execute("SELECT count(*) FROM pg_class")  # a snapshot; no lock on requests
    pid = holder.info.backend_pid
    s = connect(Config(), roles["owner"])
    try:
        said = waits.describe_blockers(s, None, waits.CONFLICTS_SHARE_UPDATE_EXCLUSIVE)
    finally:
        s.conn.close()
        holder.rollback()
        holder.close()
    assert said.startswith(f"it waited for pid {pid} to finish its transaction (user "), said
    assert f"user {roles['other_name']}, application bobapp: <insufficient privilege>" in said


# --- times in source.timezone; what epstats waits for ------------------------------------------

ZONE = "America/New_York"


def _local(instant: dt.datetime) -> dt.datetime:
    return instant.astimezone(zoneinfo.ZoneInfo(ZONE))


def test_times_are_in_source_timezone_and_say_what_epstats_waits_for(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The server (and so each session) in Asia/Tokyo, source.timezone New York: the blocker's
    transaction start, and the start of the maintain holding the lock (exit 75), are New York
    times with their abbreviation (EST or EDT). The blocker is said to be awaited to finish its
    transaction, with the lock it holds as a detail."""
    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET timezone = 'Asia/Tokyo'")
    cfg = _config(tmp_path, f"source: {{timezone: {ZONE}}}\n")
    _ready(dsn, conn, cfg)
    holder = _old_transaction(dsn)
    pid = holder.info.backend_pid
    row = conn.execute(
        "SELECT xact_start, backend_start FROM pg_stat_activity WHERE pid = %s", (pid,)
    ).fetchone()
    assert row is not None
    started = _local(row[0])
    try:
        ender = _end_later(holder, 2.0)
        r = run_cli("-c", cfg, "--dsn", dsn, "-v", "indexes", "apply")
        ender.join()
    finally:
        holder.close()
    assert r.code == 0, r.stderr
    said = next(line for line in r.stderr.splitlines() if "is waiting for" in line)
    assert f"is waiting for pid {pid} to finish its transaction (holds " in said, said
    assert "AccessShareLock and RowExclusiveLock on requests, idle in transaction since " in said
    assert f"since {started:%H:%M:%S %Z}, open " in said, said
    assert started.tzname() in ("EST", "EDT")

    # exit 75: another maintain holds the lock; when it started, in New York time
    other = connect(Config(), dsn)
    try:
        maintain.acquire_lock(other)
        r = run_cli("-c", cfg, "--dsn", dsn, "maintain")
        assert r.code == 75, r.stderr
        backend = conn.execute(
            "SELECT backend_start FROM pg_stat_activity WHERE pid = %s", (other.pid,)
        ).fetchone()
        assert backend is not None
        when = _local(backend[0])
        said = f"(server pid {other.pid}, started {when:%Y-%m-%d %H:%M:%S %Z})"
        assert said in r.stderr, r.stderr
    finally:
        other.conn.close()
