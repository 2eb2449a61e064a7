"""`--dry-run` prints exactly what runs: the rollup's planned statements against the executor's
log of a real run, on real servers, for build, build --replace and refresh."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from epstats_cli import config, rollup
from epstats_cli.db import Session, connect
from epstats_cli.execute import Executor
from epstats_cli.history import TaskResult
from tests.conftest import run_cli
from tests.helpers import fill

TZ = "America/New_York"
ON_FAILURE = ";\n-- only if the step fails: "


@pytest.fixture(params=["materialized", "incremental"])
def session(
    request: pytest.FixtureRequest, dsn: str, conn: psycopg.Connection[Any]
) -> Iterator[Session]:
    strategy: str = request.param
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    cfg = config.build({"source": {"timezone": TZ}, "view": {"strategy": strategy}})
    s = connect(cfg, dsn)
    try:
        yield s
    finally:
        s.conn.close()


def planned(results: list[TaskResult]) -> tuple[str, list[str]]:
    """What a dry run says runs (its steps' statements), and what runs only on failure."""
    texts, undo = [], []
    for r in results:
        assert r.status == "planned" and r.sql is not None
        text, *only_on_failure = r.sql.split(ON_FAILURE)
        texts.append(text)
        undo += only_on_failure
    return ";\n".join(texts), undo


def ran(executor: Executor, kind: str = "run") -> list[str]:
    return [entry.text for entry in executor.log if entry.kind == kind]


def test_build_replace_and_refresh_run_what_dry_run_printed(session: Session) -> None:
    # build
    plan, undo = planned(rollup.build(session, dry_run=True))
    ex = Executor(session)
    results = rollup.build(session, executor=ex)
    assert [r.status for r in results] == ["ok"]
    assert ";\n".join(ran(ex)) == plan and undo == []
    assert {e.kind for e in ex.log} == {"run"}
    assert "INSERT INTO epstats.rollup_state" in plan  # the state row, in the same transaction

    # build --replace: a build step, then a swap step that drops the new one if it fails
    plan, undo = planned(rollup.build(session, replace=True, dry_run=True))
    ex = Executor(session)
    results = rollup.build(session, replace=True, executor=ex)
    assert [(r.task, r.status) for r in results] == [("build", "ok"), ("swap", "ok")]
    assert ";\n".join(ran(ex)) == plan
    assert {e.kind for e in ex.log} == {"run"}
    assert len(undo) == 2 and undo[0].startswith("DROP ") and "IF EXISTS" in undo[0]
    assert "endpoint_daily_stats_epstats_new" in undo[0]

    # refresh (materialized: CONCURRENTLY; incremental: the lookback days)
    dry = rollup.refresh(session, dry_run=True)
    plan, undo = planned([dry])
    ex = Executor(session)
    result = rollup.refresh(session, executor=ex)
    assert result.status == "ok" and result.reason == dry.reason
    assert ";\n".join(ran(ex)) == plan and undo == []
    assert {e.kind for e in ex.log} == {"run"}


@pytest.mark.parametrize("session", ["incremental"], indirect=True)
def test_incremental_full_refresh_runs_what_dry_run_printed(session: Session) -> None:
    assert [r.status for r in rollup.build(session)] == ["ok"]
    dry = rollup.refresh(session, full=True, dry_run=True)
    ex = Executor(session)
    result = rollup.refresh(session, full=True, executor=ex)
    assert result.status == "ok" and result.reason == dry.reason == "incremental: all days"
    assert ";\n".join(ran(ex)) == planned([dry])[0]


def test_failed_swap_runs_its_on_failure_statements(
    session: Session, conn: psycopg.Connection[Any]
) -> None:
    assert [r.status for r in rollup.build(session)] == ["ok"]
    state_before = conn.execute("SELECT * FROM epstats.rollup_state").fetchall()
    _plan, undo = planned(rollup.build(session, replace=True, dry_run=True))
    cfg = session.config
    short = connect(
        replace(
            cfg,
            database=replace(cfg.database, lock_timeout=timedelta(milliseconds=200)),
            maintenance=replace(cfg.maintenance, lock_retries=0),
        ),
        session.dsn,
    )
    # a reader of the old rollup in a long transaction: the swap cannot drop it
    with short.conn, psycopg.connect(session.dsn) as holder:
        holder.execute("SELECT count(*) FROM endpoint_daily_stats")
        pid = holder.info.backend_pid
        ex = Executor(short)
        results = rollup.build(short, replace=True, executor=ex)
        holder.rollback()
    assert [(r.task, r.status) for r in results] == [("build", "ok"), ("swap", "failed")]
    assert results[1].reason.startswith("lock not granted within lock_timeout (200ms): ")
    assert f"pid {pid} to finish its transaction (holds AccessShareLock" in results[1].reason
    assert ran(ex, "on_failure") == undo
    assert (
        conn.execute("SELECT relname FROM pg_class WHERE relname LIKE '%epstats_new%'").fetchall()
        == []
    )
    assert conn.execute("SELECT * FROM epstats.rollup_state").fetchall() == state_before
