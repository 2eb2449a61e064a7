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
from epstats_cli.db import session as db_session
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
    # the tables' owner is the superuser: never "GRANT postgres TO ..."
    hint = (
        "GRANT MAINTAIN ON"
        if server.version >= 17
        else "its owner postgres is a superuser, whose role is never to be granted: a "
        "superuser must run this, or give it an owner of its own (ALTER "
    )
    assert all(f"may not {task} public.requests" in t["reason"] for t in tasks[:1])
    assert all(hint in t["reason"] for t in tasks), tasks
    assert not any("GRANT postgres" in t["reason"] for t in tasks), tasks
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


def test_reindex_as_a_role_that_may_not_says_would_fail_and_fails(
    maintainer: str, conn: psycopg.Connection[Any], server: Server
) -> None:
    """REINDEX needs the table owner's rights (from PostgreSQL 17 also MAINTAIN): the dry run
    says each rebuild would fail and the real run fails them, naming the owning role."""
    role = f"m_{conn.info.dbname}"
    conn.execute("CREATE INDEX idx_requests_status ON requests (status)")
    r = run_cli("--dsn", maintainer, "--format", "json", "reindex", "--dry-run")
    assert r.code == 0, r.stderr
    planned = json.loads(r.stdout)["tasks"]
    assert {t["target"] for t in planned} >= {"public.idx_requests_status"}
    if server.version >= 17:
        hint = f"GRANT MAINTAIN ON public.requests TO {role} (or GRANT pg_maintain TO {role})"
    else:
        hint = (
            "only its owner postgres may: its owner postgres is a superuser, whose role is "
            "never to be granted: a superuser must run this, or give it an owner of its own "
            f"(ALTER TABLE public.requests OWNER TO {role})"
        )
    for t in planned:
        assert f"would fail: role {role} may not reindex {t['target']}: " in t["reason"], t
    assert hint in planned[0]["reason"] or any(hint in t["reason"] for t in planned), planned

    r = run_cli("--dsn", maintainer, "--format", "json", "reindex")
    assert r.code == 1
    tasks = json.loads(r.stdout)["tasks"]
    rebuilds = [t for t in tasks if t["target"] != "indices of public.requests"]
    assert rebuilds and all(t["status"] == "failed" for t in rebuilds), tasks
    assert any(hint in t["reason"] for t in rebuilds)
    assert f"epstats: error: reindex public.idx_requests_status: role {role} may not" in r.stderr
    recorded = _runs(conn, "reindex")
    assert ("indices of public.requests", "failed") in [(t, s) for t, s, _e in recorded]
    invalid = conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone()
    assert invalid == (0,)  # nothing was tried, nothing left behind

    ident = sql.Identifier(role)
    grant = "GRANT pg_maintain TO {}" if server.version >= 17 else "GRANT postgres TO {}"
    conn.execute(sql.SQL(grant).format(ident))
    r = run_cli("--dsn", maintainer, "--format", "json", "reindex")
    assert r.code == 0, r.stderr
    conn.execute(sql.SQL(grant.replace("GRANT", "REVOKE").replace(" TO ", " FROM ")).format(ident))


def test_vacuum_needs_no_right_on_the_rollup_it_may_not_vacuum(
    maintainer: str, conn: psycopg.Connection[Any]
) -> None:
    """Finding what to vacuum reads the catalog only: a role without SELECT on the rollup is
    told the real problem (it is not the owner), not that it may not read the rollup."""
    role = f"m_{conn.info.dbname}"
    conn.execute(f"REVOKE SELECT ON endpoint_daily_stats FROM {role}")
    r = run_cli("--dsn", maintainer, "--format", "json", "vacuum")
    assert r.code == 1
    tasks = json.loads(r.stdout)["tasks"]
    assert [(t["target"], t["status"]) for t in tasks] == [
        ("public.requests", "failed"),
        ("public.endpoint_daily_stats", "failed"),
    ]
    assert "permission denied" not in r.stderr and "SELECT" not in r.stderr
    assert f"role {role} may not vacuum public.endpoint_daily_stats" in r.stderr


def _skip_reasons(s: Session) -> dict[str, str | None]:
    from epstats_cli.maintenance import plan_reindex

    return {step.target: step.skip for step in plan_reindex(s, None, 0.3)}


def test_a_reindex_skip_says_why_there_is_no_estimate(
    dsn: str, conn: psycopg.Connection[Any], maintainer: str
) -> None:
    """Each index that has no bloat estimate says why, as it is for that index."""
    conn.execute("CREATE INDEX idx_requests_ts_brin ON requests USING brin (timestamp)")
    conn.execute("CREATE INDEX idx_requests_status ON requests (status)")
    conn.execute("CREATE TABLE tiny (a int)")
    with db_session(Config(), dsn) as s:
        reasons = _skip_reasons(s)
    assert reasons["public.idx_requests_ts_brin"] == (
        "no bloat estimate: a brin index: only btree bloat is estimated"
    )
    assert reasons["public.idx_requests_status"] == (
        "no bloat estimate: its columns have no statistics yet (analyze public.requests)"
    )
    conn.execute("ANALYZE requests")
    with db_session(Config(), dsn) as s:
        reasons = _skip_reasons(s)
    assert reasons["public.idx_requests_status"] is not None
    assert (
        reasons["public.idx_requests_status"].startswith(  # a 2000-row index: 7 pages
            "estimated bloat "
        )
        or "too small to estimate" in reasons["public.idx_requests_status"]
    )
    # a role that may not read the columns cannot see their statistics
    role = f"m_{conn.info.dbname}"
    conn.execute(f"REVOKE SELECT ON requests FROM {role}")
    with db_session(Config(), maintainer) as s:
        reasons = _skip_reasons(s)
    assert reasons["public.idx_requests_status"] == (
        f"no bloat estimate: role {role} cannot see the statistics of its columns (pg_stats "
        f"shows only columns a role may SELECT: GRANT SELECT ON public.requests TO {role})"
    )
    assert not any("btree index, or" in (r or "") for r in reasons.values())
