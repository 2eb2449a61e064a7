"""Every right a changing command needs, checked before it runs and named all at once (issue 13,
item 11): a DBA who grants what one run names needs no second round. On real servers with
real non-superuser roles: PostgreSQL 15 (ownership) and 18 (MAINTAIN)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import Server, run_cli
from tests.helpers import catalog, fill

PASSWORD = "preflight-pw"
GRANT = re.compile(r"GRANT [^()]+? TO [a-z_0-9]+")


@dataclass
class Roles:
    owner: str  # owns the source table and the rollup (not a superuser)
    role: str  # the role the commands run as: CONNECT only, to begin with
    dsn: str  # the role's DSN
    admin: str  # the superuser's DSN


@pytest.fixture
def roles(server: Server, dsn: str, conn: psycopg.Connection[Any]) -> Iterator[Roles]:
    """Set up as a deployment is: epstats initialised, data, the rollup, owned by an
    application role; and a new role that may only connect."""
    db = conn.info.dbname
    owner, role = f"o_{db}", f"r_{db}"
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 3000)
    assert run_cli("--dsn", dsn, "view", "build").code == 0
    for name in (owner, role):
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(PASSWORD)
            )
        )
    conn.execute(f"ALTER TABLE requests OWNER TO {owner}")
    conn.execute(f"ALTER MATERIALIZED VIEW endpoint_daily_stats OWNER TO {owner}")
    try:
        yield Roles(owner, role, server.dsn_for(db, user=role, password=PASSWORD), dsn)
    finally:
        for name in (role, owner):
            conn.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
            conn.execute(f"DROP OWNED BY {name}")
        for name in (role, owner):
            server.execute(f"DROP ROLE IF EXISTS {name}")


def _named_grants(stderr: str) -> list[str]:
    """The first GRANT each line names (the one a DBA would run)."""
    grants = []
    for line in stderr.splitlines()[1:]:
        found = GRANT.search(line)
        assert found is not None, line
        grants.append(found.group())
    return grants


COMMANDS = [
    ["vacuum"],
    ["analyze"],
    ["reindex"],
    ["view", "refresh"],
    ["view", "build", "--replace"],
    ["indexes", "apply"],
    ["generate", "--rows", "100"],
    ["tune", "apply"],
    ["maintain", "--force", "cleanup,vacuum,analyze,reindex,refresh,verify"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_one_round_of_the_named_grants_is_enough(
    command: list[str], roles: Roles, conn: psycopg.Connection[Any], server: Server
) -> None:
    if command[0] == "reindex":
        conn.execute("CREATE INDEX idx_requests_status ON requests (status)")
        conn.execute(f"ALTER TABLE requests OWNER TO {roles.owner}")
    runs = conn.execute("SELECT count(*) FROM epstats.runs").fetchone()
    before = catalog(conn)

    dry = run_cli("--dsn", roles.dsn, *command, "--dry-run")
    r = run_cli("--dsn", roles.dsn, *command)
    assert r.code == 1 and dry.code == 1, (r.stdout, r.stderr)
    assert r.stdout == "" and "Traceback" not in r.stderr
    head = r.stderr.splitlines()[0]
    path = " ".join(c for c in command[:2] if not c.startswith("-"))
    assert head.startswith(f"epstats: error: `epstats {path}` ")
    assert "was not run" in head and "would fail" in dry.stderr.splitlines()[0]
    assert dry.stderr.splitlines()[1:] == r.stderr.splitlines()[1:]  # the same list
    # nothing ran, nothing was recorded
    assert catalog(conn) == before
    assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == runs

    grants = _named_grants(r.stderr)
    assert len(grants) == int(re.search(r"lacks (\d+) right", head).group(1))  # type: ignore[union-attr]
    assert f"USAGE ON SCHEMA epstats TO {roles.role}" in " ".join(grants)
    for grant in grants:
        conn.execute(grant)
    again = run_cli("--dsn", roles.dsn, "--format", "json", *command)
    assert again.code == 0, (grants, again.stdout, again.stderr)
    if command[0] != "generate":
        statuses = {t["status"] for t in json.loads(again.stdout)["tasks"]}
        assert statuses <= {"ok", "skipped"} and "ok" in statuses, again.stdout


def test_maintenance_rights_are_ownership_or_maintain(
    roles: Roles, conn: psycopg.Connection[Any], server: Server
) -> None:
    """With every grant but the right to maintain the tables, vacuum fails both tasks (recorded,
    item 2) and says what gives the right: ownership up to 16, MAINTAIN from 17."""
    role = roles.role
    conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {role}")
    conn.execute(f"GRANT SELECT, INSERT, UPDATE ON epstats.runs TO {role}")
    r = run_cli("--dsn", roles.dsn, "vacuum")
    assert r.code == 1
    lines = r.stderr.splitlines()
    assert [line.split(":")[2].strip() for line in lines] == [
        "vacuum public.requests",
        "vacuum public.endpoint_daily_stats",
    ]
    if server.version >= 17:
        assert f"GRANT MAINTAIN ON public.requests TO {role}" in lines[0]
    else:
        assert f"connect as {roles.owner}, or GRANT {roles.owner} TO {role}" in lines[0]


def test_what_the_check_cannot_foresee_still_names_the_grant(
    roles: Roles, conn: psycopg.Connection[Any], server: Server
) -> None:
    """A statement the executor runs without the check (a right revoked meanwhile, a planner
    of its own) still fails with the object and the grant actually missing: CREATE INDEX
    needs CREATE on the table's schema, which its owner may lack (PostgreSQL 15 revoked it
    from PUBLIC on schema public)."""
    from epstats_cli.config import Config
    from epstats_cli.db import session
    from epstats_cli.execute import Executor, Mode, Statement, Step

    dsn = server.dsn_for(conn.info.dbname, user=roles.owner, password=PASSWORD)
    create = sql.SQL("CREATE INDEX CONCURRENTLY idx_requests_status ON public.requests (status)")
    with session(Config(), dsn) as s:
        result = Executor(s).run(
            Step("create", "idx_requests_status", "why", [Statement(create)], Mode.CONCURRENTLY)
        )
    assert result.status == "failed"
    assert result.error == (
        "permission denied for schema public: CREATE on schema public is missing: "
        f"GRANT CREATE ON SCHEMA public TO {roles.owner}"
    )


def test_init_names_create_on_the_database_and_the_schema(
    server: Server, dsn: str, conn: psycopg.Connection[Any]
) -> None:
    role = f"i_{conn.info.dbname}"
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(PASSWORD)
        )
    )
    try:
        role_dsn = server.dsn_for(conn.info.dbname, user=role, password=PASSWORD)
        r = run_cli("--dsn", role_dsn, "init", "--with-requests-table")
        assert r.code == 1, r.stderr
        db = conn.info.dbname
        assert r.stderr.splitlines()[1:] == [
            f"epstats: error:   CREATE on database {db} (create schema epstats): "
            f"GRANT CREATE ON DATABASE {db} TO {role}",
            f"epstats: error:   CREATE on schema public (create table public.requests): "
            f"GRANT CREATE ON SCHEMA public TO {role}",
        ]
        for grant in _named_grants(r.stderr):
            conn.execute(grant)
        assert run_cli("--dsn", role_dsn, "init", "--with-requests-table").code == 0
    finally:
        conn.execute(f"DROP OWNED BY {role}")
        server.execute(f"DROP ROLE {role}")


def test_maintain_runs_what_it_may_and_fails_the_rest_with_their_rights(
    roles: Roles, conn: psycopg.Connection[Any]
) -> None:
    """Recording and reading are granted, the tables belong to another role: the tasks that
    need the owner's rights (or MAINTAIN) fail, each naming them, recorded; cleanup runs."""
    role = roles.role
    conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {role}")
    conn.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA epstats TO {role}")
    conn.execute(f"GRANT SELECT ON requests, endpoint_daily_stats TO {role}")
    force = ["--force", "cleanup,vacuum,analyze,refresh"]
    dry = run_cli("--dsn", roles.dsn, "--format", "json", "maintain", "--dry-run", *force)
    assert dry.code == 0, dry.stderr
    planned = {t["task"]: t for t in json.loads(dry.stdout)["tasks"]}
    assert "would fail" not in planned["cleanup"]["reason"]
    for task in ("vacuum", "analyze", "refresh"):
        assert "would fail: role " in planned[task]["reason"], planned[task]
    r = run_cli("--dsn", roles.dsn, "--format", "json", "maintain", *force)
    assert r.code == 1
    status = {(t["task"], t["target"]): t for t in json.loads(r.stdout)["tasks"]}
    assert status[("cleanup", "epstats.runs")]["status"] == "ok"
    refresh = status[("refresh", "public.endpoint_daily_stats")]
    assert refresh["status"] == "failed"
    assert "REFRESH MATERIALIZED VIEW" in refresh["reason"] and roles.owner in refresh["reason"]
    recorded = conn.execute(
        "SELECT task, status FROM epstats.runs WHERE target = 'public.endpoint_daily_stats' "
        "AND task IN ('vacuum', 'refresh') ORDER BY id"
    ).fetchall()
    assert ("refresh", "failed") in recorded and ("vacuum", "failed") in recorded


