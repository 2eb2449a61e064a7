"""ANALYZE due when the data changed: `maintain` counts n_mod_since_analyze against the rows
of the source table and of the rollup (maintenance.analyze_modified_ratio), on real servers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.helpers import fill

pytestmark = pytest.mark.one_version  # heavy: the first server version only


def _flushed(conn: psycopg.Connection[Any]) -> None:
    """This backend's table counters, sent now (PostgreSQL 15+ flushes them at most once a
    second, as the backend goes idle): what maintain reads is then what the test did."""
    conn.execute("SELECT pg_stat_force_next_flush()")


def _analyze_decision(cfg: str, dsn: str) -> dict[str, Any]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "maintain", "--dry-run",
                "--only", "analyze")  # fmt: skip
    assert r.code == 0, r.stderr
    tasks = json.loads(r.stdout)["tasks"]
    return {"due": tasks[0]["status"] != "skipped", "reason": tasks[0]["reason"], "tasks": tasks}


def test_analyze_becomes_due_after_a_tenth_of_the_table_changes(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("view: {strategy: incremental}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 10_000)
    _flushed(conn)
    assert run_cli("-c", c, "--dsn", dsn, "analyze").code == 0
    first = _analyze_decision(c, dsn)
    assert not first["due"], first
    assert first["reason"].startswith("not due: next due in")
    fill(conn, 999)
    _flushed(conn)
    assert not _analyze_decision(c, dsn)["due"]
    fill(conn, 1)
    _flushed(conn)
    due = _analyze_decision(c, dsn)
    assert due["due"], due
    assert due["reason"].startswith(
        "due: public.requests: 1,000 rows changed since its last analyze (10.0% of its "
        "10,000 rows), past analyze_modified_ratio 10%"
    )
    # a real run analyzes, and then nothing is due
    r = run_cli("-c", c, "--dsn", dsn, "--format", "json", "maintain", "--only", "analyze")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["tasks"][0]["status"] == "ok"
    assert not _analyze_decision(c, dsn)["due"]

    # a truncate and reload: reltuples is unknown again, the reloaded rows count
    conn.execute("TRUNCATE requests")
    fill(conn, 3_000)
    _flushed(conn)
    due = _analyze_decision(c, dsn)
    assert due["due"] and "public.requests: 3,000 rows changed" in due["reason"], due


def test_the_rollup_after_a_backfill(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("view: {strategy: incremental}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20_000)
    _flushed(conn)
    assert run_cli("-c", c, "--dsn", dsn, "view", "build").code == 0
    assert run_cli("-c", c, "--dsn", dsn, "analyze").code == 0
    assert not _analyze_decision(c, dsn)["due"]
    since = conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    first = conn.execute("SELECT min(day) FROM endpoint_daily_stats").fetchone()
    assert first is not None
    r = run_cli("-c", c, "--dsn", dsn, "view", "refresh", "--since", f"{first[0]:%Y-%m-%d}")
    assert r.code == 0, r.stderr
    due = _analyze_decision(c, dsn)
    assert due["due"], due
    assert due["reason"].startswith("due: public.endpoint_daily_stats: ")
    assert "public.requests:" not in due["reason"]
    # only the rollup passed the ratio: only it is analyzed, with its own reason
    assert [t["target"] for t in due["tasks"]] == ["public.endpoint_daily_stats"]
    r = run_cli("-c", c, "--dsn", dsn, "--format", "json", "maintain", "--only", "analyze")
    assert r.code == 0, r.stderr
    done = json.loads(r.stdout)["tasks"]
    assert [(t["target"], t["status"]) for t in done] == [("public.endpoint_daily_stats", "ok")]
    assert done[0]["reason"].startswith("public.endpoint_daily_stats: ")
    runs = conn.execute(
        "SELECT target FROM epstats.runs WHERE task = 'analyze' AND started_at > %s", (since,)
    ).fetchall()
    assert runs == [("public.endpoint_daily_stats",)]  # the table's schedule is left as it was
    assert not _analyze_decision(c, dsn)["due"]
