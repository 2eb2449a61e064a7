"""What cron and shell pipelines see: a closed stdout pipe ends quietly (exit 0, nothing on
stderr), and with -q an overlapping `maintain` (exit 75) prints nothing. Real processes, real
pipes, a real server."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg

from epstats_cli.maintain import LOCK_CLASS
from tests.conftest import run_cli
from tests.helpers import fill

EPSTATS = [sys.executable, "-m", "epstats_cli"]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPSTATS_")}
    return env | {"COLUMNS": "200", "PYTHONWARNINGS": "error"}


def _with_data(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("view: {strategy: incremental}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20_000)  # 40 endpoints
    return str(cfg)


def test_a_closed_stdout_pipe_ends_quietly(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _with_data(dsn, conn, tmp_path)
    # The reader is gone before epstats writes a byte: every write meets EPIPE.
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.run(
            [*EPSTATS, "-c", cfg, "--dsn", dsn, "report", "top", "--limit", "40"],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            env=_env(),
            check=False,
            timeout=60,
        )
    finally:
        os.close(write_end)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stderr
    for fmt in ("json", "csv"):
        read_end, write_end = os.pipe()
        os.close(read_end)
        try:
            proc = subprocess.run(
                [*EPSTATS, "-c", cfg, "--dsn", dsn, "--format", fmt, "report", "top"],
                stdout=write_end,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
                check=False,
                timeout=60,
            )
        finally:
            os.close(write_end)
        assert (proc.returncode, proc.stderr) == (0, ""), fmt


def test_report_piped_into_head(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    """The issue's own command line, in a shell."""
    cfg = _with_data(dsn, conn, tmp_path)
    epstats = " ".join([*EPSTATS, "-c", cfg, "--dsn", f"'{dsn}'"])
    script = (
        f'{epstats} report top --limit 40 | head -3; echo "status=${{PIPESTATUS[0]}}" >&2;'
        f"{epstats} --format json report top --limit 40 | head -c 10; "
        'echo "status=${PIPESTATUS[0]}" >&2'
    )
    proc = subprocess.run(
        ["bash", "-c", script], capture_output=True, text=True, env=_env(), check=False, timeout=60
    )
    assert proc.stderr == "status=0\nstatus=0\n"
    assert proc.stdout.count("\n") == 3 + 1  # head -3, then `{` of the JSON


def test_quiet_maintain_prints_nothing_when_another_holds_the_lock(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _with_data(dsn, conn, tmp_path)
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute(
            "SELECT pg_advisory_lock(%s, hashtext('epstats.maintain:public.requests'))",
            (LOCK_CLASS,),
        )
        for quiet in (["-q"], ["--quiet"], ["-q", "--format", "json"]):
            proc = subprocess.run(
                [*EPSTATS, *quiet, "-c", cfg, "--dsn", dsn, "maintain"],
                capture_output=True,
                text=True,
                env=_env(),
                check=False,
                timeout=60,
            )
            assert (proc.returncode, proc.stdout, proc.stderr) == (75, "", ""), quiet
        # without -q the one line stays, naming the holder
        r = run_cli("-c", cfg, "--dsn", dsn, "maintain")
        assert r.code == 75 and r.stderr.count("\n") == 1
        assert f"pid {holder.info.backend_pid}" in r.stderr


def test_a_lock_held_by_a_running_statement_names_it(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A maintain killed mid-statement leaves its statement running on the server, and the
    lock held with it: the next maintain's line names that statement (it ends on its own)."""
    cfg = _with_data(dsn, conn, tmp_path)
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute(
            "SELECT pg_advisory_lock(%s, hashtext('epstats.maintain:public.requests'))",
            (LOCK_CLASS,),
        )
        pid = holder.info.backend_pid

        def orphaned() -> None:  # what a killed maintain's statement goes on doing
            with contextlib.suppress(psycopg.errors.QueryCanceled):
                holder.execute("SELECT pg_sleep(30) /* an orphaned REINDEX */")

        running = threading.Thread(target=orphaned)
        running.start()
        try:
            deadline = time.monotonic() + 30
            while not conn.execute(
                "SELECT 1 FROM pg_stat_activity WHERE pid = %s AND state = 'active'", (pid,)
            ).fetchone():
                assert time.monotonic() < deadline
                time.sleep(0.05)
            r = run_cli("-c", cfg, "--dsn", dsn, "maintain")
            assert r.code == 75 and r.stderr.count("\n") == 1, r.stderr
            assert f"server pid {pid}" in r.stderr and "running `SELECT pg_sleep(30)" in r.stderr
            assert "if its epstats was killed" in r.stderr
        finally:
            conn.execute("SELECT pg_cancel_backend(%s)", (pid,))
            running.join(timeout=30)


def test_a_full_disk_on_stdout_is_one_line_and_exit_1(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """`epstats report top > /dev/full`: a write error on stdout is no internal error, and the
    interpreter's last flush prints nothing more."""
    cfg = _with_data(dsn, conn, tmp_path)
    for fmt in ("table", "json", "csv"):
        with open("/dev/full", "w") as full:
            proc = subprocess.run(
                [*EPSTATS, "-c", cfg, "--dsn", dsn, "report", "top", "--format", fmt],
                stdout=full,
                stderr=subprocess.PIPE,
                text=True,
                env=_env(),
                check=False,
                timeout=60,
            )
        assert (proc.returncode, proc.stderr) == (
            1,
            "epstats: error: cannot write output: No space left on device\n",
        ), fmt
