"""`epstats generate`: deterministic, server-side, all-or-nothing; Ctrl-C cancels on the server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psycopg

from tests.conftest import run_cli
from tests.helpers import catalog

HASH = "SELECT count(*), md5(string_agg(md5(r::text), '' ORDER BY md5(r::text))) FROM requests r"


def _hour(conn: psycopg.Connection[Any]) -> Any:
    row = conn.execute("SELECT date_trunc('hour', now())").fetchone()
    assert row is not None
    return row[0]


def test_same_seed_same_rows(dsn: str, conn: psycopg.Connection[Any]) -> None:
    for _attempt in range(3):  # retried only if the clock crosses an hour between the runs
        hour = _hour(conn)
        digests = []
        for _ in range(2):
            r = run_cli(
                "--dsn",
                dsn,
                "generate",
                "--rows",
                "30000",
                "--days",
                "10",
                "--seed",
                "7",
                "--truncate",
                "--create-table",
            )
            assert r.code == 0, r.stderr
            digests.append(conn.execute(HASH).fetchone())
        if _hour(conn) == hour:
            break
    assert digests[0] == digests[1]
    assert digests[0] is not None and digests[0][0] == 30000
    r = run_cli(
        "--dsn", dsn, "generate", "--rows", "30000", "--days", "10", "--seed", "8", "--truncate"
    )
    assert r.code == 0
    assert conn.execute(HASH).fetchone() != digests[0]


def test_shape_of_the_data(dsn: str, conn: psycopg.Connection[Any]) -> None:
    r = run_cli(
        "--dsn",
        dsn,
        "--format",
        "json",
        "generate",
        "--rows",
        "200000",
        "--days",
        "30",
        "--endpoints",
        "30",
        "--error-rate",
        "0.02",
        "--create-table",
        "--until",
        "2026-06-01",
    )
    assert r.code == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["rows"] == 200000
    lo, hi = conn.execute("SELECT min(timestamp), max(timestamp) FROM requests").fetchone() or (
        None,
        None,
    )
    assert lo is not None and hi is not None
    assert lo.isoformat() >= "2026-05-02" and hi.isoformat() < "2026-06-01"
    counts = [
        c
        for (c,) in conn.execute(
            "SELECT count(*) FROM requests GROUP BY endpoint ORDER BY 1 DESC"
        ).fetchall()
    ]
    assert len(counts) == 30
    assert counts[0] > 5 * counts[-1]  # a few hot endpoints and a long tail
    medians = conn.execute(
        "SELECT percentile_disc(0.5) WITHIN GROUP (ORDER BY response_time) FROM requests "
        "GROUP BY endpoint"
    ).fetchall()
    assert len({round(m[0]) for m in medians}) > 10  # distinct medians per endpoint
    err5, err4 = conn.execute(
        "SELECT avg((status >= 500)::int), avg((status BETWEEN 400 AND 499)::int) FROM requests"
    ).fetchone() or (0, 0)
    assert 0.005 < float(err5) < 0.04 and 0.02 < float(err4) < 0.06
    hours = dict(
        conn.execute(
            "SELECT extract(hour FROM timestamp AT TIME ZONE 'UTC')::int, count(*) FROM requests "
            "GROUP BY 1"
        ).fetchall()
    )
    assert hours[12] > 2 * hours[0]  # a daily cycle


def test_configured_names_and_errors(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text('source:\n  table: logs."Hits"\n  columns: {timestamp: At, endpoint: path}\n')
    r = run_cli("-c", str(cfg), "--dsn", dsn, "generate", "--rows", "1000")
    assert r.code == 1 and "--create-table" in r.stderr
    before = catalog(conn)
    r = run_cli(
        "-c", str(cfg), "--dsn", dsn, "generate", "--rows", "1000", "--create-table", "--dry-run"
    )
    assert r.code == 0 and 'INSERT INTO "logs"."Hits" ("path", "At"' in r.stdout
    assert catalog(conn) == before
    r = run_cli("-c", str(cfg), "--dsn", dsn, "generate", "--rows", "1000", "--create-table")
    assert r.code == 0, r.stderr
    assert conn.execute('SELECT count(*) FROM logs."Hits"').fetchone() == (1000,)


def test_ctrl_c_cancels_on_the_server_and_leaves_nothing(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    proc = subprocess.Popen(
        [sys.executable, "-m", "epstats_cli", "--dsn", dsn, "generate", "--rows", "50000000"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE application_name = 'epstats' "
                "AND state = 'active' AND query LIKE 'WITH shape%%'"
            ).fetchone()
            if row:
                break
            time.sleep(0.02)
        assert row, "the load never started"
        os.kill(proc.pid, signal.SIGINT)
        _out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    for _ in range(100):  # the server-side statement is gone, not left running
        busy = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'epstats' "
            "AND state = 'active'"
        ).fetchone()
        if busy == (0,):
            break
        time.sleep(0.05)
    assert busy == (0,)
    assert conn.execute("SELECT count(*) FROM requests").fetchone() == (0,)
