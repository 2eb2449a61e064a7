"""Latency percentiles from the rollup (issue 15): reports vs psql's exact `percentile_disc`,
the rollup's size with its histograms vs the raw heap, and `view refresh` vs the guide's
REFRESH MATERIALIZED VIEW CONCURRENTLY, all in the same run.

Usage: python -m benchmarks.percentiles [--rows 10000000] [--days 60] [--repeat 5]
                                        [--endpoints 20] [--sizes-only]

Setup: `rows` requests over `days` days (benchmarks.common.load), the recommended indices, the
incremental rollup (with its latency histograms) and the guide's materialized view
(avg/min/max only, refreshed CONCURRENTLY), then one new day of `rows/days` rows. Same run:
1. whole process `epstats report top --days 30 --source view` (which shows p50/p95/p99) vs
   `psql -c` running the exact percentile_disc query for the same endpoints (target >= 15x);
2. `epstats report top --days 30 --source view --sort p95` (every endpoint's p95) vs psql
   computing every endpoint's p95 exactly (target >= 10x); skipped, and said, while this
   epstats has no `--sort p95`;
3. the rollup with its histograms (table, TOAST, indices) vs the raw table's heap (<= 5 %),
   and the representations compared (storage settings, element types, the dense
   counts-with-offset layout and one row per bucket, built from the same histograms);
4. `epstats view refresh` (incremental, server side) after the new day vs REFRESH
   MATERIALIZED VIEW CONCURRENTLY of the guide's view (target >= 10x).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import arguments, epstats, machine, median, server, timed
from benchmarks.report_top import psql_binary

GUIDE_VIEW = """CREATE MATERIALIZED VIEW guide_daily AS
SELECT endpoint, date_trunc('day', timestamp) AS day, count(*) AS request_count,
       avg(response_time) AS avg_response_time, max(response_time) AS max_response_time,
       min(response_time) AS min_response_time,
       count(*) FILTER (WHERE status >= 500) AS error_count
FROM requests GROUP BY endpoint, date_trunc('day', timestamp)"""
GUIDE_KEY = "CREATE UNIQUE INDEX ON guide_daily (endpoint, day)"

# The exact percentiles psql computes over the raw rows of the window (a local day boundary
# 30 days ago, as `report top --days 30` reads).
EXACT_TOP = """SELECT endpoint, count(*) AS requests,
       percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY response_time) AS p
FROM requests
WHERE timestamp >= date_trunc('day', now()) - interval '29 days'
  AND endpoint = ANY('{endpoints}'::text[])
GROUP BY endpoint"""
EXACT_P95 = """SELECT endpoint,
       percentile_disc(0.95) WITHIN GROUP (ORDER BY response_time) AS p95
