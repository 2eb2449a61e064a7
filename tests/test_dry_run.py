"""--dry-run equals execution: for every changing command, the statements a dry run plans are
the statements a real run sends, in order, parameters rendered. Statements that run only on a
repair or a failure are marked as such in the plan and compared when they happen."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from epstats_cli import indexes, maintain, maintenance, rollup, schema, synth
from epstats_cli.config import Config
from epstats_cli.db import Session, connect
from epstats_cli.execute import Executor
from epstats_cli.history import TaskResult
from tests.helpers import catalog, fill, invalid_indexes

REPAIR = "-- only if a try fails and leaves the index invalid: "
ON_FAILURE = "-- only if the step fails: "


@pytest.fixture
def session(dsn: str) -> Iterator[Session]:
    s = connect(Config(), dsn)
    try:
        yield s
    finally:
        s.conn.close()


def _planned(results: list[TaskResult]) -> dict[str, list[str]]:
    """A dry run's statements by when they run: `run` (the plan), `repair`, `on_failure`."""
    out: dict[str, list[str]] = {"run": [], "repair": [], "on_failure": []}
    for r in results:
        assert r.status in ("planned", "skipped"), r
        if r.status == "skipped":
            continue  # planned, but a real run sends nothing for it either
        assert r.sql is not None
        for text in r.sql.split(";\n"):
            if text.startswith(REPAIR):
                out["repair"].append(text.removeprefix(REPAIR))
            elif text.startswith(ON_FAILURE):
                out["on_failure"].append(text.removeprefix(ON_FAILURE))
            else:
                out["run"].append(text)
    return out


def _sent(ex: Executor, kind: str) -> list[str]:
    return [e.text for e in ex.log if e.kind == kind]


def _same(dry: Executor, real: Executor) -> dict[str, list[str]]:
    """Assert that the real run sent exactly what the dry run planned; the plan."""
    assert dry.log == [], "a dry run sent a statement"
    plan = _planned(dry.results)
    assert plan["run"], "nothing was planned: the comparison would prove nothing"
    assert _sent(real, "run") == plan["run"]
    assert set(_sent(real, "retry")) <= set(plan["run"])
    for kind in ("repair", "on_failure"):
        for text in _sent(real, kind):
            assert text in plan[kind], f"{kind} not shown by the dry run: {text}"
    return plan


def _ready(session: Session, conn: psycopg.Connection[Any], rows: int = 20000) -> None:
    schema.init(session, True, Executor(session))
    fill(conn, rows)


def test_init(session: Session, conn: psycopg.Connection[Any]) -> None:
    before = catalog(conn)
    dry = Executor(session, dry_run=True)
    schema.init(session, True, dry)
    assert catalog(conn) == before
    real = Executor(session)
    schema.init(session, True, real)
    plan = _same(dry, real)
    assert plan["run"][0] == "BEGIN" and plan["run"][-1] == "COMMIT"
    assert any('CREATE TABLE IF NOT EXISTS "public"."requests"' in t for t in plan["run"])


@pytest.mark.parametrize("concurrently", [True, False], ids=["concurrently", "blocking"])
def test_indexes_apply_with_prune(
    session: Session, conn: psycopg.Connection[Any], concurrently: bool
) -> None:
    _ready(session, conn)
    conn.execute("CREATE INDEX idx_requests_endpoint ON requests (endpoint)")
    dry = Executor(session, dry_run=True)
    indexes.apply(session, dry, concurrently=concurrently, prune_redundant=True)
    real = Executor(session)
    _plan, results = indexes.apply(session, real, concurrently=concurrently, prune_redundant=True)
    assert [r.status for r in results] == ["ok", "ok", "ok"]
    plan = _same(dry, real)
    word = " CONCURRENTLY" if concurrently else ""
    assert [t.split(" ON ")[0] for t in plan["run"]] == [
        f'CREATE INDEX{word} "idx_requests_timestamp"',
        f'CREATE INDEX{word} "idx_requests_endpoint_timestamp"',
        f'DROP INDEX{word} IF EXISTS "public"."idx_requests_endpoint"',
    ]
    assert plan["repair"] == [
        'DROP INDEX CONCURRENTLY IF EXISTS "public"."idx_requests_timestamp"',
        'DROP INDEX CONCURRENTLY IF EXISTS "public"."idx_requests_endpoint_timestamp"',
    ]


