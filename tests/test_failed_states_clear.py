"""`check`'s maintain_failed says what is true now (the tester's findings on issue 13): a failure
that left an invalid index behind is CRITICAL while that index is there, and once cleanup has
dropped it (or nothing is left) it is judged as the failure it was (a busy lock: WARNING); a
refresh failure clears when the rollup is built again (`view build`, plain or --replace), as
a refresh that succeeds would clear it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.helpers import fill, invalid_indexes

pytestmark = pytest.mark.one_version  # heavy: the first server version only


def _check(cfg: str, dsn: str) -> str:
    r = run_cli("-c", cfg, "--dsn", dsn, "check", "--only", "maintain_failed")
    return r.stdout


@pytest.mark.parametrize("how", ["cleanup", "by hand"])
def test_a_leftover_that_is_gone_no_longer_makes_it_critical(
    how: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 1s}\nindexes: {max_wait: 1s}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    assert run_cli("-c", c, "--dsn", dsn, "indexes", "apply").code == 0
    holder = psycopg.connect(dsn)  # an old transaction: REINDEX CONCURRENTLY waits for it
    try:
        holder.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")
        holder.execute("SELECT count(*) FROM requests")
        r = run_cli("-c", c, "--dsn", dsn, "maintain", "--force", "reindex", "--only", "reindex")
        assert r.code == 1, r.stdout
        left = invalid_indexes(conn)
        assert left and all(n.endswith("_ccnew") for n in left), left
        assert _check(c, dsn).startswith("EPSTATS CRITICAL - maintain_failed: reindex failed")
    finally:
        holder.rollback()
        holder.close()
    if how == "cleanup":
        assert run_cli("-c", c, "--dsn", dsn, "maintain", "--only", "cleanup").code == 0
    else:
        for name in invalid_indexes(conn):
            conn.execute(f"DROP INDEX {name}")
    assert invalid_indexes(conn) == []
    # the failure was a busy lock: WARNING until the task next succeeds
    out = _check(c, dsn)
    assert out.startswith("EPSTATS WARNING - maintain_failed: reindex failed at "), out
    assert "(a busy lock: WARNING until 3 failures in a row)" in out
    r = run_cli("-c", c, "--dsn", dsn, "maintain", "--force", "reindex", "--only", "reindex")
    assert r.code == 0, r.stdout
    assert _check(c, dsn).startswith("EPSTATS OK - ")


@pytest.mark.parametrize("replace", [False, True])
def test_a_build_of_the_rollup_clears_a_refresh_failure(
    replace: bool, dsn: str, conn: psycopg.Connection[Any]
) -> None:
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 2000)
    if replace:
        assert run_cli("--dsn", dsn, "view", "build").code == 0
    conn.execute(  # a refresh that failed just now (not for a busy lock)
        "INSERT INTO epstats.runs (task, target, started_at, finished_at, status, reason, "
        "error, failure) VALUES ('refresh', 'public.endpoint_daily_stats', "
        "clock_timestamp(), clock_timestamp(), 'failed', 'x', "
        "'could not write block 7 of relation base/5/16384', 'error')"
    )
    assert _check("/dev/null", dsn).startswith("EPSTATS CRITICAL - maintain_failed: refresh")
    args = ["view", "build", "--replace"] if replace else ["view", "build"]
    assert run_cli("--dsn", dsn, *args).code == 0
    out = _check("/dev/null", dsn)
    assert out.startswith("EPSTATS OK - "), out
