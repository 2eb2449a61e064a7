"""`epstats partition plan|apply|status` on real servers: the online conversion with a writer
inserting throughout (every row there once, no INSERT waiting past lock_timeout, owner and
grants kept), --drop-unique, --dry-run, an interrupted apply resumed or rolled back, and the
partitions task keeping partitions ahead (rows moved out of the DEFAULT partition)."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.one_version  # heavy: the first server version only

LOCK_TIMEOUT = 1.0


def _cfg(tmp_path: Path, extra: str = "") -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"database: {{lock_timeout: {int(LOCK_TIMEOUT * 1000)}ms}}\n"
        "maintenance: {lock_retries: 20}\n" + extra
    )
    return str(cfg)


def _ok(cfg: str, dsn: str, *args: str, code: int = 0) -> Any:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", *args)
    assert r.code == code, r.stdout + r.stderr
    return json.loads(r.stdout) if r.stdout.strip().startswith("{") else r


def _count(conn: psycopg.Connection[Any], table: str = "requests") -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None
    return int(row[0])


def _kind(conn: psycopg.Connection[Any], name: str) -> str | None:
    row = conn.execute("SELECT relkind FROM pg_class WHERE relname = %s", (name,)).fetchone()
    return None if row is None else str(row[0])


class Writer(threading.Thread):
    """The API: one INSERT after another (autocommit), each timed, some dated days back."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.written = 0
        self.worst = 0.0
        self.errors: list[str] = []

    def run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as c:
            while not self.stop.is_set():
                started = time.monotonic()
                try:
                    c.execute(
                        "INSERT INTO requests (endpoint, timestamp, response_time, status) "
                        "VALUES ('/writer', now() - random() * interval '3 days', 5, 200), "
                        "('/writer', now(), 5, 200)"
                    )
                    self.written += 2
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.worst = max(self.worst, time.monotonic() - started)


def _owned_and_granted(conn: psycopg.Connection[Any]) -> None:
    conn.execute("DROP ROLE IF EXISTS part_owner")
    conn.execute("DROP ROLE IF EXISTS part_api")
    conn.execute("CREATE ROLE part_owner")
    conn.execute("CREATE ROLE part_api")
    conn.execute("ALTER TABLE requests OWNER TO part_owner")
    conn.execute("GRANT SELECT, INSERT ON requests TO part_api")
    conn.execute("GRANT UPDATE (status) ON requests TO part_api")


def _drop_roles(conn: psycopg.Connection[Any]) -> None:
    for role in ("part_owner", "part_api"):
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")


def test_apply_with_a_writer_keeps_every_row_owner_and_grants(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path)
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    r = run_cli("-c", cfg, "--dsn", dsn, "generate", "--rows", "1000000", "--days", "20")
    assert r.code == 0, r.stderr
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    _owned_and_granted(conn)
    before = _count(conn)
    writer = Writer(dsn)
    writer.start()
    try:
        while writer.written < 50:  # the API writes before, during and after
            time.sleep(0.01)
        result = _ok(cfg, dsn, "partition", "apply", "--interval", "day")
        written_at_swap = writer.written
        while writer.written < written_at_swap + 50:
            time.sleep(0.01)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.errors == []
    assert [t["status"] for t in result["tasks"]] == ["ok"] * len(result["tasks"])
    assert _kind(conn, "requests") == "p"
    assert _count(conn) == before + writer.written  # every row once: before and written
    assert writer.worst < LOCK_TIMEOUT + 1.0, f"an INSERT waited {writer.worst:.2f}s"
    row = conn.execute(
        "SELECT pg_get_userbyid(relowner), relacl::text FROM pg_class WHERE relname = 'requests'"
    ).fetchone()
    assert row is not None and row[0] == "part_owner"
    assert "part_api=ar/" in row[1]
    column = conn.execute(
        "SELECT attacl::text FROM pg_attribute WHERE attrelid = 'requests'::regclass "
        "AND attname = 'status'"
    ).fetchone()
    assert column is not None and "part_api=w/" in column[0]
    owners = conn.execute(
        "SELECT DISTINCT pg_get_userbyid(c.relowner) FROM pg_partition_tree('requests') t "
        "JOIN pg_class c ON c.oid = t.relid"
    ).fetchall()
    assert owners == [("part_owner",)]
    # the recommended indices, under their own names, on the parent and each partition
    names = {
        r[0] for r in conn.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'requests'")
    }
    assert {"idx_requests_timestamp", "idx_requests_endpoint_timestamp"} <= names
    assert _kind(conn, "requests_retired") == "r"
    assert _kind(conn, "requests_captured") is None
    status = _ok(cfg, dsn, "partition", "status")
    assert status["partitioned"] and status["conversion"] == "swapped"
    assert status["ahead"] >= 7 and status["covers_now"]
    assert _ok(cfg, dsn, "partition", "apply", "--drop-old")["tasks"][0]["status"] == "ok"
    assert _kind(conn, "requests_retired") is None
    _drop_roles(conn)