FROM requests
WHERE timestamp >= date_trunc('day', now()) - interval '29 days'
GROUP BY endpoint
ORDER BY p95 DESC"""

# The representations compared, each built from the rollup's own histograms: (label, DDL of a
# table `alt` holding them, INSERT filling it from endpoint_daily_stats `r`).
DATA = "endpoint, day, request_count, avg_response_time, max_response_time, min_response_time"
ALTERNATIVES: list[tuple[str, str, str]] = [
    (
        "integer[] buckets + bigint[] counts, defaults (pglz, toast_tuple_target 2032)",
        "CREATE TABLE alt (LIKE endpoint_daily_stats)",
        "INSERT INTO alt SELECT * FROM endpoint_daily_stats",
    ),
    (
        "the same, toast_tuple_target = 128 (pglz)",
        "CREATE TABLE alt (LIKE endpoint_daily_stats) WITH (toast_tuple_target = 128)",
        "INSERT INTO alt SELECT * FROM endpoint_daily_stats",
    ),
    (
        "the same, COMPRESSION lz4 (PG14+ built --with-lz4)",
        "CREATE TABLE alt (LIKE endpoint_daily_stats); "
        "ALTER TABLE alt ALTER COLUMN latency_buckets SET COMPRESSION lz4, "
        "ALTER COLUMN latency_counts SET COMPRESSION lz4",
        "INSERT INTO alt SELECT * FROM endpoint_daily_stats",
    ),
    (
        "the same, lz4 and toast_tuple_target = 128",
        "CREATE TABLE alt (LIKE endpoint_daily_stats) WITH (toast_tuple_target = 128); "
        "ALTER TABLE alt ALTER COLUMN latency_buckets SET COMPRESSION lz4, "
        "ALTER COLUMN latency_counts SET COMPRESSION lz4",
        "INSERT INTO alt SELECT * FROM endpoint_daily_stats",
    ),
    (
        "counts as integer[] (defaults)",
        "CREATE TABLE alt (LIKE endpoint_daily_stats); "
        "ALTER TABLE alt ALTER COLUMN latency_counts TYPE integer[]",
        "INSERT INTO alt SELECT * FROM endpoint_daily_stats",
    ),
    (
        "counts as integer[], toast_tuple_target = 128 (pglz)",
        "CREATE TABLE alt (LIKE endpoint_daily_stats) WITH (toast_tuple_target = 128); "
        "ALTER TABLE alt ALTER COLUMN latency_counts TYPE integer[]",
        "INSERT INTO alt SELECT * FROM endpoint_daily_stats",
    ),
    (
        "reference: dense counts integer[] from an offset (zeros kept), defaults",
        f"CREATE TABLE alt AS SELECT {DATA}, 0 AS latency_offset, '{{}}'::integer[] "
        "AS latency_dense FROM endpoint_daily_stats WITH NO DATA",
        f"INSERT INTO alt SELECT {DATA}, lo, dense FROM endpoint_daily_stats r, LATERAL ("
        "SELECT min(b) AS lo, array_agg(coalesce(c, 0)::integer ORDER BY g) AS dense "
        "FROM generate_series((SELECT min(b) FROM unnest(r.latency_buckets) b "
        "WHERE b > -2147483648), (SELECT max(b) FROM unnest(r.latency_buckets) b "
        "WHERE b < 2147483647)) g LEFT JOIN unnest(r.latency_buckets, r.latency_counts) "
        "AS u(b, c) ON u.b = g) d WHERE r.endpoint IS NOT NULL",
    ),
    (
        "reference: one row per (endpoint, day, bucket), with its key",
        "CREATE TABLE alt (endpoint text, day date, bucket integer, count bigint, "
        "PRIMARY KEY (endpoint, day, bucket))",
        "INSERT INTO alt SELECT r.endpoint, r.day, u.b, u.c FROM endpoint_daily_stats r, "
        "unnest(r.latency_buckets, r.latency_counts) AS u(b, c) WHERE r.endpoint IS NOT NULL",
    ),
]
SIZE = "SELECT pg_total_relation_size(%s::regclass)"


def sizes(conn: psycopg.Connection[Any]) -> tuple[int, int, list[tuple[str, int | None]]]:
    """The raw heap, the rollup's total size, and each alternative's (None: refused here)."""
    heap = conn.execute("SELECT pg_relation_size('requests')").fetchone()[0]  # type: ignore[index]
    rollup = conn.execute(SIZE, ("endpoint_daily_stats",)).fetchone()[0]  # type: ignore[index]
    out: list[tuple[str, int | None]] = []
    for label, ddl, fill in ALTERNATIVES:
        conn.execute("DROP TABLE IF EXISTS alt")
        try:
            for statement in ddl.split("; "):
                conn.execute(statement)
        except psycopg.Error:  # lz4 on a server built without it
            out.append((label, None))
            continue
        conn.execute(fill)
        conn.execute("VACUUM alt")
        out.append((label, conn.execute(SIZE, ("alt",)).fetchone()[0]))  # type: ignore[index]
    conn.execute("DROP TABLE IF EXISTS alt")
    return heap, rollup, out


def _process(cmd: list[str], repeat: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeat):
        start = time.perf_counter()
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        times.append(time.perf_counter() - start)
    return median(times), out


def main() -> None:
    parser = arguments(__doc__, repeat=5)
    parser.add_argument("--endpoints", type=int, default=20)
    parser.add_argument("--sizes-only", action="store_true", help="Only part 3.")
    args = parser.parse_args()
    psql = psql_binary()
    cfg = Path(tempfile.mkdtemp()) / "c.yaml"
    cfg.write_text("view: {strategy: incremental, lookback: 2d}\n")
    with server(args.version) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        base = ["-c", str(cfg), "--dsn", dsn]
        version = conn.info.server_version
        now = conn.execute("SELECT date_trunc('hour', now())").fetchone()[0]  # type: ignore[index]
        history_until = (now - dt.timedelta(days=1)).isoformat(sep=" ")
        epstats(*base, "-q", "init", "--with-requests-table")
        epstats(
            *base, "-q", "generate", "--rows", str(args.rows), "--days", str(args.days),
            "--until", history_until, "--endpoints", str(args.endpoints), "--seed", "1",
        )  # fmt: skip
        epstats(*base, "-q", "indexes", "apply")
        conn.execute("VACUUM ANALYZE requests")
        epstats(*base, "-q", "view", "build")
        heap, rollup, alternatives = sizes(conn)
        results: dict[str, Any] = {}
        if not args.sizes_only:
            conn.execute(GUIDE_VIEW)
            conn.execute(GUIDE_KEY)
            # one new day of traffic, then both refreshed
            new_rows = args.rows // args.days
            epstats(
                *base, "-q", "generate", "--rows", str(new_rows), "--days", "1",
                "--until", now.isoformat(sep=" "), "--endpoints", str(args.endpoints),
                "--seed", "2",
            )  # fmt: skip
            conn.execute("ANALYZE requests")
            concurrently = [
                timed(lambda: conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY guide_daily"))
                for _ in range(max(1, args.repeat - 2))
            ]
            refresh_s = []
            for _ in range(max(1, args.repeat - 2)):
                out = epstats(*base, "--format", "json", "view", "refresh").stdout
                refresh_s.append(json.loads(out)["tasks"][0]["seconds"])
            results["refresh"] = (median(concurrently), median(refresh_s))
            results["top"] = top(psql, dsn, base, args.repeat)
            results["p95"] = sort_p95(psql, dsn, base, args.repeat)
            check = epstats(*base, "--format", "json", "view", "verify", "--days", "90").stdout
            assert json.loads(check)["ok"], "the rollup differs from the raw rows"
    report(args, version, heap, rollup, alternatives, results)


def top(psql: str, dsn: str, base: list[str], repeat: int) -> tuple[float, float, bool]:
    """(psql s, epstats s, whether epstats showed percentiles): report top --days 30."""
    cmd = [*base, "--format", "json", "report", "top", "--days", "30", "--source", "view"]
    ours, out = _process([*_epstats_cmd(), *cmd], repeat)
    rows = json.loads(out)["rows"]
    names = ",".join('"' + r["endpoint"].replace('"', '\\"') + '"' for r in rows)
    query = EXACT_TOP.replace("{endpoints}", "{" + names + "}")
    theirs, _ = _process([psql, dsn, "-X", "-q", "-c", query], repeat)
    return theirs, ours, bool(rows) and "p95_ms" in rows[0]


def sort_p95(psql: str, dsn: str, base: list[str], repeat: int) -> tuple[float, float] | None:
    """(psql s, epstats s) for every endpoint's p95, or None while --sort p95 is refused."""
    cmd = [*_epstats_cmd(), *base, "--format", "json", "report", "top", "--days", "30"]
    cmd += ["--source", "view", "--sort", "p95", "--limit", "10000"]
    if subprocess.run(cmd, check=False, capture_output=True, text=True).returncode != 0:
        return None
    ours, _ = _process(cmd, repeat)
    theirs, _ = _process([psql, dsn, "-X", "-q", "-c", EXACT_P95], repeat)
    return theirs, ours


