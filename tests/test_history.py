"""History that counts (issue 13, item 10): every changing command records its run in
epstats.runs, one-off runs count toward maintain's schedule, and within a run no two rows
overlap in time (a task's own row spans exactly the rows of its steps)."""

from __future__ import annotations

import datetime as dt
import itertools
import json
from pathlib import Path
from typing import Any

import psycopg

from epstats_cli import history
from epstats_cli.health import facts
from tests.conftest import run_cli

SUMMARY_TARGETS = ("indices of ", "leftovers of ")


def _rows(conn: psycopg.Connection[Any]) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(
        "SELECT id, task, target, status, started_at, finished_at FROM epstats.runs ORDER BY id"
    ).fetchall()


def _no_overlap(rows: list[dict[str, Any]]) -> None:
    """Step rows follow one another; a task's own row contains the rows of its steps."""
    steps = sorted(
        (r for r in rows if not r["target"].startswith(SUMMARY_TARGETS)),
        key=lambda r: r["started_at"],
    )
    for a, b in itertools.pairwise(steps):
        assert a["started_at"] <= a["finished_at"] <= b["started_at"], (a, b)
    for task_row in (r for r in rows if r["target"].startswith(SUMMARY_TARGETS)):
        mine = [
            r
            for r in steps
            if r["task"] == task_row["task"]
            and r["id"] > task_row["id"]
            and r["started_at"] <= task_row["finished_at"]
        ]
        for r in mine:
            assert task_row["started_at"] <= r["started_at"], (task_row, r)
            assert r["finished_at"] <= task_row["finished_at"], (task_row, r)


def _maintain(cfg: str, dsn: str, *args: str) -> dict[str, dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "maintain", *args)
    assert r.code == 0, r.stderr
    tasks = json.loads(r.stdout)["tasks"]
    return {t["task"]: t for t in tasks if not t["target"].startswith("public.idx")}


def test_every_changing_command_is_recorded_and_counts(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = str(tmp_path / "c.yaml")
    Path(cfg).write_text("view: {strategy: incremental}\n")
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0

    def ran(*args: str) -> list[tuple[str, str, str]]:
        """Run a command; the (task, target, status) rows it added."""
        before = len(_rows(conn))
        r = run_cli("-c", cfg, "--dsn", dsn, *args)
        assert r.code == 0, r.stderr
        return [(x["task"], x["target"], x["status"]) for x in _rows(conn)[before:]]

    assert ran("generate", "--rows", "20000", "--days", "3") == [
        ("generate", "public.requests", "ok")
    ]

    assert ran("indexes", "apply") == [
        ("create", "idx_requests_timestamp", "ok"),
        ("create", "idx_requests_endpoint_timestamp", "ok"),
    ]
    assert ran("view", "build") == [("build", "public.endpoint_daily_stats", "ok")]
    assert ran("view", "refresh") == [("refresh", "public.endpoint_daily_stats", "ok")]
    assert ran("view", "build", "--replace") == [
        ("build", "public.endpoint_daily_stats", "ok"),
        ("swap", "public.endpoint_daily_stats", "ok"),
    ]
    assert ran("vacuum") == [
        ("vacuum", "public.requests", "ok"),
        ("vacuum", "public.endpoint_daily_stats", "ok"),
    ]
    assert ran("analyze") == [
        ("analyze", "public.requests", "ok"),
        ("analyze", "public.endpoint_daily_stats", "ok"),
    ]
    reindexed = ran("reindex")
    assert reindexed[0] == ("reindex", "indices of public.requests", "ok")  # opened first
    assert len(reindexed) == 5 and {s for _t, _x, s in reindexed} == {"ok"}
    assert ran("view", "refresh", "--dry-run") == []
    _no_overlap(_rows(conn))

    # the one-off runs count: nothing but cleanup (never run) is due
    by_task = _maintain(cfg, dsn)
    for task in ("vacuum", "analyze", "reindex", "refresh"):
        assert by_task[task]["status"] == "skipped", by_task[task]
        assert by_task[task]["reason"].startswith("not due: next due in "), by_task[task]
    assert by_task["cleanup"]["status"] == "ok"
    # and a forced run of everything: still no two rows of it overlap
    before = len(_rows(conn))
    _maintain(cfg, dsn, "--force", "cleanup,vacuum,analyze,reindex,refresh")
    _no_overlap(_rows(conn)[before:])


# --- the kind of a failure, recorded rather than read from its words -------------------------


def test_the_kind_of_a_task_failure_comes_from_its_steps() -> None:
    assert history.failure_of([history.LOCK_BUSY, history.LOCK_BUSY]) == history.LOCK_BUSY
    assert history.failure_of([history.LOCK_BUSY, history.ERROR]) == history.ERROR
    assert history.failure_of([history.LOCK_BUSY, None]) == history.ERROR  # not told: not busy
    assert history.failure_of([history.ERROR, history.LEFT_BEHIND]) == history.LEFT_BEHIND
    at = dt.datetime(2025, 1, 1, tzinfo=dt.timezone.utc)
    quoted = "lock not granted within 5s: blocked by pid 1 (…: SELECT 1; SELECT 2)"
    assert facts.finished_run(False, at, quoted, history.LOCK_BUSY).lock_busy
    assert not facts.finished_run(False, at, "lock not granted", history.ERROR).lock_busy
    assert facts.finished_run(False, at, "x", history.LEFT_BEHIND).left_behind
    # recorded before the kind was: its words, as before
    assert facts.finished_run(False, at, "lock not granted within 5s", None).lock_busy
    assert not facts.finished_run(False, at, "lock not granted; division by zero", None).lock_busy


def test_an_older_runs_table_is_upgraded_by_init_and_read_meanwhile(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = str(tmp_path / "c.yaml")
    Path(cfg).write_text(
        "view: {strategy: incremental}\ndatabase: {lock_timeout: 100ms}\n"
        "maintenance: {lock_retries: 0}\n"
    )
    assert run_cli("-c", cfg, "--dsn", dsn, "init", "--with-requests-table").code == 0
    assert run_cli("-c", cfg, "--dsn", dsn, "indexes", "apply").code == 0
    conn.execute("ALTER TABLE epstats.runs DROP COLUMN failure")  # as this version found it
    with psycopg.connect(dsn) as holder:  # a busy lock: one-off commands still record it
        holder.execute("LOCK TABLE requests IN SHARE MODE")
        r = run_cli("-c", cfg, "--dsn", dsn, "vacuum")
        holder.rollback()
    assert r.code == 1 and "lock not available" in r.stderr, r.stderr
    statuses = conn.execute("SELECT status FROM epstats.runs WHERE task = 'vacuum'").fetchall()
    assert ("failed",) in statuses
    # `check` judges it by its words meanwhile; maintain wants the upgrade
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "check", "--only", "maintain_failed")
    assert json.loads(r.stdout)["checks"][0]["state"] == "WARNING", r.stdout
    r = run_cli("-c", cfg, "--dsn", dsn, "maintain")
    assert r.code == 1 and "missing column epstats.runs.failure" in r.stderr, r.stderr
    r = run_cli("-c", cfg, "--dsn", dsn, "init")
    assert r.code == 0 and "epstats.runs.failure" in r.stdout, r.stdout
    assert run_cli("-c", cfg, "--dsn", dsn, "maintain").code == 0
