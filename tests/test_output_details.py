"""Small things a person reads every day (issue 14): units, SQL printed as it runs, what `indexes
plan` says `apply` would run, and what `--dry-run` says when there is nothing to run. A real
server."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli.sqltext import as_text
from tests.conftest import run_cli
from tests.helpers import fill


def _ready(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, strategy: str) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    return str(cfg)


def test_plan_shows_only_what_plain_apply_runs(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "materialized")
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    conn.execute("CREATE INDEX idx_requests_endpoint ON requests (endpoint)")  # the guide's
    r = run_cli("-c", cfg, "--dsn", dsn, "indexes", "plan", "--format", "json")
    assert r.code == 0, r.stderr
    plan = json.loads(r.stdout)
    assert plan["steps"] == []  # plain apply never prunes
    assert [x["name"] for x in plan["redundant"]] == ["idx_requests_endpoint"]
    r = run_cli("-c", cfg, "--dsn", dsn, "indexes", "plan")
    assert "dropped by: epstats indexes apply --prune-redundant (not by plain apply)" in r.stdout
    assert "What apply would run" in r.stdout and "drop_redundant" not in r.stdout
    r = run_cli("-c", cfg, "--dsn", dsn, "indexes", "plan", "--prune-redundant", "--format", "json")
    steps = json.loads(r.stdout)["steps"]
    assert [(s["action"], s["target"]) for s in steps] == [
        ("drop_redundant", "idx_requests_endpoint")
    ]
    # and that is what apply --prune-redundant runs
    r = run_cli(
        "-c", cfg, "--dsn", dsn, "indexes", "apply", "--prune-redundant", "--format", "json"
    )
    assert [(t["task"], t["sql"]) for t in json.loads(r.stdout)["tasks"]] == [
        (s["action"], s["sql"]) for s in steps
    ]


def test_a_dry_run_with_nothing_to_do_says_so(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "materialized")
    r = run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply", "--dry-run")
    assert "dry run: nothing was changed; the SQL follows" in r.stdout
    assert "CREATE INDEX CONCURRENTLY" in r.stdout.split("the SQL follows", 1)[1]
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    r = run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply", "--dry-run")
    assert r.code == 0, r.stderr
    assert "dry run: nothing was changed; nothing to do" in r.stdout
    assert "SQL follows" not in r.stdout


def test_view_status_gives_the_refresh_time_its_unit(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "incremental")
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "refresh").code == 0
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "status")
    [line] = [ln for ln in r.stdout.splitlines() if "last refresh took" in ln]
    value = line.split("last refresh took", 1)[1].strip()
    assert value.endswith(" s") and float(value[:-2]) >= 0, line
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "status", "--format", "json")
    assert isinstance(json.loads(r.stdout)["refresh_seconds"], float)  # a number for machines


def test_printed_sql_casts_each_value_once(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _ready(dsn, conn, tmp_path, "incremental")
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--dry-run")
    assert r.code == 0, r.stderr
    assert "now() - '90 days 0:00:00'::interval;" in r.stdout  # history_retention
    since = (dt.date.today() - dt.timedelta(days=3)).isoformat()
    r = run_cli("-c", cfg, "--dsn", dsn, "view", "refresh", "--since", since, "--dry-run")
    assert r.code == 0, r.stderr
    assert f"'{since}'::date::timestamp" in r.stdout
    for out in (r.stdout, run_cli("-c", cfg, "--dsn", dsn, "maintain", "--dry-run").stdout):
        for kind in ("interval", "date", "timestamptz", "timestamp"):
            assert f"::{kind}::{kind}" not in out


def test_as_text_binds_a_value_the_sql_casts_without_a_second_cast(
    conn: psycopg.Connection[Any],
) -> None:
    query = sql.SQL(
        "SELECT %(d)s::date, %(d)s, %(i)s::interval, 'x%%(i)s::interval', %(s)s::text, %(n)s::date"
    )
    params = {"d": dt.date(2026, 3, 1), "i": dt.timedelta(hours=2), "s": "50% o'clock", "n": None}
    text = as_text(conn, query, params)
    assert text == (
        "SELECT '2026-03-01'::date, '2026-03-01'::date, '2:00:00'::interval, "
        "'x%(i)s::interval', '50% o''clock'::text, NULL::date"
    )
    # the text is the statement the server runs
    got = conn.execute(text).fetchone()
    assert got == conn.execute(query, params).fetchone()
