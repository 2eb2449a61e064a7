"""Permission hints on a real server: the object and the grant actually missing, never a
blanket "connect as the table owner"."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from tests.conftest import Server, run_cli
from tests.helpers import fill

_roles = itertools.count()


@pytest.fixture
def roles(server: Server, dsn: str, conn: psycopg.Connection[Any]) -> Iterator[dict[str, str]]:
    """An initialised database, a SELECT-only role and the owner of the source table and
    rollup who has no rights on schema epstats: {name: DSN}."""
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 2000)
    assert run_cli("--dsn", dsn, "view", "build").code == 0
    n = next(_roles)
    reader, owner = f"epstats_ro{n}", f"epstats_own{n}"
    for role in (reader, owner):
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
    conn.execute(f"GRANT SELECT ON requests, endpoint_daily_stats TO {reader}")
    conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {reader}")
    conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA epstats TO {reader}")
    conn.execute(f"ALTER TABLE requests OWNER TO {owner}")
    conn.execute(f"ALTER MATERIALIZED VIEW endpoint_daily_stats OWNER TO {owner}")
    db = conn.info.dbname
    try:
        yield {
            reader: server.dsn_for(db, user=reader, password="pw"),
            owner: server.dsn_for(db, user=owner, password="pw"),
        }
    finally:
        conn.execute(f"REASSIGN OWNED BY {owner} TO CURRENT_USER")
        for role in (reader, owner):
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def _error(dsn: str, *args: str) -> str:
    r = run_cli("--dsn", dsn, *args)
    assert r.code == 1, (r.stdout, r.stderr)
    assert r.stderr.count("\n") == 1 and "connect as the table owner" not in r.stderr
    return r.stderr


def test_a_select_only_role_is_told_which_grant_on_runs_it_lacks(
    roles: dict[str, str],
) -> None:
    reader, dsn = next(iter(roles.items()))
    assert (
        f"permission denied for table runs: INSERT on epstats.runs is missing: GRANT SELECT, "
        f"INSERT, UPDATE, DELETE ON epstats.runs TO {reader}" in _error(dsn, "vacuum")
    )
    # generate records its run first (every changing command does): the same grant is named
    assert "INSERT on epstats.runs is missing: GRANT SELECT, INSERT, UPDATE, DELETE ON " in (
        _error(dsn, "generate", "--rows", "10")
    )


def test_an_owner_without_rights_on_schema_epstats_is_told_so(roles: dict[str, str]) -> None:
    owner, dsn = list(roles.items())[1]
    for args in (["vacuum"], ["maintain"]):
        assert (
            f"permission denied for schema epstats: USAGE on schema epstats is missing: "
            f"GRANT USAGE ON SCHEMA epstats TO {owner}"
        ) in _error(dsn, *args)


def test_a_reader_without_select_on_the_rollup(
    roles: dict[str, str], conn: psycopg.Connection[Any]
) -> None:
    reader, dsn = next(iter(roles.items()))
    conn.execute(f"REVOKE SELECT ON endpoint_daily_stats FROM {reader}")
    assert (
        "permission denied for materialized view endpoint_daily_stats: SELECT on "
        "public.endpoint_daily_stats is missing: GRANT SELECT ON public.endpoint_daily_stats "
        f"TO {reader}"
    ) in _error(dsn, "report", "top")
