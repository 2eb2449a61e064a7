"""init, status and the SQL loader against real servers."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import queries
from tests.conftest import Server, run_cli

ROOT = Path(__file__).resolve().parent.parent

SNAPSHOT = """
SELECT n.nspname, c.relname, c.relkind
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY 1, 2
"""


def snapshot(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(SNAPSHOT).fetchall()


def test_init_is_idempotent(dsn: str, conn: psycopg.Connection[Any]) -> None:
    before = snapshot(conn)
    r = run_cli("--dsn", dsn, "init", "--with-requests-table", "--dry-run")
    assert r.code == 0, r.stderr
    assert "CREATE TABLE IF NOT EXISTS" in r.stdout
    assert snapshot(conn) == before

    r = run_cli("--dsn", dsn, "--format", "json", "init", "--with-requests-table")
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert {o["action"] for o in doc["objects"]} <= {"created", "exists"}
    after_first = snapshot(conn)
    assert ("public", "requests", "r") in after_first
    assert ("epstats", "runs", "r") in after_first
    cols = conn.execute(
        "SELECT attname, format_type(atttypid, atttypmod), attnotnull FROM pg_attribute "
        "WHERE attrelid = 'public.requests'::regclass AND attnum > 0 ORDER BY attnum"
    ).fetchall()
    assert cols == [
        ("endpoint", "text", True),
        ("timestamp", "timestamp with time zone", True),
        ("response_time", "double precision", False),
        ("status", "integer", False),
    ]

    xmin_before = conn.execute("SELECT max(xmin::text::bigint) FROM pg_class").fetchone()
    r = run_cli("--dsn", dsn, "--format", "json", "init", "--with-requests-table")
    assert r.code == 0
    assert {o["action"] for o in json.loads(r.stdout)["objects"]} == {"exists"}
    assert snapshot(conn) == after_first
    assert conn.execute("SELECT max(xmin::text::bigint) FROM pg_class").fetchone() == xmin_before


def test_init_with_quoted_names(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        'source:\n  table: \'"Api Logs"."Requests"\'\n'
        '  columns: {timestamp: Timestamp, endpoint: "end point"}\n'
    )
    r = run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table")
    assert r.code == 0, r.stderr
    cols = conn.execute(
        'SELECT attname FROM pg_attribute WHERE attrelid = \'"Api Logs"."Requests"\'::regclass '
        "AND attnum > 0 ORDER BY attnum"
    ).fetchall()
    assert [c[0] for c in cols] == ["end point", "Timestamp", "response_time", "status"]
    r = run_cli("-c", str(cfg), "--dsn", dsn, "--format", "json", "status")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["table"]["present"] is True


def test_status_with_read_only_role(
    server: Server, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    conn.execute(
        "INSERT INTO requests SELECT 'e' || (g % 7), now() - g * interval '1 minute', g, 200 "
        "FROM generate_series(1, 5000) g"
    )
    conn.execute("ANALYZE requests")
    conn.execute("DROP ROLE IF EXISTS epstats_ro")
    conn.execute("CREATE ROLE epstats_ro LOGIN PASSWORD 'ro-pw' IN ROLE pg_read_all_stats")
    dbname = conn.info.dbname
    conn.execute("GRANT SELECT ON ALL TABLES IN SCHEMA public, epstats TO epstats_ro")
    conn.execute("GRANT USAGE ON SCHEMA epstats TO epstats_ro")
    conn.execute("ALTER ROLE epstats_ro SET default_transaction_read_only = on")
    try:
        ro = server.dsn_for(dbname, user="epstats_ro", password="ro-pw")
        r = run_cli("--dsn", ro, "--format", "json", "status")
        assert r.code == 0, r.stderr
        doc = json.loads(r.stdout)
        assert doc["table"]["estimated_rows"] == 5000
        assert doc["server"]["in_recovery"] is False
        r = run_cli("--dsn", ro, "status")
        assert r.code == 0 and "estimated rows" in r.stdout and "5,000" in r.stdout
        # changing commands refuse before doing anything, even with nothing to do
        cfg = tmp_path / "c.yaml"
        cfg.write_text("source: {table: other_requests}\n")
        for args in (["init"], ["-c", str(cfg), "init", "--with-requests-table"], ["maintain"]):
            r = run_cli("--dsn", ro, *args)
            assert r.code == 1, r.stderr
            assert "read-only by default" in r.stderr
            assert "default_transaction_read_only = on" in r.stderr
            assert r.stderr.count("\n") == 1
    finally:
        conn.execute(f"REVOKE ALL ON DATABASE {dbname} FROM epstats_ro")
        conn.execute("DROP OWNED BY epstats_ro")
        conn.execute("DROP ROLE epstats_ro")


def test_status_without_table(dsn: str) -> None:
    r = run_cli("--dsn", dsn, "status")
    assert r.code == 0
    assert "does not exist" in r.stdout and "epstats init --with-requests-table" in r.stdout


def test_every_sql_file_is_valid_on_this_server(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """PREPARE every statement (DDL is run inside a rolled-back transaction) with default names."""
    from epstats_cli.config import Config
    from epstats_cli.db import connect

    r = run_cli("--dsn", dsn, "init", "--with-requests-table")
    assert r.code == 0
    assert run_cli("--dsn", dsn, "view", "build").code == 0
    session = connect(Config(), dsn)
    version = session.server.version_num
    try:
        from tests.sql_fixtures import check_statement

        for name in [n for n in queries.all_names() if not n.startswith("fragments/")]:
            check_statement(session, name, version)
    finally:
        session.conn.close()


def test_loader_picks_version_variants(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "g").mkdir()
    (tmp_path / "g" / "q.sql").write_text("SELECT 1")
    (tmp_path / "g" / "q_post_160000.sql").write_text("SELECT 16")
    (tmp_path / "g" / "q_post_180000.sql").write_text("SELECT 18")
    monkeypatch.setattr(queries, "sql_dir", lambda: tmp_path)
    queries._variants.cache_clear()
    try:
        assert queries.path_for("g/q", 150000).name == "q.sql"
        assert queries.path_for("g/q", 160004).name == "q_post_160000.sql"
        assert queries.path_for("g/q", 180001).name == "q_post_180000.sql"
    finally:
        queries._variants.cache_clear()


def test_wheel_ships_the_sql_files(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 0, r.stderr
    wheel = next(tmp_path.glob("epstats_cli-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for path in (ROOT / "sql").rglob("*.sql"):
        assert f"epstats_cli/sql/{path.relative_to(ROOT / 'sql').as_posix()}" in names


def test_init_upgrades_older_epstats_tables(dsn: str, conn: psycopg.Connection[Any]) -> None:
    conn.execute("CREATE SCHEMA epstats")
    conn.execute(
        "CREATE TABLE epstats.rollup_state (view_name text PRIMARY KEY, strategy text NOT NULL, "
        "timezone text NOT NULL, lookback interval NOT NULL, refreshed_at timestamptz, "
        "refresh_seconds double precision)"
    )
    conn.execute("INSERT INTO epstats.rollup_state VALUES ('v', 'incremental', 'UTC', '2 days')")
    conn.execute(
        "CREATE TABLE requests (endpoint text, timestamp timestamptz, "
        "response_time float8, status int)"
    )
    conn.execute("CREATE TABLE epstats.runs (id int)")  # maintain gets as far as the check
    r = run_cli("--dsn", dsn, "view", "build")
    assert r.code == 1 and "run `epstats init` to upgrade it" in r.stderr
    r = run_cli("--dsn", dsn, "maintain")
    assert r.code == 1 and "run `epstats init` to upgrade it" in r.stderr
    conn.execute("DROP TABLE epstats.runs")
    r = run_cli("--dsn", dsn, "--format", "json", "init")
    assert r.code == 0, r.stderr
    actions = {o["object"]: o["action"] for o in json.loads(r.stdout)["objects"]}
    assert actions["column epstats.rollup_state.watermark"] == "created"
    assert actions["column epstats.rollup_state.settled_through"] == "created"
    assert conn.execute("SELECT view_name, watermark FROM epstats.rollup_state").fetchall() == [
        ("v", None)
    ]
    r = run_cli("--dsn", dsn, "--format", "json", "init")
    assert {o["action"] for o in json.loads(r.stdout)["objects"]} == {"exists"}