def _small(cfg: str, dsn: str, conn: psycopg.Connection[Any], rows: int = 20_000) -> None:
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    r = run_cli("-c", cfg, "--dsn", dsn, "generate", "--rows", str(rows), "--days", "5")
    assert r.code == 0, r.stderr


def test_auto_counts_each_row_once_right_after_the_swap(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The copy writes every row again, in transactions the rollup's refresh could not see:
    apply refreshes the rollup after the swap, so `auto` does not count the newest rows (those
    within view.commit_delay of its as-of) a second time. (A materialized rollup reads the
    table: a conversion refuses it, naming it.)"""
    cfg = _cfg(tmp_path, "view: {strategy: incremental}\n")
    _small(cfg, dsn, conn)
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp, response_time, status) "
        "SELECT '/recent', now() - g * interval '1 second', 5, 200 FROM generate_series(1, 50) g"
    )
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    applied = _ok(cfg, dsn, "partition", "apply")
    assert any(t["task"] == "refresh" and t["status"] == "ok" for t in applied["tasks"]), applied

    def top(source: str) -> dict[str, int]:
        doc = _ok(cfg, dsn, "report", "top", "--days", "7", "--source", source, "--limit", "50")
        return {r["endpoint"]: r["requests"] for r in doc["rows"]}

    assert top("auto") == top("raw")
    assert top("raw")["/recent"] == 50


def test_a_key_without_the_timestamp_is_refused_unless_drop_unique(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path)
    _small(cfg, dsn, conn)
    conn.execute("ALTER TABLE requests ADD COLUMN id bigserial PRIMARY KEY")
    plan = _ok(cfg, dsn, "partition", "plan")
    assert plan["unique"] == ["requests_pkey"]
    assert any("--drop-unique" in r for r in plan["refusals"])
    r = run_cli("-c", cfg, "--dsn", dsn, "partition", "apply")
    assert r.code == 1 and "--drop-unique" in r.stderr and "Traceback" not in r.stderr
    assert _kind(conn, "requests") == "r" and _kind(conn, "requests_intermediate") is None
    before = _count(conn)
    _ok(cfg, dsn, "partition", "apply", "--drop-unique")
    assert _count(conn) == before
    row = conn.execute(
        "SELECT indisunique FROM pg_index WHERE indexrelid = 'requests_pkey'::regclass"
    ).fetchone()
    assert row == (False,)
    conn.execute("INSERT INTO requests (endpoint, timestamp) VALUES ('/new', now())")
    maximum = conn.execute("SELECT max(id) FROM requests").fetchone()
    assert maximum is not None and maximum[0] == before + 1  # the sequence carried on
    owned = conn.execute("SELECT pg_get_serial_sequence('requests', 'id') IS NOT NULL").fetchone()
    assert owned == (True,)


def test_dry_run_shows_every_statement_and_changes_nothing(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path)
    _small(cfg, dsn, conn)
    r = run_cli("-c", cfg, "--dsn", dsn, "partition", "apply", "--dry-run", "--interval", "day")
    assert r.code == 0, r.stderr
    for text in (
        "PARTITION BY RANGE",
        "DEFAULT",
        "CREATE TRIGGER",
        'DELETE FROM "public"."requests_captured"',
        "LOCK TABLE",
        'RENAME TO "requests_retired"',
        "ANALYZE",
    ):
        assert text in r.stdout, text
    assert _kind(conn, "requests") == "r" and _kind(conn, "requests_intermediate") is None


def _hold(dsn: str, statement: str) -> psycopg.Connection[Any]:
    """Another session holding a lock in an open transaction."""
    other = psycopg.connect(dsn)
    other.execute(statement)
    return other


def test_an_interrupted_apply_resumes_where_it_stopped(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 200ms}\nmaintenance: {lock_retries: 0}\n")
    c = str(cfg)
    _small(c, dsn, conn)
    before = _count(conn)
    # 1. the capture cannot take its lock: the partitioned table is built, nothing else
    holder = _hold(dsn, "LOCK TABLE requests IN SHARE MODE")
    r = run_cli("-c", c, "--dsn", dsn, "partition", "apply", "--interval", "day")
    holder.close()
    assert r.code == 1 and "Traceback" not in r.stderr
    assert _kind(conn, "requests_intermediate") == "p"
    # 2. a partition in the middle is locked: the copy stops after the batches before it
    day = conn.execute(
        "SELECT to_char((min(timestamp) AT TIME ZONE 'UTC') + interval '2 days', 'YYYYMMDD') "
        "FROM requests"
    ).fetchone()
    assert day is not None
    holder = _hold(dsn, f"LOCK TABLE requests_p{day[0]} IN ACCESS EXCLUSIVE MODE")
    r = run_cli("-c", c, "--dsn", dsn, "partition", "apply")
    holder.close()
    assert r.code == 1
    note = conn.execute(
        "SELECT obj_description('requests_intermediate'::regclass, 'pg_class')"
    ).fetchone()
    assert note is not None and "copied through=2" in note[0]
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp) SELECT '/meanwhile', now() - g * interval "
        "'1 hour' FROM generate_series(1, 100) g"
    )
    # 3. the next run resumes: no batch copied twice, the rows written meanwhile captured
    result = _ok(c, dsn, "partition", "apply")
    assert not any("build the partitioned table" in t["reason"] for t in result["tasks"])
    assert _kind(conn, "requests") == "p"
    assert _count(conn) == before + 100
    dupes = conn.execute(
        "SELECT count(*) FROM (SELECT endpoint, timestamp, response_time, status, count(*) "
        "FROM requests GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d"
    ).fetchone()
    original = conn.execute(
        "SELECT count(*) FROM (SELECT endpoint, timestamp, response_time, status, count(*) "
        "FROM requests_retired GROUP BY 1, 2, 3, 4 HAVING count(*) > 1) d"
    ).fetchone()
    assert dupes == original


def test_rollback_leaves_the_table_as_it_was(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 200ms}\nmaintenance: {lock_retries: 0}\n")
    c = str(cfg)
    _small(c, dsn, conn)
    before = _count(conn)
    holder = _hold(dsn, "LOCK TABLE requests IN ACCESS SHARE MODE")  # the swap cannot lock
    r = run_cli("-c", c, "--dsn", dsn, "partition", "apply", "--interval", "week")
    holder.close()
    assert r.code == 1
    status = _ok(c, dsn, "partition", "status")
    assert status["conversion"] == "capturing"
    r = run_cli("-c", c, "--dsn", dsn, "partition", "apply", "--interval", "day")
    assert r.code == 1 and "--rollback" in r.stderr  # a different interval: said, not mixed
    _ok(c, dsn, "partition", "apply", "--rollback")
    for gone in ("requests_intermediate", "requests_captured", "requests_default"):
        assert _kind(conn, gone) is None
    triggers = conn.execute(
        "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'requests'::regclass"
    ).fetchone()
    assert triggers == (0,)
    assert _kind(conn, "requests") == "r" and _count(conn) == before


@pytest.mark.parametrize("timezone", ["UTC", "America/New_York"])
def test_maintain_keeps_partitions_ahead_and_empties_the_default(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, timezone: str
) -> None:
    cfg = _cfg(tmp_path, f"source: {{timezone: {timezone}}}\npartition: {{premake: 3}}\n")
    _small(cfg, dsn, conn)
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    _ok(cfg, dsn, "partition", "apply", "--interval", "day")
    assert _ok(cfg, dsn, "partition", "status")["ahead"] == 3
    check = _ok(cfg, dsn, "check", "--only", "partition_runway")
    assert check["checks"][0]["state"] == "OK"
    # a row dated past the partitions lands in the DEFAULT partition: check says so
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp) VALUES ('/ahead', now() + interval '5 days')"
    )
    check = run_cli(
        "-c", cfg, "--dsn", dsn, "--format", "json", "check", "--only", "partition_runway"
    )
    assert check.code == 1 and "DEFAULT partition" in check.stdout
    more = _cfg(tmp_path, f"source: {{timezone: {timezone}}}\npartition: {{premake: 8}}\n")
    result = _ok(more, dsn, "maintain", "--only", "partitions")
    attached = [t for t in result["tasks"] if t["task"] == "partitions" and t["status"] == "ok"]
    assert len(attached) >= 5
    assert _ok(more, dsn, "partition", "status")["ahead"] == 8
    assert _count(conn, "requests_default") == 0  # the row moved into its partition
    bounds = conn.execute(
        "SELECT bool_and((pg_get_expr(c.relpartbound, c.oid) LIKE 'FOR VALUES%%')) "
        "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'requests'::regclass AND c.relname <> 'requests_default'"
    ).fetchone()
    assert bounds == (True,)
    # every partition has the parent's indices
    per_partition = conn.execute(
        "SELECT min(n), max(n) FROM (SELECT count(x.indexrelid) AS n FROM pg_inherits i "
        "LEFT JOIN pg_index x ON x.indrelid = i.inhrelid "
        "WHERE i.inhparent = 'requests'::regclass GROUP BY i.inhrelid) s"
    ).fetchone()
    assert per_partition is not None and per_partition[0] == per_partition[1] >= 1
    # partitions start at local midnights of source.timezone
    lowers = conn.execute(
        "SELECT substring(pg_get_expr(c.relpartbound, c.oid) FROM 'FROM \\(''([^'']+)''')"
        "::timestamptz FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE i.inhparent = 'requests'::regclass AND c.relname <> 'requests_default'"
    ).fetchall()
    zone = ZoneInfo(timezone)
    assert lowers and all(lo.astimezone(zone).time() == dt.time(0) for (lo,) in lowers)
    again = _ok(more, dsn, "maintain", "--only", "partitions", "--force", "partitions")["tasks"]
    assert [t["status"] for t in again] == ["ok"] and "ahead already" in again[0]["reason"]


def test_dry_run_equals_execution(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    """The statements a dry run plans are those a real run sends, in order (less the drain,
    which a real run repeats only while rows are captured, and the instant of the swap
    noted on the old table); the same for the partitions task."""
    import re

    from epstats_cli import partition_ahead, partition_convert
    from epstats_cli.config import load
    from epstats_cli.db import connect
    from epstats_cli.execute import Executor

    cfg = _cfg(tmp_path, "partition: {premake: 2}\n")
    _small(cfg, dsn, conn)
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    session = connect(load(cfg), dsn)
    try:
        swapped = re.compile(r"(retired at )[^']+")

        def planned_by(ex: Executor) -> str:
            return ";\n".join(
                r.sql.split(";\n-- only if")[0]
                for r in ex.results
                if r.sql and not r.reason.startswith("move the captured rows")
            )

        def sent_by(ex: Executor) -> str:
            return ";\n".join(e.text for e in ex.log if e.kind == "run")

        dry = Executor(session, dry_run=True)
        partition_convert.apply(session, dry, "day")
        assert dry.log == []
        real = Executor(session, record=True)
        _plan, results = partition_convert.apply(session, real, "day")
        assert {r.status for r in results} == {"ok"}
        assert swapped.sub("", sent_by(real)) == swapped.sub("", planned_by(dry))
        conn.execute("ALTER TABLE requests DETACH PARTITION requests_default")
        conn.execute("DROP TABLE requests_default")
        more = connect(load(_cfg(tmp_path, "partition: {premake: 5}\n")), dsn)
        try:
            dry = Executor(more, dry_run=True)
            dry.run_all(partition_ahead.plan_partitions(more))
            assert len(dry.results) == 3 and "requests_default" not in planned_by(dry)
            real = Executor(more, record=True)
            assert {r.status for r in real.run_all(partition_ahead.plan_partitions(more))} == {"ok"}
            assert sent_by(real) == planned_by(dry)
        finally:
            more.conn.close()
    finally:
        session.conn.close()
