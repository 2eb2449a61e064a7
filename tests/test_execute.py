"""The step executor against a real server: modes, lock retries, SKIP_LOCKED, repair,
on_failure, dry run and history."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest
from psycopg import sql

from epstats_cli import schema
from epstats_cli.config import Config
from epstats_cli.db import Session, connect
from epstats_cli.execute import Executor, Logged, Mode, Statement, Step, plan_text
from epstats_cli.history import TaskResult
from tests.helpers import invalid_indexes


def _q(text: str, params: dict[str, Any] | None = None) -> Statement:
    return Statement(sql.SQL(text), params)


@pytest.fixture
def session(dsn: str) -> Iterator[Session]:
    base = Config()
    cfg = replace(
        base,
        database=replace(base.database, lock_timeout=timedelta(milliseconds=200)),
        maintenance=replace(base.maintenance, lock_retries=1),
    )
    s = connect(cfg, dsn)
    try:
        yield s
    finally:
        s.conn.close()


@pytest.fixture
def holder(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """A second connection that holds locks in an open transaction until the test ends."""
    with psycopg.connect(dsn) as c:
        yield c
        c.rollback()


def _oid(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute("SELECT %s::regclass::oid", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _exists(conn: psycopg.Connection[Any], name: str) -> bool:
    row = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (name,)).fetchone()
    return bool(row and row[0])


def test_transaction_mode_rolls_back_whole_on_failure(
    session: Session, conn: psycopg.Connection[Any]
) -> None:
    step = Step(
        "t",
        "public.a",
        "why",
        [
            _q("CREATE TABLE a (x int)"),
            _q("INSERT INTO a VALUES (%(x)s)", {"x": 1}),
            _q("SELECT 1 / 0"),
        ],
        Mode.TRANSACTION,
    )
    ex = Executor(session)
    result = ex.run(step)
    assert result.status == "failed" and result.error == "division by zero"
    assert (
        result.sql
        == "BEGIN;\nCREATE TABLE a (x int);\nINSERT INTO a VALUES (1);\nSELECT 1 / 0;\nCOMMIT"
    )
    assert not _exists(conn, "a")
    assert ex.log == [
        Logged("run", "BEGIN"),
        Logged("run", "CREATE TABLE a (x int)"),
        Logged("run", "INSERT INTO a VALUES (1)"),
        Logged("run", "SELECT 1 / 0"),
    ]
    assert ex.run(replace(step, statements=step.statements[:2])).status == "ok"
    assert conn.execute("SELECT x FROM a").fetchall() == [(1,)]
    assert ex.log[-1] == Logged("run", "COMMIT")


def test_lock_retries_name_the_blocker(
    session: Session, conn: psycopg.Connection[Any], holder: psycopg.Connection[Any]
) -> None:
    conn.execute("CREATE TABLE t (x int)")
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    step = Step(
        "alter",
        "public.t",
        "why",
        [_q("ALTER TABLE t ADD COLUMN y int")],
        relation_oid=_oid(conn, "t"),
        lock_modes=("AccessExclusiveLock",),
    )
    ex = Executor(session)
    result = ex.run(step)
    assert result.status == "failed"
    assert result.reason.startswith(
        "lock not granted within lock_timeout (200ms) after 2 tries: "
        f"it waited for pid {holder.info.backend_pid} to finish its transaction "
        "(holds AccessExclusiveLock on t, idle in transaction since"
    )
    assert [e.kind for e in ex.log] == ["run", "retry"]
    holder.rollback()
    assert ex.run(step).status == "ok"


def test_skip_locked_skip_counts_as_not_granted(
    session: Session, conn: psycopg.Connection[Any], holder: psycopg.Connection[Any]
) -> None:
    conn.execute("CREATE TABLE t (x int)")
    holder.execute("LOCK TABLE t IN SHARE MODE")
    step = Step(
        "vacuum",
        "public.t",
        "why",
        [_q("VACUUM (SKIP_LOCKED) t")],
        relation_oid=_oid(conn, "t"),
        skip_locked=True,
    )
    ex = Executor(session)
    result = ex.run(step)
    assert result.status == "failed"
    assert result.reason.startswith(
        "lock not available (SKIP_LOCKED) after 2 tries: "
        f"it waited for pid {holder.info.backend_pid} to finish its transaction "
        "(holds ShareLock on t,"
    )
    assert [e.kind for e in ex.log] == ["run", "retry"]
    # the same statement without skip_locked: the skip goes unnoticed and counts as done
    assert Executor(session).run(replace(step, skip_locked=False)).status == "ok"
    holder.rollback()
    assert ex.run(step).status == "ok"


def test_repair_drops_an_invalid_index(session: Session, conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE t (x int)")
    conn.execute("INSERT INTO t VALUES (1), (1)")
    drop = _q('DROP INDEX CONCURRENTLY IF EXISTS "public"."t_x"')
    step = Step(
        "create",
        "t_x",
        "why",
        [_q('CREATE UNIQUE INDEX CONCURRENTLY "t_x" ON t (x)')],
        Mode.CONCURRENTLY,
        relation_oid=_oid(conn, "t"),
        index=("public", "t_x"),
        repair=[drop],
    )
    ex = Executor(session)
    result = ex.run(step)
    assert result.status == "failed" and "could not create unique index" in result.reason
    assert "left behind" not in result.reason
    assert invalid_indexes(conn) == [] and not _exists(conn, "t_x")
    assert ex.log == [
        Logged("run", 'CREATE UNIQUE INDEX CONCURRENTLY "t_x" ON t (x)'),
        Logged("repair", 'DROP INDEX CONCURRENTLY IF EXISTS "public"."t_x"'),
    ]
    # a failure that leaves no index needs no repair
    ex = Executor(session)
    bad = replace(step, statements=[_q('CREATE INDEX CONCURRENTLY "t_x" ON t (nope)')])
    assert ex.run(bad).status == "failed"
    assert [e.kind for e in ex.log] == ["run"]


def test_on_failure_runs_once_after_the_final_failure(
    session: Session, conn: psycopg.Connection[Any], holder: psycopg.Connection[Any]
) -> None:
    conn.execute("CREATE TABLE t (x int)")
    conn.execute("CREATE TABLE undone (n int)")
    holder.execute("LOCK TABLE t IN ACCESS EXCLUSIVE MODE")
    step = Step(
        "alter",
        "public.t",
        "why",
        [_q("ALTER TABLE t ADD COLUMN y int")],
        relation_oid=_oid(conn, "t"),
        retries=2,
        on_failure=[_q("INSERT INTO undone VALUES (1)")],
    )
    ex = Executor(session)
    assert ex.run(step).status == "failed"
    assert [e.kind for e in ex.log] == ["run", "retry", "retry", "on_failure"]
    assert conn.execute("SELECT count(*) FROM undone").fetchone() == (1,)
    holder.rollback()
    ex = Executor(session)
    assert ex.run(step).status == "ok"
    assert [e.kind for e in ex.log] == ["run"]
    assert conn.execute("SELECT count(*) FROM undone").fetchone() == (1,)


def test_dry_run_runs_nothing(session: Session, conn: psycopg.Connection[Any]) -> None:
    schema.init(session, False, Executor(session))
    step = Step(
        "create",
        "a",
        "why",
        [_q("CREATE TABLE a (x int)")],
        index=("public", "a_x"),
        repair=[_q('DROP INDEX CONCURRENTLY IF EXISTS "public"."a_x"')],
        on_failure=[_q("DROP TABLE IF EXISTS a")],
    )
    ex = Executor(session, dry_run=True, record=True)
    result = ex.run(step)
    assert result == TaskResult("create", "a", "planned", "why", 0, plan_text(session, step))
    assert result.sql == (
        "CREATE TABLE a (x int);\n"
        "-- only if a try fails and leaves the index invalid: "
        'DROP INDEX CONCURRENTLY IF EXISTS "public"."a_x";\n'
        "-- only if the step fails: DROP TABLE IF EXISTS a"
    )
    ex.record_result(TaskResult("create", "a", "ok", "why"))
    assert ex.log == [] and ex.results == [result]
    assert not _exists(conn, "a")
    assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == (0,)


def test_record_writes_runs(session: Session, conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE TABLE t (x int)")
    step = Step("vacuum", "public.t", "why", [_q("VACUUM t")], done="vacuumed")
    assert Executor(session, record=True).run(step).status == "ok"  # no epstats.runs yet
    assert Executor(session).run(step).status == "ok"
    schema.init(session, False, Executor(session))
    assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == (0,)
    ex = Executor(session, record=True)
    ex.run(step)
    ex.run(replace(step, statements=[_q("VACUUM nope")]))
    ex.run(replace(step, skip="not now"))  # a skip is the caller's to record
    ex.record_result(TaskResult("vacuum", "everything", "skipped", "max-runtime used up"))
    rows = conn.execute(
        "SELECT task, target, status, reason, sql, error, finished_at >= started_at "
        "FROM epstats.runs ORDER BY id"
    ).fetchall()
    assert rows == [
        ("vacuum", "public.t", "ok", "vacuumed", "VACUUM t", None, True),
        (
            "vacuum",
            "public.t",
            "failed",
            'relation "nope" does not exist',
            "VACUUM nope",
            'relation "nope" does not exist',
            True,
        ),
        ("vacuum", "everything", "skipped", "max-runtime used up", None, None, True),
    ]


def test_raise_failure_and_after(session: Session, conn: psycopg.Connection[Any]) -> None:
    schema.init(session, False, Executor(session))
    seen: list[int] = []
    step = Step(
        "load",
        "a",
        "why",
        [
            _q("CREATE TABLE a (x int)"),
            Statement(sql.SQL("INSERT INTO a VALUES (1)"), after=lambda: seen.append(1)),
            Statement(sql.SQL("INSERT INTO a VALUES (2)"), after=lambda: seen.append(2)),
        ],
        Mode.TRANSACTION,
        raise_failure=True,
    )
    ex = Executor(session, record=True)
    assert ex.run(step).status == "ok" and seen == [1, 2]
    seen.clear()
    with pytest.raises(psycopg.errors.DuplicateTable):
        ex.run(step)  # the server's own error, for the command's error mapping
    assert seen == []
    recorded = conn.execute("SELECT status FROM epstats.runs ORDER BY id").fetchall()
    assert recorded == [("ok",), ("failed",)]  # recorded before it is raised


def test_progress_is_drawn_on_the_given_console(
    session: Session, conn: psycopg.Connection[Any]
) -> None:
    from io import StringIO

    from rich.console import Console

    conn.execute("CREATE TABLE t AS SELECT g AS x FROM generate_series(1, 200000) g")
    step = Step(
        "create",
        "t_x",
        "why",
        [_q('CREATE INDEX CONCURRENTLY "t_x" ON t (x)')],
        Mode.CONCURRENTLY,
        progress="catalog/index_build_progress",
    )
    out = StringIO()
    assert Executor(session).run(step).status == "ok"  # no console: no bar, nowhere
    conn.execute("DROP INDEX t_x")
    console = Console(file=out, force_terminal=True, width=100, no_color=True)
    assert Executor(session, console=console).run(step).status == "ok"
    assert "create t_x" in out.getvalue()


def test_a_step_failure_is_told_in_the_error_tables_words(dsn: str) -> None:
    base = Config()
    cfg = replace(
        base, database=replace(base.database, statement_timeout=timedelta(milliseconds=50))
    )
    s = connect(cfg, dsn)
    try:
        result = Executor(s).run(Step("t", "x", "sleep", [_q("SELECT pg_sleep(1)")]))
    finally:
        s.conn.close()
    assert result.status == "failed"
    assert result.error is not None and "statement_timeout" in result.error


def test_a_terminated_backend_is_named_not_hidden_by_the_history_write(
    session: Session, holder: psycopg.Connection[Any]
) -> None:
    import threading
    import time

    schema.init(session, False, Executor(session))
    pid = session.pid

    def terminate() -> None:
        time.sleep(0.5)
        holder.execute("SELECT pg_terminate_backend(%s)", (pid,))
        holder.commit()

    killer = threading.Thread(target=terminate)
    killer.start()
    try:
        with pytest.raises(Exception) as info:
            Executor(session, record=True).run(Step("t", "x", "sleep", [_q("SELECT pg_sleep(5)")]))
    finally:
        killer.join()
    text = str(info.value)
    assert "terminat" in text and "connection to the server was lost" in text, text
