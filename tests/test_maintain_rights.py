"""VACUUM and ANALYZE by a role that may not maintain the table (issue 13, item 2): the server
only warns and skips; epstats must fail the task with the server's reason, check the right
first and say so in --dry-run. Up to PostgreSQL 16 the right is ownership (or the owner's
privileges); from 17 the MAINTAIN privilege and pg_maintain also give it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from epstats_cli.config import Config
from epstats_cli.db import Session, connect
from epstats_cli.execute import Executor, Statement, Step
from tests.conftest import Server, run_cli
from tests.helpers import fill

PASSWORD = "maint-test-pw"


@pytest.fixture
def maintainer(server: Server, dsn: str, conn: psycopg.Connection[Any]) -> Iterator[str]:
    """A login role that reads everything and writes epstats.runs, but owns nothing: its DSN."""
    role = f"m_{conn.info.dbname}"
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 2000)
    assert run_cli("--dsn", dsn, "view", "build").code == 0
    ident = sql.Identifier(role)
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(PASSWORD)))
    conn.execute(sql.SQL("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {}").format(ident))
    conn.execute(sql.SQL("GRANT USAGE ON SCHEMA epstats TO {}").format(ident))
    conn.execute(
        sql.SQL("GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA epstats TO {}").format(ident)
    )
    try:
        yield server.dsn_for(conn.info.dbname, user=role, password=PASSWORD)
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        server.execute(f'DROP ROLE IF EXISTS "{role}"')


def _runs(conn: psycopg.Connection[Any], task: str) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT target, status, error FROM epstats.runs WHERE task = %s ORDER BY id", (task,)
    ).fetchall()


@pytest.mark.parametrize("task", ["vacuum", "analyze"])
def test_a_role_that_may_not_maintain_fails_with_the_reason(
    task: str, maintainer: str, conn: psycopg.Connection[Any], server: Server
) -> None:
    role = conn.execute("SELECT %s::text", (f"m_{conn.info.dbname}",)).fetchone()
    assert role is not None
    before = conn.execute("SELECT count(*) FROM epstats.runs").fetchone()
    r = run_cli("--dsn", maintainer, "--format", "json", task, "--dry-run")
    assert r.code == 0, r.stderr
    planned = json.loads(r.stdout)["tasks"]
    assert planned and all("would fail: role " in t["reason"] for t in planned), planned
    assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == before

    r = run_cli("--dsn", maintainer, "--format", "json", task)
    assert r.code == 1
    tasks = json.loads(r.stdout)["tasks"]
    assert {t["target"] for t in tasks} == {"public.requests", "public.endpoint_daily_stats"}
    assert all(t["status"] == "failed" for t in tasks)
    hint = "GRANT MAINTAIN ON" if server.version >= 17 else f"GRANT postgres TO {role[0]}"
    assert all(f"may not {task} public.requests" in t["reason"] for t in tasks[:1])
    assert all(hint in t["reason"] for t in tasks), tasks
    assert f"epstats: error: {task} public.requests: role {role[0]} may not {task}" in r.stderr
    recorded = _runs(conn, task)
    assert [(t, s) for t, s, _e in recorded] == [
        ("public.requests", "failed"),
        ("public.endpoint_daily_stats", "failed"),
    ]
    assert all("may not" in (e or "") for _t, _s, e in recorded)

    # the right, given: PostgreSQL 17+ by the MAINTAIN privilege, earlier by the owner's role
    ident = sql.Identifier(role[0])
    if server.version >= 17:
        conn.execute(sql.SQL("GRANT pg_maintain TO {}").format(ident))
    else:
        conn.execute(sql.SQL("GRANT postgres TO {}").format(ident))
    r = run_cli("--dsn", maintainer, "--format", "json", task)
    assert r.code == 0, r.stderr
    assert {t["status"] for t in json.loads(r.stdout)["tasks"]} == {"ok"}
    if server.version >= 17:
        conn.execute(sql.SQL("REVOKE pg_maintain FROM {}").format(ident))
    else:
        conn.execute(sql.SQL("REVOKE postgres FROM {}").format(ident))


@pytest.fixture
def session(maintainer: str) -> Iterator[Session]:
    s = connect(Config(), maintainer)
    try:
        yield s
    finally:
        s.conn.close()


@pytest.mark.parametrize("statement", ["VACUUM requests", "ANALYZE requests"])
def test_a_skip_for_permission_is_a_failure_while_running(statement: str, session: Session) -> None:
    """Even without the check beforehand (a right revoked meanwhile), the server's WARNING
    fails the step with its own words."""
    step = Step("t", "public.requests", "why", [Statement(sql.SQL(statement))])
    result = Executor(session).run(step)
    assert result.status == "failed"
    assert result.error is not None and result.error.startswith("the server skipped it: ")
    assert "requests" in result.error
    assert "owner" in result.error or "permission denied" in result.error
