"""`epstats report top --source auto` with JIT off (what epstats does) vs on (issue 17).

Usage: python -m benchmarks.jit [--rows 10000000] [--days 60] [--repeat 9] [--keep]

Setup: a PostgreSQL 15 server of its own (the PGDG build has LLVM JIT; the embedded 18 has
none) with pg_stat_statements preloaded and the server's default jit settings (jit on,
jit_above_cost 100000, jit_inline_above_cost and jit_optimize_above_cost 500000); `rows`
requests over `days` days up to the current hour, the recommended indices, the materialized
rollup, then an hour of rows the rollup has not seen (as benchmarks/report_top.py). With
$EPSTATS_BENCH_DSN (a server --keep left, for instance) the data set there is reused when it
holds rows.

Then, alternately, `repeat` times each after one warm-up of each, whole processes of
`epstats --format json report top --days 30 --source auto` (and `--source raw` and `check`):
as epstats runs them (its read-only session sets jit = off) and with JIT left to the server
(the same command line with `epstats_cli.db.READ_ONLY_JIT = None`: what epstats did before).
Printed: the medians of the server time (a report's query_seconds) and of the whole process,
their ratio, and, from pg_stat_statements after one more run of each, how many functions JIT
compiled and how long generating, inlining, optimising and emitting them took. Three states:
the btree on the timestamp with the rollup an hour behind (as loaded); a day's traffic
(rows/days rows) dated since its watermark; the same with a BRIN on the timestamp instead of
the btree (issue 17's other half), whose plans cost by table size, not by rows returned.
The data set is restored afterwards (the burst deleted, the btree rebuilt).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import ROOT, epstats, load, machine, median

COMMANDS = {
    "auto": ["report", "top", "--days", "30", "--source", "auto"],
    "raw": ["report", "top", "--days", "30", "--source", "raw"],
    "check": ["check"],
}
# The same console script, with JIT left to the server: what epstats did before issue 17.
JIT_ON = (
    "import sys, epstats_cli.db as db; db.READ_ONLY_JIT = None; "
    "from epstats_cli.entry import main; sys.exit(main())"
)
BURST = """
INSERT INTO requests
SELECT '/api/v1/burst', now() - random() * (now() - (SELECT max(timestamp) FROM requests
                                                     WHERE timestamp <= now())),
       random() * 50, 200
FROM generate_series(1, %s)
"""
JIT_STATS = """
SELECT coalesce(sum(calls), 0)::bigint AS calls,
       coalesce(sum(jit_functions), 0)::bigint AS functions,
       coalesce(sum(jit_generation_time + jit_inlining_time + jit_optimization_time
                    + jit_emission_time), 0)::float8 AS jit_ms,
       coalesce(sum(total_exec_time), 0)::float8 AS exec_ms
FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'postgres')
  AND query NOT ILIKE '%%pg_stat_statements%%'
