"""`view build --replace` keeps what the old rollup had (issue 13, item 1): its owner, grants
on it and on its columns, its comments (on it, its columns, its other indices), other indices,
and the views that read it (created again on the new one in the swap's transaction, with their
comments); or it refuses before building, naming what and why."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import Server, run_cli
from tests.helpers import fill

PASSWORD = "replace-test-pw"
ROLES = ("app", "grafana", "monitor", "runner")


@pytest.fixture
def roles(server: Server, conn: psycopg.Connection[Any]) -> Iterator[dict[str, str]]:
    """Roles unique to this database: the owner `app`, readers, and `runner` (epstats)."""
    # the owner and a reader with names that need quoting
    names = {r: f"{r}_{conn.info.dbname}" for r in ROLES}
    names.update(app=f"App Owner {conn.info.dbname}", grafana=f"Grafana-{conn.info.dbname}")
    for name in names.values():
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(PASSWORD)
            )
        )
    try:
        yield names
    finally:
        for name in names.values():
            conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(sql.Identifier(name)))
            server.execute(f'DROP ROLE IF EXISTS "{name}"')


def _q(conn: psycopg.Connection[Any], query: str, *args: Any) -> list[tuple[Any, ...]]:
    return conn.execute(query, args).fetchall()


def _setup(
    conn: psycopg.Connection[Any], dsn: str, tmp_path: Path, strategy: str, roles: dict[str, str]
) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 3000)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
    kind = "MATERIALIZED VIEW" if strategy == "materialized" else "TABLE"
    app, grafana, monitor = roles["app"], roles["grafana"], roles["monitor"]
    conn.execute(f'GRANT SELECT ON requests TO "{app}"')
    conn.execute(f'ALTER {kind} endpoint_daily_stats OWNER TO "{app}"')
    conn.execute(f'GRANT SELECT ON endpoint_daily_stats TO "{grafana}" WITH GRANT OPTION')
    conn.execute(f'GRANT SELECT (endpoint, day) ON endpoint_daily_stats TO "{monitor}"')
    conn.execute(
        "CREATE INDEX eds_busy ON endpoint_daily_stats (request_count DESC) "
        "WHERE request_count > 10"
    )
    # a view of the rollup, and a view of that view, owned by app, with grants and a comment
    conn.execute(
        "CREATE VIEW api_days AS SELECT endpoint, day, request_count "
        "FROM endpoint_daily_stats WHERE endpoint LIKE '/api%'"
    )
    conn.execute("CREATE VIEW api_busy AS SELECT endpoint FROM api_days WHERE request_count > 1")
    conn.execute(f'ALTER VIEW api_days OWNER TO "{app}"')
    conn.execute(f'GRANT SELECT ON api_days, api_busy TO "{grafana}"')
    conn.execute("COMMENT ON VIEW api_busy IS 'busy API endpoints'")
    conn.execute("COMMENT ON COLUMN api_days.request_count IS 'requests that day'")
    # the team's own comments on the rollup, a column of it and its extra index
    conn.execute(f"COMMENT ON {kind} endpoint_daily_stats IS 'Grafana: API dashboard'")
    conn.execute("COMMENT ON COLUMN endpoint_daily_stats.day IS 'UTC day'")
    conn.execute("COMMENT ON INDEX eds_busy IS 'for the busy panel'")
    return str(cfg)


def _kept(conn: psycopg.Connection[Any], roles: dict[str, str]) -> dict[str, Any]:
    """Owner, grants, extra index, views and their links, as the catalog says."""
    rollup_oid = _q(conn, "SELECT 'endpoint_daily_stats'::regclass::oid")[0][0]
    return {
        "owner": _q(
            conn, "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = %s", rollup_oid
        ),
        "grants": sorted(
            _q(
                conn,
                "SELECT pg_get_userbyid(grantee), privilege_type, is_grantable "
                "FROM pg_class, aclexplode(relacl) WHERE oid = %s AND grantee <> relowner",
                rollup_oid,
            )
        ),
        "column_grants": sorted(
            _q(
                conn,
                "SELECT attname::text, pg_get_userbyid(grantee), privilege_type "
                "FROM pg_attribute, aclexplode(attacl) WHERE attrelid = %s AND attacl IS NOT NULL",
                rollup_oid,
            )
        ),
        "extra_index": _q(
            conn,
            "SELECT pg_get_indexdef(indexrelid) FROM pg_index i JOIN pg_class c "
            "ON c.oid = i.indexrelid WHERE c.relname = 'eds_busy' AND i.indrelid = %s",
            rollup_oid,
        ),
        "comments": _q(
            conn,
            "SELECT coalesce(a.attname::text, ''), d.description FROM pg_description d "
            "LEFT JOIN pg_attribute a ON a.attrelid = d.objoid AND a.attnum = d.objsubid "
            "WHERE d.objoid = %s ORDER BY d.objsubid",
            rollup_oid,
        ),
        "index_comment": _q(conn, "SELECT obj_description('eds_busy'::regclass, 'pg_class')"),
        "view_column_comments": _q(
            conn,
            "SELECT col_description('api_days'::regclass, 3), "
            "col_description('api_busy'::regclass, 1)",
        ),
        "views": _q(
            conn,
            "SELECT relname::text, pg_get_userbyid(relowner), obj_description(oid, 'pg_class'), "
            "array_to_string(relacl, ',') FROM pg_class WHERE relname IN ('api_days', 'api_busy') "
            "ORDER BY 1",
        ),
        # api_days reads the rollup now in place, api_busy reads api_days
        "reads_rollup": _q(
            conn,
            "SELECT DISTINCT v.relname::text FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid "
            "JOIN pg_class v ON v.oid = r.ev_class WHERE d.refobjid = %s AND v.oid <> %s",
            rollup_oid,
            rollup_oid,
        ),
    }


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_replace_keeps_owner_grants_indices_and_views(
    strategy: str,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    roles: dict[str, str],
) -> None:
    cfg = _setup(conn, dsn, tmp_path, strategy, roles)
    before = _kept(conn, roles)
    assert before["owner"] == [(roles["app"],)] and before["reads_rollup"] == [("api_days",)]
    assert before["comments"] == [("", "Grafana: API dashboard"), ("day", "UTC day")]
    assert before["index_comment"] == [("for the busy panel",)]
    assert before["view_column_comments"] == [("requests that day", None)]
    rows_before = _q(conn, "SELECT * FROM api_busy ORDER BY 1")
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "view", "build", "--replace")
    assert r.code == 0, r.stderr
    tasks = json.loads(r.stdout)["tasks"]
    assert [(t["task"], t["status"]) for t in tasks] == [("build", "ok"), ("swap", "ok")]
    after = _kept(conn, roles)
    assert after == before
    assert _q(conn, "SELECT * FROM api_busy ORDER BY 1") == rows_before
    assert _q(conn, "SELECT relname FROM pg_class WHERE relname LIKE '%%epstats_new%%'") == []
    # the readers can still read, as themselves
    for who, query in (
        ("grafana", "SELECT count(*) FROM endpoint_daily_stats"),
        ("grafana", "SELECT count(*) FROM api_busy"),
        ("monitor", "SELECT count(endpoint) FROM endpoint_daily_stats"),
    ):
        with psycopg.connect(
            psycopg.conninfo.make_conninfo(dsn, user=roles[who], password=PASSWORD)
        ) as c:
            c.execute(query)
    # and epstats, connected as the owner, can refresh it
    owner_dsn = psycopg.conninfo.make_conninfo(dsn, user=roles["app"], password=PASSWORD)
    conn.execute(f'GRANT USAGE ON SCHEMA epstats TO "{roles["app"]}"')
    conn.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA epstats TO "{roles["app"]}"')
    r = run_cli("-c", cfg, "--dsn", owner_dsn, "view", "refresh")
    assert r.code == 0, r.stderr


def test_replace_refuses_before_building_when_it_cannot_keep(
    server: Server,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    roles: dict[str, str],
) -> None:
    cfg = _setup(conn, dsn, tmp_path, "materialized", roles)
    runner = roles["runner"]
    conn.execute(f'GRANT CREATE ON SCHEMA public TO "{runner}", "{roles["app"]}"')
    conn.execute(f'ALTER VIEW api_busy OWNER TO "{roles["app"]}"')
    conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{runner}"')
    conn.execute(f'GRANT USAGE ON SCHEMA epstats TO "{runner}"')
    conn.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA epstats TO "{runner}"')
    runner_dsn = psycopg.conninfo.make_conninfo(dsn, user=runner, password=PASSWORD)
    before = _kept(conn, roles)
    for dry in ([], ["--dry-run"]):
        r = run_cli("-c", cfg, "--dsn", runner_dsn, "view", "build", "--replace", *dry)
        assert r.code == 1
        assert r.stderr.startswith("epstats: error: cannot replace public.endpoint_daily_stats")
        app_sql = f'"{roles["app"]}"'  # as the advice quotes it, ready to copy
        assert (
            f"belongs to {app_sql}, and {runner} cannot drop it or give the new one to "
            f"{app_sql}: connect as {app_sql}, or GRANT {app_sql} TO {runner}"
        ) in r.stderr
        assert "view public.api_days" in r.stderr  # its owner is app too
        assert _q(conn, "SELECT relname FROM pg_class WHERE relname LIKE '%%epstats_new%%'") == []
    assert _kept(conn, roles) == before

    # a member of app that does not inherit its privileges may become it: SET ROLE
    app = roles["app"]
    conn.execute(f'ALTER ROLE "{runner}" NOINHERIT')
    conn.execute(f'GRANT "{app}" TO "{runner}"')
    r = run_cli("-c", cfg, "--dsn", runner_dsn, "view", "build", "--replace")
    assert r.code == 1
    options = "-c role=" + app.replace(" ", "\\ ")  # libpq's escape for a space
    assert f"{runner} cannot drop it: run as \"{app}\" (PGOPTIONS='{options}'" in r.stderr
    conn.execute(f'GRANT USAGE ON SCHEMA epstats TO "{app}"')
    conn.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA epstats TO "{app}"')
    as_app: dict[str, str | None] = {"PGOPTIONS": options}
    r = run_cli("-c", cfg, "--dsn", runner_dsn, "view", "build", "--replace", env=as_app)
    assert r.code == 0, r.stderr
    assert _kept(conn, roles) == before
    # and one that inherits them, as itself
    if server.version >= 16:
        conn.execute(f'GRANT "{app}" TO "{runner}" WITH INHERIT TRUE')
    else:
        conn.execute(f'ALTER ROLE "{runner}" INHERIT')
    r = run_cli("-c", cfg, "--dsn", runner_dsn, "view", "build", "--replace")
    assert r.code == 0, r.stderr
    assert _kept(conn, roles) == before

    # what it cannot carry over (a materialized view would have to be recomputed in the
    # swap): named, nothing built
    conn.execute("CREATE MATERIALIZED VIEW eds_copy AS SELECT * FROM endpoint_daily_stats")
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "build", "--replace")
    assert r.code == 1 and "materialized view eds_copy depends on" in r.stderr, r.stderr
    assert _q(conn, "SELECT relname FROM pg_class WHERE relname LIKE '%%epstats_new%%'") == []