def _cancel_first_build(dsn: str, pid: int) -> threading.Thread:
    """Cancel backend `pid`'s first index build once it is filling the index."""

    def watch() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                row = c.execute(
                    "SELECT pg_cancel_backend(pid) FROM pg_stat_progress_create_index "
                    "WHERE pid = %s AND phase LIKE 'building index%%'",
                    (pid,),
                ).fetchone()
                if row:
                    return
                time.sleep(0.01)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_indexes_apply_repairs_a_cancelled_build(
    dsn: str, session: Session, conn: psycopg.Connection[Any]
) -> None:
    _ready(session, conn, rows=600_000)
    dry = Executor(session, dry_run=True)
    indexes.apply(session, dry)
    session.conn.execute("SET maintenance_work_mem = '1MB'")  # a build slow enough to catch
    real = Executor(session)
    watcher = _cancel_first_build(dsn, session.pid)
    _plan, results = indexes.apply(session, real)
    watcher.join()
    assert [(r.target, r.status) for r in results] == [
        ("idx_requests_timestamp", "failed"),
        ("idx_requests_endpoint_timestamp", "ok"),
    ]
    assert "canceling statement" in results[0].reason
    plan = _same(dry, real)
    # the cancelled build left its index invalid; the repair the plan showed dropped it
    assert _sent(real, "repair") == [plan["repair"][0]]
    assert [e.kind for e in real.log] == ["run", "repair", "run"]
    assert invalid_indexes(conn) == []


def test_vacuum_analyze_reindex(session: Session, conn: psycopg.Connection[Any]) -> None:
    _ready(session, conn)
    indexes.apply(session, Executor(session))
    rollup.build(session)
    planners: list[Any] = [
        lambda: maintenance.plan_vacuum(session, True, False),
        lambda: maintenance.plan_vacuum(session, False, True),
        lambda: maintenance.plan_analyze(session),
        lambda: maintenance.plan_reindex(session),
        lambda: maintenance.plan_reindex(session, "idx_requests_timestamp"),
    ]
    for plan_steps in planners:
        dry = Executor(session, dry_run=True)
        dry.run_all(plan_steps())
        real = Executor(session, record=True)
        assert {r.status for r in real.run_all(plan_steps())} == {"ok"}
        plan = _same(dry, real)
        assert len(plan["run"]) == len(dry.results)  # one statement a step


def test_maintain_forced(session: Session, conn: psycopg.Connection[Any]) -> None:
    _ready(session, conn)
    indexes.apply(session, Executor(session))
    rollup.build(session)
    # an invalid leftover for cleanup to drop
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute("CREATE UNIQUE INDEX CONCURRENTLY broken ON requests (endpoint)")
    tasks = {"cleanup", "vacuum", "analyze", "reindex"}
    opts = maintain.MaintainOptions(only=tasks, force=tasks)
    dry = Executor(session, dry_run=True, record=True)
    report = maintain.maintain(session, opts, dry)
    assert all(r.reason.startswith("due: forced") for r in report.results)
    real = Executor(session, record=True)
    report = maintain.maintain(session, opts, real)
    assert not report.failed
    plan = _same(dry, real)
    assert any(
        t.startswith('DROP INDEX CONCURRENTLY IF EXISTS "public"."broken"') for t in plan["run"]
    )
    assert any(t.startswith("DELETE FROM epstats.runs") for t in plan["run"])
    assert any(t.startswith("ANALYZE (SKIP_LOCKED)") for t in plan["run"])
    assert sum(t.startswith("REINDEX INDEX CONCURRENTLY") for t in plan["run"]) == 4


def test_generate(session: Session, conn: psycopg.Connection[Any]) -> None:
    until = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    opts = synth.GenerateOptions(5000, 3, until=until, truncate=True, create_table=True)
    dry = Executor(session, dry_run=True)
    planned = synth.generate(session, opts, dry)
    assert conn.execute("SELECT to_regclass('requests')").fetchone() == (None,)
    real = Executor(session)
    batches: list[int] = []
    done = synth.generate(session, opts, real, lambda n, _total: batches.append(n))
    plan = _same(dry, real)
    assert plan["run"] == ["BEGIN", *planned.sql, "COMMIT"] and done.sql == planned.sql
    assert done.rows == 5000 and batches == [5000]
    assert conn.execute("SELECT count(*) FROM requests").fetchone() == (5000,)


def test_a_step_that_is_skipped_sends_nothing(session: Session) -> None:
    """The comparison excludes skipped steps; so must the executor."""
    _ready(session, session.conn, rows=10)
    step = maintenance.plan_analyze(session)[0]
    skipped = replace(step, skip="not now")
    real = Executor(session)
    assert real.run(skipped).status == "skipped" and real.log == []


