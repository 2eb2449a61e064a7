"""An interrupted verify task is recorded as interrupted, and the error names it (the tester's
findings on issue 13: `maintain --force verify --only verify` stopped by SIGINT or SIGTERM left
no epstats.runs row, and its stderr line named no task). The task's own row says how far it got,
so the next run goes on after the last day it checked. Real processes and signals where the
task waits on the server; between two days' comparisons (plain Python, no statement to cancel)
the signal handler's own KeyboardInterrupt is raised from the sweep's clock."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli.config import load
from epstats_cli.db import session as db_session
from epstats_cli.errors import InterruptedTerm, clear_signal, note_signal
from epstats_cli.execute import Executor
from epstats_cli.rollup import sweep
from tests.conftest import run_cli
from tests.helpers import fill

VIEW = "public.endpoint_daily_stats"
WAITING = (
    "SELECT 1 FROM pg_stat_activity WHERE application_name = 'epstats' "
    "AND wait_event_type = 'Lock' AND wait_event = 'advisory'"
)


def _ready(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, strategy: str) -> str:
    """A rollup, then rows that arrive late in settled days: the verify task repairs them."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\ndatabase: {{lock_timeout: 2s}}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20_000)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
    conn.execute(
        "INSERT INTO requests SELECT '/late', now() - g * interval '1 day', 1, 200 "
        "FROM generate_series(5, 8) g"
    )
    return str(cfg)


def _runs(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(
        "SELECT target, status, reason, error, finished_at IS NOT NULL FROM epstats.runs "
        "WHERE task = 'verify' ORDER BY id"
    ).fetchall()


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_while_a_day_is_repaired_records_the_task(
    signum: int,
    code: int,
    strategy: str,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    cfg = _ready(dsn, conn, tmp_path, strategy)
    holder = psycopg.connect(dsn, autocommit=True)  # a refresh of the rollup, running
    try:
        holder.execute("SELECT pg_advisory_lock(hashtext(%s))", (f"epstats.rollup:{VIEW}",))
        env = {k: v for k, v in os.environ.items() if k not in ("EPSTATS_CONFIG", "EPSTATS_DSN")}
        args = ["maintain", "--force", "verify", "--only", "verify"]
        proc = subprocess.Popen(
            [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", dsn, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 60
        while not conn.execute(WAITING).fetchone():  # the repair waits for that refresh
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.02)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=30)
    finally:
        holder.close()
    assert proc.returncode == code, (out, err)
    assert f"verify {VIEW}" in err and "did not finish" in err and "Traceback" not in err, err
    rows = _runs(conn)
    task = [r for r in rows if r[0] == VIEW]
    assert len(task) == 1, rows
    _target, status, reason, error, finished = task[0]
    assert (status, finished) == ("interrupted", True), rows
    assert reason.startswith("forced: checked ") and "last checked" in reason, reason
    assert error.startswith(f"interrupted by {signal.Signals(signum).name}"), error
    assert all(r[1] == "interrupted" and r[4] for r in rows), rows  # the repair's step too
    # the next run repairs what is left, from where this one stopped
    r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--force", "verify", "--only", "verify")
    assert r.code == 0, r.stderr
    assert _runs(conn)[-1][:2] == (VIEW, "ok")


def test_a_signal_between_two_days_records_the_task(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A SIGTERM that arrives between two days' comparisons: the handler notes it and raises
    KeyboardInterrupt, here from the sweep's clock, read before each day."""
    cfg = _ready(dsn, conn, tmp_path, "incremental")
    ticks = 0

    def clock() -> float:
        nonlocal ticks
        ticks += 1
        if ticks == 3:  # the start, then before the second day, and before the third
            note_signal(signal.SIGTERM)
            raise KeyboardInterrupt
        return 0.0

    clear_signal()
    try:
        with db_session(load(cfg), dsn, changing=True) as s:
            executor = Executor(s, record=True)
            with pytest.raises(InterruptedTerm) as stopped:
                sweep.run(s, executor, "forced", 3600.0, clock)
    finally:
        clear_signal()
    assert str(stopped.value).startswith("interrupted by SIGTERM")
    assert f"verify {VIEW} did not finish" in str(stopped.value)
    [(target, status, reason, error, finished)] = _runs(conn)
    assert (target, status, finished) == (VIEW, "interrupted", True)
    assert "checked 2 of " in reason and "last checked" in reason, reason
    assert error == str(stopped.value)