def _epstats_cmd() -> list[str]:
    import sys

    script = Path(sys.executable).parent / "epstats"
    return [str(script)] if script.exists() else [sys.executable, "-m", "epstats_cli"]


def report(
    args: argparse.Namespace,
    version: str | int,
    heap: int,
    rollup: int,
    alternatives: list[tuple[str, int | None]],
    results: dict[str, Any],
) -> None:
    print(
        f"machine: {machine()}; PostgreSQL {version}; {args.rows:,} rows over {args.days} "
        f"days, {args.endpoints} endpoints"
    )
    share = rollup / heap
    print(
        f"raw heap {heap / 2**20:,.1f} MiB; the rollup with its histograms "
        f"{rollup / 2**10:,.0f} KiB = {share:.2%} of it (target <= 5 %): "
        f"{'PASS' if share <= 0.05 else 'FAIL'}"
    )
    print(f"{'representation':<80}{'KiB':>10}{'of heap':>9}")
    for label, size in alternatives:
        shown = "refused" if size is None else f"{size / 2**10:,.0f}"
        pct = "" if size is None else f"{size / heap:.2%}"
        print(f"{label:<80}{shown:>10}{pct:>9}")
    if "refresh" in results:
        conc, inc = results["refresh"]
        print(
            f"view refresh (incremental, server) {inc:.3f} s vs CONCURRENTLY {conc:.2f} s: "
            f"{conc / inc:.1f}x (target >= 10x): {'PASS' if conc / inc >= 10 else 'FAIL'}"
        )
    if "top" in results:
        theirs, ours, percentiles = results["top"]
        what = "with percentiles" if percentiles else "WITHOUT percentile columns (not merged)"
        print(
            f"report top --days 30 --source view ({what}) {ours * 1000:.0f} ms vs psql exact "
            f"percentile_disc {theirs * 1000:.0f} ms: {theirs / ours:.1f}x (target >= 15x): "
            f"{'PASS' if theirs / ours >= 15 and percentiles else 'FAIL'}"
        )
    if results.get("p95") is None and "top" in results:
        print("--sort p95: not run (this epstats has no --sort p95)")
    elif "p95" in results:
        theirs, ours = results["p95"]
        print(
            f"--sort p95 (every endpoint) {ours * 1000:.0f} ms vs psql exact "
            f"{theirs * 1000:.0f} ms: {theirs / ours:.1f}x (target >= 10x): "
            f"{'PASS' if theirs / ours >= 10 else 'FAIL'}"
        )


if __name__ == "__main__":
    main()