def test_maintain_asks_for_no_delete_while_retention_is_off(
    roles: Roles, conn: psycopg.Connection[Any]
) -> None:
    """A role that may only read is refused with every right maintain needs, but not DELETE
    on the source table: that is the retention task's, which never runs without
    source.retention."""
    role = roles.role
    conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {role}")
    conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA epstats TO {role}")
    conn.execute(f"GRANT SELECT ON requests, endpoint_daily_stats TO {role}")
    r = run_cli("--dsn", roles.dsn, "maintain")
    assert r.code == 1
    assert "INSERT" in r.stderr  # recording its run: refused
    assert "DELETE on public.requests" not in r.stderr, r.stderr
    assert "retire raw rows" not in r.stderr, r.stderr


def test_a_superusers_role_is_never_suggested_and_each_line_is_said_once(
    server: Server, dsn: str, conn: psycopg.Connection[Any], tmp_path: Any
) -> None:
    """`view build --replace` as the owner `app` of the tables in schema api, where three views
    of the rollup belong to the superuser and `app` may not create relations: the refusal says
    that a superuser must run it or give the views an owner of their own (never "GRANT
    postgres TO app"), and names the missing CREATE once, counted once. Following the advice,
    the replacement runs and keeps the views."""
    db = conn.info.dbname
    app = f"app_{db}"
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {table: api.requests}\n")
    conn.execute("CREATE SCHEMA api")
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(app), sql.Literal(PASSWORD)
        )
    )
    try:
        assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
        fill(conn, 2000, table="api.requests")
        assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
        conn.execute(f"ALTER TABLE api.requests OWNER TO {app}")
        conn.execute(f"ALTER MATERIALIZED VIEW api.endpoint_daily_stats OWNER TO {app}")
        conn.execute(f"GRANT USAGE ON SCHEMA api TO {app}")
        for n in (1, 2, 3):  # the superuser's
            conn.execute(f"CREATE VIEW api.board{n} AS SELECT * FROM api.endpoint_daily_stats")
        as_app = server.dsn_for(db, user=app, password=PASSWORD)
        args = ["-c", str(cfg), "--dsn", as_app, "view", "build", "--replace"]

        def refused(r: Any) -> list[str]:
            assert r.code == 1 and "Traceback" not in r.stderr, r.stderr
            assert "GRANT postgres" not in r.stderr and "postgres TO" not in r.stderr, r.stderr
            create = f"{app} may not create relations in schema api"
            assert r.stderr.count(create) == 1, r.stderr
            for n in (1, 2, 3):
                assert f"ALTER VIEW api.board{n} OWNER TO {app})" in r.stderr, r.stderr
            assert "a superuser must run this" in r.stderr
            return list(r.stderr.splitlines())

        # nothing granted on schema epstats: the pre-check lists every line, each once
        lines = refused(run_cli(*args))
        head = re.search(r"lacks (\d+) right", lines[0])
        assert head is not None and int(head.group(1)) == len(lines) - 1, lines
        assert len(set(lines)) == len(lines), lines
        # epstats's own rights granted: the build refuses alone, in one line, each part once
        conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {app}")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA epstats TO {app}"
        )
        [line] = refused(run_cli(*args))
        parts = line.split("; ")
        assert len(set(parts)) == len(parts), line
        # as advised: the views get an owner of their own, app may create in api
        for n in (1, 2, 3):
            conn.execute(f"ALTER VIEW api.board{n} OWNER TO {app}")
        conn.execute(f"GRANT CREATE ON SCHEMA api TO {app}")
        r = run_cli(*args)
        assert r.code == 0, r.stderr
        owners = conn.execute(
            "SELECT viewowner FROM pg_views WHERE schemaname = 'api' ORDER BY viewname"
        ).fetchall()
        assert owners == [(app,)] * 3
    finally:
        conn.execute(f"REASSIGN OWNED BY {app} TO CURRENT_USER")
        conn.execute(f"DROP OWNED BY {app}")
        server.execute(f"DROP ROLE IF EXISTS {app}")