"""


def run(base: list[str], command: str, jit: bool) -> tuple[float, float]:
    """(server seconds, process seconds) of one command (server: a report's query_seconds;
    nan for check, which does not say)."""
    args = [*base, "--format", "json", *COMMANDS[command]]
    script = Path(sys.executable).parent / "epstats"
    cmd = [sys.executable, "-c", JIT_ON] if jit else [str(script)]
    began = time.perf_counter()
    done = subprocess.run([*cmd, *args], capture_output=True, text=True, check=False, cwd=ROOT)
    seconds = time.perf_counter() - began
    if done.returncode not in ((0, 1, 2) if command == "check" else (0,)):
        raise SystemExit(f"{command}: exit {done.returncode}: {done.stderr}")
    return float(json.loads(done.stdout).get("query_seconds", math.nan)), seconds


def jit_counters(conn: psycopg.Connection[Any], base: list[str], command: str, jit: bool) -> str:
    """One run after pg_stat_statements_reset(): what JIT did in it."""
    conn.execute("SELECT pg_stat_statements_reset()")
    run(base, command, jit)
    row = conn.execute(JIT_STATS).fetchone()
    assert row is not None
    calls, functions, jit_ms, exec_ms = row
    return f"{functions} functions, {jit_ms:.1f} ms JIT in {exec_ms:.1f} ms ({calls} statements)"


BRIN = "idx_requests_timestamp_brin"
Timings = dict[tuple[str, bool], list[tuple[float, float]]]


def measure(
    conn: psycopg.Connection[Any], base: list[str], repeat: int, commands: tuple[str, ...]
) -> tuple[Timings, dict[tuple[str, bool], str]]:
    """Each command with JIT off and on, alternately; then what JIT did in one more run."""
    timings: Timings = {(c, j): [] for c in commands for j in (False, True)}
    for turn in range(repeat + 1):  # turn 0: a warm-up, not counted
        for key in timings:
            result = run(base, *key)
            if turn:
                timings[key].append(result)
    return timings, {key: jit_counters(conn, base, *key) for key in timings}


def restore(conn: psycopg.Connection[Any], base: list[str]) -> None:
    """The data set as loaded: no burst, the recommended btree indices."""
    conn.execute("DELETE FROM requests WHERE endpoint = '/api/v1/burst'")
    conn.execute(f"DROP INDEX IF EXISTS {BRIN}")
    epstats(*base, "-q", "indexes", "apply")
    conn.execute("VACUUM ANALYZE requests")


def prepare(dsn: str, rows: int, days: int, base: list[str]) -> str:
    """Load the data set unless the server holds one; what it took."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        have = conn.execute("SELECT to_regclass('public.requests') IS NOT NULL").fetchone()
        if have and have[0]:
            count = conn.execute("SELECT count(*) FROM requests").fetchone()
            if count and count[0]:
                restore(conn, base)
                return f"reused {count[0]:,} rows"
        start = time.perf_counter()
        now = conn.execute("SELECT date_trunc('hour', now())").fetchone()[0]  # type: ignore[index]
        load(base, rows, days, now.isoformat(sep=" "))
        epstats(*base, "-q", "indexes", "apply")
        conn.execute("VACUUM ANALYZE requests")
        epstats(*base, "-q", "view", "build")
        conn.execute(
            "INSERT INTO requests SELECT '/api/v1/users', now() - random() * interval '1 hour', "
            "random() * 50, 200 FROM generate_series(1, %s)",
            (rows // days // 24,),
        )
        conn.execute("ANALYZE requests")
        return f"loaded in {time.perf_counter() - start:.0f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--keep", action="store_true", help="leave the server running")
    args = parser.parse_args()

    cluster = None
    dsn = os.environ.get("EPSTATS_BENCH_DSN")
    if not dsn:
        from tests.pgcluster import bin_dirs, create_cluster

        cluster = create_cluster(15, bin_dirs()[15])
        conf = cluster.datadir / "data" / "postgresql.auto.conf"
        with conf.open("a") as f:
            f.write("shared_preload_libraries = 'pg_stat_statements'\n")
        cluster.stop()
        cluster.start()
        dsn = cluster.dsn
    cfg = Path(tempfile.mkdtemp()) / "c.yaml"
    cfg.write_text("view: {strategy: materialized}\n")
    base = ["-c", str(cfg), "--dsn", dsn]
    try:
        setup = prepare(dsn, args.rows, args.days, base)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
            settings: dict[str, str] = dict(
                conn.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('jit', 'jit_above_cost',"
                    " 'jit_inline_above_cost', 'jit_optimize_above_cost', 'jit_provider')"
                ).fetchall()
            )
            available = conn.execute("SELECT pg_jit_available()").fetchone()
            version = conn.info.server_version
            phases: dict[str, tuple[Timings, dict[tuple[str, bool], str]]] = {}
            try:
                phases["btree on timestamp, the rollup an hour behind"] = measure(
                    conn, base, args.repeat, ("auto", "raw", "check")
                )
                conn.execute(BURST, (args.rows // args.days,))
                conn.execute("ANALYZE requests")
                phases["btree on timestamp, the rollup a day's traffic behind"] = measure(
                    conn, base, args.repeat, ("auto", "check")
                )
                conn.execute(f"CREATE INDEX {BRIN} ON requests USING brin (timestamp)")
                conn.execute("DROP INDEX idx_requests_timestamp")
                conn.execute("ANALYZE requests")
                phases["BRIN instead, the rollup a day's traffic behind"] = measure(
                    conn, base, args.repeat, ("auto", "check")
                )
            finally:
                restore(conn, base)
    finally:
        if cluster is not None:
            if args.keep:
                print(f"server kept: EPSTATS_BENCH_DSN='{dsn}' ({cluster.datadir})")
            else:
                cluster.destroy()

    print(
        f"machine: {machine()}; PostgreSQL {version}; rows: {args.rows:,} over {args.days} days"
        f" + 1 unrefreshed hour ({setup}); median of {args.repeat}"
    )
    print(f"jit available: {available[0] if available else '?'}; settings: {settings}")
    for phase, (timings, counters) in phases.items():
        print(f"\n{phase}")
        print(f"{'':<36}{'server ms':>11}{'process ms':>12}  JIT (one more run)")
        for (command, jit), values in timings.items():
            name = f"{command}, jit {'on' if jit else 'off (epstats)'}"
            srv = median([v[0] for v in values]) * 1000
            proc = median([v[1] for v in values]) * 1000
            print(f"{name:<36}{srv:>11.1f}{proc:>12.1f}  {counters[(command, jit)]}")
        for command in dict.fromkeys(c for c, _j in timings):
            on, off = timings[(command, True)], timings[(command, False)]
            srv = median([v[0] for v in on]) / median([v[0] for v in off])
            proc = median([v[1] for v in on]) / median([v[1] for v in off])
            print(f"{command}: jit on / jit off = {srv:.2f}x server, {proc:.2f}x process")


if __name__ == "__main__":
    main()
