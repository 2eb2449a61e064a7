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
    assert "connect as the table owner" not in r.stderr and "Traceback" not in r.stderr
    return r.stderr


def _lines(stderr: str) -> list[str]:
    """The missing rights a refused command lists, one a line."""
    return [line.removeprefix("epstats: error:   ") for line in stderr.splitlines()[1:]]


def test_a_select_only_role_is_told_every_grant_it_lacks(
    roles: dict[str, str], server: Server
) -> None:
    reader, dsn = next(iter(roles.items()))
    owner = list(roles)[1]
    stderr = _error(dsn, "vacuum")
    assert stderr.startswith(
        f"epstats: error: `epstats vacuum` was not run: role {reader} lacks 3 rights it needs"
    )
    if server.version >= 17:
        right = (
            "it needs the MAINTAIN privilege (GRANT MAINTAIN ON {t} TO {r}, or GRANT pg_maintain "
            "TO {r}), or to connect as the owner {o}"
        )
    else:
        right = (
            "only its owner {o} (or a role with {o}'s privileges) and the database owner may: "
            "connect as {o}, or GRANT {o} TO {r}"
        )
    assert _lines(stderr) == [
        f"INSERT, UPDATE on epstats.runs (record the run): GRANT INSERT, UPDATE ON epstats.runs "
        f"TO {reader}",
        *(
            f"the right to vacuum {t}: " + right.format(t=t, r=reader, o=owner)
            for t in ("public.requests", "public.endpoint_daily_stats")
        ),
    ]
    # generate records its run too: the same grant, with the one on the table it loads
    assert _lines(_error(dsn, "generate", "--rows", "10")) == [
        f"INSERT, UPDATE on epstats.runs (record the run): GRANT INSERT, UPDATE ON epstats.runs "
        f"TO {reader}",
        f"INSERT on public.requests (load the generated rows): GRANT INSERT ON public.requests "
        f"TO {reader}",
    ]


def test_an_owner_without_rights_on_schema_epstats_is_told_so(roles: dict[str, str]) -> None:
    owner, dsn = list(roles.items())[1]
    for args in (["vacuum"], ["maintain"]):
        lines = _lines(_error(dsn, *args))
        assert lines[0].startswith("USAGE on schema epstats (record the run")
        assert lines[0].endswith(f": GRANT USAGE ON SCHEMA epstats TO {owner}")
        assert any(f"ON epstats.runs TO {owner}" in line for line in lines[1:])
        assert not any("public.requests" in line for line in lines)  # it owns the tables


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
