"""Reports and checks run without JIT (issue 17): a read-only session sets jit = off, directly
and through a pooler in every mode (where the setting travels with each statement), and leaves
nothing behind on the pool; a changing session keeps the server's (or role's) setting.

The report path is watched from inside the server: a row-level security policy on the source
table calls a function that raises unless jit is off, so every statement of a report or a check
that reads a row of it proves the setting it ran with (a superuser would bypass the policy:
the commands run as an ordinary role).
"""

from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from epstats_cli import db
from epstats_cli.config import Config
from tests.conftest import run_cli
from tests.helpers import fill
from tests.pgbouncer import APP_PASSWORD, APP_ROLE, POOL_MODES, PgBouncer
from tests.pgcluster import Cluster

pytest_plugins = ["tests.conftest_pooler"]

READER_PASSWORD = "jit-reader-pw"
GUARD = """
CREATE FUNCTION public.jit_guard() RETURNS boolean LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF current_setting('jit') <> 'off' THEN
    RAISE EXCEPTION 'jit is % in this statement', current_setting('jit');
  END IF;
  RETURN true;
END $$
"""
REPORTS = [
    ["report", "top", "--days", "30", "--source", "raw"],
    ["report", "top", "--days", "30", "--source", "auto"],
    ["report", "endpoint", "/api/v1/e1", "--days", "30", "--source", "raw"],
]
_roles = itertools.count()


def _guarded(conn: psycopg.Connection[Any], role: str) -> None:
    """The source table and a rollup, with rows the rollup has not seen; `role` may read them
    only through the policy that fails unless jit is off."""
    fill(conn, 3000)
    conn.execute("ANALYZE requests")
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp, response_time, status) "
        "SELECT '/api/v1/e1', now() - g * interval '1 second', 5, 200 "
        "FROM generate_series(1, 50) g"
    )
    conn.execute(GUARD)
    conn.execute("ALTER TABLE requests ENABLE ROW LEVEL SECURITY")
    conn.execute("CREATE POLICY jit_off ON requests FOR SELECT USING (public.jit_guard())")
    conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {role}")
    conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public, epstats TO {role}")


def _prepared(dsn: str) -> None:
    r = run_cli("--dsn", dsn, "-q", "init", "--with-requests-table")
    assert r.code == 0, r.stderr
    with psycopg.connect(dsn, autocommit=True) as conn:
        fill(conn, 3000)
    r = run_cli("--dsn", dsn, "-q", "view", "build")
    assert r.code == 0, r.stderr


@pytest.fixture
def reader(server: Any, dsn: str) -> Iterator[str]:
    """A DSN of an ordinary role for the test database, whose reads of requests run the guard."""
    role = f"jit_reader_{os.getpid()}_{next(_roles)}"
    server.execute(f"CREATE ROLE {role} LOGIN PASSWORD '{READER_PASSWORD}'")
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    try:
        _prepared(dsn)
        with psycopg.connect(dsn, autocommit=True) as conn:
            _guarded(conn, role)
        yield server.dsn_for(dbname, user=role, password=READER_PASSWORD)
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
        server.execute(f"DROP ROLE IF EXISTS {role}")


def _reads_with_jit_off(dsn: str) -> None:
    for args in REPORTS:
        r = run_cli("--dsn", dsn, "--format", "json", *args)
        assert r.code == 0, (args, r.stderr)
        assert json.loads(r.stdout)["rows"], args  # rows were read, through the guard
    for command in ("check", "status"):
        r = run_cli("--dsn", dsn, "--format", "json", command)
        assert "jit is" not in r.stdout + r.stderr, (command, r.stdout, r.stderr)


def test_reports_and_checks_read_the_source_with_jit_off(reader: str) -> None:
    _reads_with_jit_off(reader)


def test_the_guard_fails_a_report_run_with_the_servers_jit(
    reader: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the test above would see without epstats' setting: the policy does bite."""
    monkeypatch.setattr(db, "READ_ONLY_JIT", None)
    r = run_cli("--dsn", reader, "report", "top", "--days", "30", "--source", "raw")
    assert r.code == 1 and "jit is on in this statement" in r.stderr, (r.code, r.stderr)


@pytest.mark.parametrize("changing", [False, True], ids=["read-only", "changing"])
def test_read_only_sessions_turn_jit_off_changing_ones_keep_the_roles(
    server: Any, dsn: str, changing: bool
) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    server.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {dbname} SET jit = on")
    server.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {dbname} SET jit_above_cost = 0")
    expected = "on" if changing else "off"
    with db.session(Config(), dsn, changing=changing) as s:
        assert s.value("catalog/now") is not None
        shown = s.conn.execute("SELECT current_setting('jit')").fetchone()
        assert shown == (expected,)
        with db.read_snapshot(s):  # a report's transaction
            plan = s.conn.execute(
                "EXPLAIN (ANALYZE, FORMAT JSON) SELECT count(*) FROM pg_class"
            ).fetchone()
            assert plan is not None
            shown = s.conn.execute("SELECT current_setting('jit')").fetchone()
            assert shown == (expected,)
    assert ("JIT" in plan[0][0]) == (changing and _jit_available(dsn))


def _jit_available(dsn: str) -> bool:
    with psycopg.connect(dsn) as conn:
        row = conn.execute("SELECT pg_jit_available()").fetchone()
        return bool(row and row[0])


# --- through PgBouncer (PostgreSQL 15) ---------------------------------------------------------


def _bouncer(request: pytest.FixtureRequest, mode: str) -> PgBouncer:
    bouncer: PgBouncer = request.getfixturevalue(f"pgbouncer_{mode}")
    return bouncer


@pytest.mark.parametrize("mode", POOL_MODES)
def test_through_a_pooler_every_statement_runs_with_jit_off(
    request: pytest.FixtureRequest, pooler_cluster: Cluster, pooler_dbname: str, mode: str
) -> None:
    """Reports and checks as an ordinary role through the pool, every read of requests guarded;
    afterwards every server connection of the pool has the server's jit again."""
    direct = pooler_cluster.dsn_for(pooler_dbname)
    _prepared(direct)
    with psycopg.connect(direct, autocommit=True) as conn:
        _guarded(conn, APP_ROLE)
    bouncer = _bouncer(request, mode)
    pooled = bouncer.dsn_for(pooler_dbname, APP_ROLE, APP_PASSWORD)
    with db.session(Config(), pooled) as s:
        assert s.per_statement  # any pooler: the settings travel with each statement
        for _ in range(7):  # past psycopg's prepare_threshold
            assert s.conn.execute("SELECT current_setting('jit')").fetchone() == ("off",)
    _reads_with_jit_off(pooled)
    with psycopg.connect(pooled, autocommit=True, prepare_threshold=None) as other:
        # the pool's next client finds the server's own setting on its server connections
        for _ in range(3 * bouncer.pool_size):
            assert other.execute("SELECT current_setting('jit')").fetchone() == ("on",)
