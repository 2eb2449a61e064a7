"""The rollup's COMMENT is its users' (issue 13, item 1): that epstats built it, and with what
parameters, is recorded in epstats.rollup_state (the relation's oid and the parameters),
written in the transaction that builds, refreshes or swaps it. A rollup an earlier epstats
marked with its comment is still recognised, and its next refresh records it in rollup_state.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from epstats_cli import config
from epstats_cli.rollup.inspect import DESCRIPTION, comment, parameters
from tests.conftest import Server, run_cli
from tests.helpers import fill

KIND = {"materialized": "MATERIALIZED VIEW", "incremental": "TABLE"}


def _ready(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, strategy: str) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 2000)
    r = run_cli("-c", str(cfg), "--dsn", dsn, "view", "build")
    assert r.code == 0, r.stderr
    return str(cfg)


def _other(tmp_path: Path, strategy: str, extra: str) -> str:
    cfg = tmp_path / "other.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\n{extra}")
    return str(cfg)


def _comment(conn: psycopg.Connection[Any]) -> str | None:
    row = conn.execute(
        "SELECT obj_description('endpoint_daily_stats'::regclass, 'pg_class')"
    ).fetchone()
    assert row is not None
    return None if row[0] is None else str(row[0])


def _mark(conn: psycopg.Connection[Any]) -> tuple[bool, Any]:
    """(rollup_state's oid is the rollup's, its parameters)."""
    row = conn.execute(
        "SELECT relation_oid = 'endpoint_daily_stats'::regclass::oid, parameters "
        "FROM epstats.rollup_state WHERE view_name = 'public.endpoint_daily_stats'"
    ).fetchone()
    assert row is not None
    return row[0], row[1]


def _status(cfg: str, dsn: str) -> dict[str, Any]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "view", "status")
    assert r.code == 0, r.stderr
    return dict(json.loads(r.stdout))


def _cli(cfg: str, dsn: str, *args: str) -> Any:
    return run_cli("-c", cfg, "--dsn", dsn, *args)


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_the_comment_is_the_teams_and_the_mark_is_in_rollup_state(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, strategy)
    built = parameters(config.build({"view": {"strategy": strategy}}), strategy)
    assert _comment(conn) == DESCRIPTION  # a first build describes it
    assert _mark(conn) == (True, built)

    # a DBA's own comment: the rollup is still epstats's (it was "made by hand" before)
    conn.execute(f"COMMENT ON {KIND[strategy]} endpoint_daily_stats IS 'source of the API board'")
    status = _status(cfg, dsn)
    assert status["built_by_epstats"] and status["parameters"] == built
    assert status["parameters_recorded_in"] == "epstats.rollup_state"
    assert status["parameter_mismatch"] == [] and status["lacks"] == []
    r = _cli(cfg, dsn, "--format", "json", "view", "build")
    assert r.code == 0 and "already built" in r.stdout, r.stderr
    assert _cli(cfg, dsn, "view", "refresh").code == 0
    assert _comment(conn) == "source of the API board"

    # --replace carries the comment over, and the new relation is marked in the same swap
    assert _cli(cfg, dsn, "view", "build", "--replace").code == 0
    assert _comment(conn) == "source of the API board"
    assert _mark(conn) == (True, built)

    # other parameters: refused (exit 3, naming the key) until --replace, which keeps the comment
    other = _other(tmp_path, strategy, "source: {error_status_min: 400}\n")
    for args in (["view", "refresh"], ["maintain"], ["view", "verify"]):
        r = _cli(other, dsn, *args)
        assert r.code == 3, (args, r.stderr)
        assert "source.error_status_min: public.endpoint_daily_stats was built with" in r.stderr
    r = _cli(other, dsn, "--format", "json", "report", "top", "--source", "view")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["rollup_parameters"] == built  # read with what it was built with
    assert _cli(other, dsn, "view", "build", "--replace").code == 0
    assert _comment(conn) == "source of the API board"
    assert _mark(conn) == (True, {**built, "error_status_min": 400})
    assert _cli(other, dsn, "view", "refresh").code == 0

    # no comment stays no comment
    conn.execute(f"COMMENT ON {KIND[strategy]} endpoint_daily_stats IS NULL")
    assert _cli(other, dsn, "view", "build", "--replace").code == 0
    assert _comment(conn) is None
    assert _status(other, dsn)["built_by_epstats"]


def test_a_rollup_of_the_previous_epstats_is_still_ours(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "incremental")
    built = parameters(config.build({"view": {"strategy": "incremental"}}), "incremental")
    # as the previous epstats left it: the parameters in the comment, and rollup_state without
    # the columns that mark the rollup now
    conn.execute(
        "ALTER TABLE epstats.rollup_state DROP COLUMN relation_oid, DROP COLUMN parameters"
    )
    conn.execute(sql.SQL("COMMENT ON TABLE endpoint_daily_stats IS {}").format(comment(built)))

    # reading needs no upgrade
    status = _status(cfg, dsn)
    assert status["built_by_epstats"] and status["parameters"] == built
    assert status["parameters_recorded_in"] == "comment"
    r = _cli(cfg, dsn, "--format", "json", "report", "top", "--source", "view")
    assert r.code == 0 and json.loads(r.stdout)["rollup_parameters"] == built, r.stderr
    r = _cli(cfg, dsn, "check", "--only", "view_staleness")
    assert r.code == 0, r.stdout
    # changing needs `init` (it adds the columns), as for every column a version adds
    r = _cli(cfg, dsn, "view", "refresh")
    assert r.code == 1 and "epstats.rollup_state.relation_oid" in r.stderr
    assert "run `epstats init`" in r.stderr
    assert _cli(cfg, dsn, "init").code == 0

    # its row missing altogether: its comment still says it is ours
    conn.execute("DELETE FROM epstats.rollup_state")
    assert _status(cfg, dsn)["built_by_epstats"]
    other = _other(tmp_path, "incremental", "source: {timezone: Asia/Tokyo}\n")
    r = _cli(other, dsn, "view", "refresh")
    assert r.code == 3 and "source.timezone: public.endpoint_daily_stats was built" in r.stderr

    # its next refresh records the mark in rollup_state, and leaves the comment alone
    assert _cli(cfg, dsn, "view", "refresh").code == 0
    assert _mark(conn) == (True, built)
    assert _comment(conn) == comment(built)
    assert _status(cfg, dsn)["parameters_recorded_in"] == "epstats.rollup_state"
    # a replacement does not carry the old mark over as if it were the team's comment
    assert _cli(cfg, dsn, "view", "build", "--replace").code == 0
    assert _comment(conn) == DESCRIPTION
    assert _mark(conn) == (True, built)


def test_a_relation_without_our_mark_is_not_ours(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "materialized")
    # a row whose oid is not the relation's (a dump restored into another database): a
    # relation of the recorded kind with every rollup column is still ours, and the next
    # refresh records its oid
    conn.execute("UPDATE epstats.rollup_state SET relation_oid = 1")
    assert _status(cfg, dsn)["parameters_recorded_in"] == "epstats.rollup_state"
    assert _cli(cfg, dsn, "view", "refresh").code == 0
    assert _mark(conn)[0]

    # the same columns in a relation of another kind, made by hand: not ours
    conn.execute("ALTER MATERIALIZED VIEW endpoint_daily_stats RENAME TO eds_old")
    conn.execute("CREATE TABLE endpoint_daily_stats AS SELECT * FROM eds_old")
    conn.execute("DROP MATERIALIZED VIEW eds_old")
    conn.execute(f"COMMENT ON TABLE endpoint_daily_stats IS {DESCRIPTION!r}")
    status = _status(cfg, dsn)
    assert not status["built_by_epstats"] and status["parameters"] is None
    r = _cli(cfg, dsn, "view", "refresh")
    assert r.code == 1 and "was not built by epstats" in r.stderr

    # the guide's view, by hand, where the rollup was: not ours, with or without a comment
    conn.execute("DROP TABLE endpoint_daily_stats")
    conn.execute(
        "CREATE MATERIALIZED VIEW endpoint_daily_stats AS SELECT endpoint, "
        "date_trunc('day', \"timestamp\") AS day, count(*) AS request_count "
        "FROM requests GROUP BY 1, 2"
    )
    for remark in (None, "made by hand"):
        remark_sql = sql.Literal(remark) if remark else sql.SQL("NULL")
        conn.execute(
            sql.SQL("COMMENT ON MATERIALIZED VIEW endpoint_daily_stats IS {}").format(remark_sql)
        )
        status = _status(cfg, dsn)
        assert not status["built_by_epstats"] and status["parameters"] is None
        r = _cli(cfg, dsn, "view", "build")
        assert r.code == 1 and "made by hand" in r.stderr
    assert _cli(cfg, dsn, "view", "build", "--replace").code == 0
    assert _comment(conn) == "made by hand"  # carried over: it is the team's
    assert _mark(conn)[0] and _status(cfg, dsn)["built_by_epstats"]


def test_a_select_only_role_reads_the_parameters(
    server: Server, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "materialized")
    built = parameters(config.build({"view": {"strategy": "materialized"}}), "materialized")
    conn.execute("COMMENT ON MATERIALIZED VIEW endpoint_daily_stats IS 'the team''s'")
    reader = f"reader_{conn.info.dbname}"
    ident = sql.Identifier(reader)
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(ident))
    try:
        conn.execute(sql.SQL("GRANT USAGE ON SCHEMA epstats TO {}").format(ident))
        conn.execute(
            sql.SQL(
                "GRANT SELECT ON requests, endpoint_daily_stats, epstats.rollup_state TO {}"
            ).format(ident)
        )
        as_reader = psycopg.conninfo.make_conninfo(dsn, user=reader, password="pw")
        before = conn.execute("SELECT * FROM epstats.rollup_state").fetchall()
        status = _status(cfg, as_reader)
        assert status["built_by_epstats"] and status["parameters"] == built
        r = _cli(cfg, as_reader, "--format", "json", "report", "top", "--source", "view")
        assert r.code == 0, r.stderr
        assert json.loads(r.stdout)["rollup_parameters"] == built
        r = _cli(cfg, as_reader, "check", "--only", "view_staleness")
        assert r.code == 0, r.stdout
        assert conn.execute("SELECT * FROM epstats.rollup_state").fetchall() == before

        # without SELECT on epstats.rollup_state, reports still read (with the configuration's
        # parameters, and say so); whether epstats built the rollup is unknown, never "no"
        conn.execute(sql.SQL("REVOKE SELECT ON epstats.rollup_state FROM {}").format(ident))
        r = _cli(cfg, as_reader, "--format", "json", "report", "top", "--source", "view")
        assert r.code == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["rows"] and doc["rollup_parameters"] is None
        grant = f"GRANT SELECT ON epstats.rollup_state TO {reader}"
        assert any(grant in note and "configuration's" in note for note in doc["notes"]), doc
        status = _status(cfg, as_reader)
        assert status["built_by_epstats"] is None and status["lacks"] == []
        assert grant in status["parameters_unreadable"]
        # every right the command needs is named at once: reading rollup_state among them
        state = f"SELECT, INSERT, UPDATE ON epstats.rollup_state TO {reader}"
        for args, wanted in ((["view", "refresh"], state), (["view", "verify"], grant)):
            r = _cli(cfg, as_reader, *args)
            assert r.code == 1 and wanted in r.stderr and "not built" not in r.stderr, r.stderr
    finally:
        conn.execute(sql.SQL("DROP OWNED BY {} CASCADE").format(ident))
        server.execute(f'DROP ROLE IF EXISTS "{reader}"')


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_maintain_refreshes_the_rollup_epstats_built(
    strategy: str, server: Server, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """As the tables' owner `app` (not a superuser), who ran `init` and `view build`: maintain's
    refresh runs on it (it said "skipped: not built by epstats", reading only the old
    comment, while `view status` said "built by epstats yes"), and new rows appear."""
    app = f"app_{conn.info.dbname}"
    ident = sql.Identifier(app)
    conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(ident))
    try:
        conn.execute(
            sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(conn.info.dbname), ident
            )
        )
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(ident))
        as_app = psycopg.conninfo.make_conninfo(dsn, user=app, password="pw")
        cfg = tmp_path / "c.yaml"
        cfg.write_text(f"view: {{strategy: {strategy}}}\n")
        c = str(cfg)
        assert _cli(c, as_app, "init", "--with-requests-table").code == 0
        fill(conn, 2000)
        assert _cli(c, as_app, "view", "build").code == 0
        assert _status(c, as_app)["built_by_epstats"] is True
        conn.execute("INSERT INTO requests VALUES ('/fresh', now(), 1, 200)")
        args = ["--format", "json", "maintain", "--force", "refresh", "--only", "refresh"]
        dry = _cli(c, as_app, *args, "--dry-run")
        assert dry.code == 0, dry.stderr
        [planned] = json.loads(dry.stdout)["tasks"]
        assert planned["status"] == "planned" and planned["sql"], planned
        r = _cli(c, as_app, *args)
        assert r.code == 0, r.stderr
        [done] = json.loads(r.stdout)["tasks"]
        assert (done["task"], done["status"]) == ("refresh", "ok"), done
        assert conn.execute(
            "SELECT request_count FROM endpoint_daily_stats WHERE endpoint = '/fresh'"
        ).fetchall() == [(1,)]
    finally:
        conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(ident))
        conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        server.execute(f'DROP ROLE IF EXISTS "{app}"')


def test_a_rollup_in_a_database_without_epstats_says_why(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A rollup epstats built, its database without schema epstats (pg_restore of the tables
    only): not "made by hand" for want of "days in source.timezone" (its days are in
    Europe/Berlin), but: no epstats.rollup_state to tell; run `epstats init`, then rebuild."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {timezone: Europe/Berlin}\n")
    c = str(cfg)
    assert _cli(c, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 2000)
    assert _cli(c, dsn, "view", "build").code == 0
    conn.execute("DROP SCHEMA epstats CASCADE")  # as if restored without it
    for args in (["view", "build"], ["view", "refresh"], ["view", "verify"]):
        r = _cli(c, dsn, *args)
        assert r.code == 1, (args, r.stdout, r.stderr)
        assert "no epstats.rollup_state" in r.stderr and "run `epstats init`" in r.stderr, r.stderr
        assert "made by hand" not in r.stderr and "days in source.timezone" not in r.stderr
    status = _status(c, dsn)
    assert not status["built_by_epstats"]
    assert any("epstats.rollup_state" in lack for lack in status["lacks"]), status["lacks"]
    assert not any("time zone" in lack or "timezone" in lack for lack in status["lacks"])
    # as advised
    assert _cli(c, dsn, "init").code == 0
    assert _cli(c, dsn, "view", "build", "--replace").code == 0
    assert _status(c, dsn)["built_by_epstats"] is True