@pytest.mark.parametrize("strategy", ["incremental", "materialized"])
def test_maintain_verify(dsn: str, conn: psycopg.Connection[Any], strategy: str) -> None:
    """verify compares before it repairs: its dry run shows the comparison and the repair of a
    day that differs, each for the first day it checks. Rows late on that very day make the
    real run send exactly that repair, and record exactly that comparison."""
    config = replace(Config(), view=replace(Config().view, strategy=strategy))
    s = connect(config, dsn)
    try:
        _ready(s, conn, rows=100_000)  # 29 days
        rollup.build(s)
        conn.execute(
            "INSERT INTO requests SELECT '/late', now() - interval '35 days' + g * interval '1s', "
            "g, 200 FROM generate_series(1, 50) g"
        )
        before = conn.execute("SELECT * FROM endpoint_daily_stats ORDER BY 1, 2").fetchall()
        opts = maintain.MaintainOptions(only={"verify"}, force={"verify"})
        dry = Executor(s, dry_run=True, record=True)
        compare, repair = maintain.maintain(s, opts, dry).results
        assert dry.log == [] and (compare.status, repair.status) == ("planned", "planned")
        assert conn.execute("SELECT * FROM endpoint_daily_stats ORDER BY 1, 2").fetchall() == before
        assert conn.execute(
            "SELECT count(*) FROM epstats.runs WHERE task = 'verify'"
        ).fetchone() == (0,)
        real = Executor(s, record=True)
        *repairs, summary = maintain.maintain(s, opts, real).results
        assert [r.status for r in repairs] == ["ok"] and summary.status == "ok"
        assert "(+50 rows)" in summary.reason
        assert repair.sql is not None and compare.sql is not None and summary.sql is not None
        assert [e.text for e in real.log if e.kind == "run"] == repair.sql.split(";\n")
        assert summary.sql.split("\n", 1)[1] == compare.sql  # after "-- day by day; shown for"
    finally:
        s.conn.close()


@pytest.mark.parametrize("strategy", ["incremental", "materialized"])
def test_view_build_replace_with_what_it_keeps(
    dsn: str, conn: psycopg.Connection[Any], strategy: str
) -> None:
    """`view build --replace` of a rollup with settings, policies, triggers, rules,
    constraints and statistics to keep: the dry run shows every statement that carries them
    over, and the real run sends exactly those."""
    config = replace(Config(), view=replace(Config().view, strategy=strategy))
    s = connect(config, dsn)
    try:
        _ready(s, conn, rows=3000)
        rollup.build(s)
        kind = "MATERIALIZED VIEW" if strategy == "materialized" else "TABLE"
        conn.execute(
            f"ALTER {kind} endpoint_daily_stats SET (autovacuum_vacuum_scale_factor = 0.01)"
        )
        conn.execute(f"ALTER {kind} endpoint_daily_stats ALTER COLUMN endpoint SET STATISTICS 1000")
        conn.execute(f"ALTER {kind} endpoint_daily_stats ALTER COLUMN endpoint SET STORAGE MAIN")
        conn.execute("COMMENT ON INDEX endpoint_daily_stats_day_idx IS 'used by grafana panel 7'")
        conn.execute("CREATE STATISTICS eds_days ON endpoint, day FROM endpoint_daily_stats")
        if strategy == "incremental":
            conn.execute("ALTER TABLE endpoint_daily_stats ENABLE ROW LEVEL SECURITY")
            conn.execute("CREATE POLICY p ON endpoint_daily_stats USING (endpoint <> '/x')")
            conn.execute(
                "CREATE FUNCTION noop() RETURNS trigger LANGUAGE plpgsql AS "
                "'BEGIN RETURN NULL; END'"
            )
            conn.execute(
                "CREATE TRIGGER t AFTER INSERT ON endpoint_daily_stats "
                "FOR EACH ROW EXECUTE FUNCTION noop()"
            )
            conn.execute(
                "CREATE RULE r AS ON DELETE TO endpoint_daily_stats "
                "WHERE OLD.day < '2000-01-01' DO INSTEAD NOTHING"
            )
            conn.execute(
                "ALTER TABLE endpoint_daily_stats ADD CONSTRAINT c CHECK (error_count >= 0)"
            )
        dry = Executor(s, dry_run=True)
        rollup.build(s, strategy, replace=True, executor=dry)
        real = Executor(s)
        results = rollup.build(s, strategy, replace=True, executor=real)
        assert [r.status for r in results] == ["ok", "ok"]
        plan = _same(dry, real)
        text = "\n".join(plan["run"])
        for shown in (
            "SET (\"autovacuum_vacuum_scale_factor\" = '0.01')",
            'ALTER COLUMN "endpoint" SET STATISTICS 1000',
            'ALTER COLUMN "endpoint" SET STORAGE MAIN',
            "IS 'used by grafana panel 7'",
            "CREATE STATISTICS public.eds_days",
        ):
            assert shown in text, shown
        if strategy == "incremental":
            for shown in (
                "ENABLE ROW LEVEL SECURITY",
                'CREATE POLICY "p"',
                "CREATE TRIGGER t AFTER INSERT",
                "CREATE RULE r AS",
                'ADD CONSTRAINT "c" CHECK',
            ):
                assert shown in text, shown
    finally:
        s.conn.close()
