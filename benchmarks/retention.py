"""Retiring one day from a 10M-row, 60-day table: DELETE batches (a plain table) vs dropping a
partition (the same rows in a table partitioned by day), and the effect on the table's size and
on a `report top --source raw`.

Usage: python -m benchmarks.retention [--rows 10000000] [--days 60] [--repeat 3] [--version 18]

Each case in a fresh database: generate `rows` rows over `days` days (to the current hour;
UTC days, up to today's midnight), the timestamp and (endpoint, timestamp) indices, VACUUM
ANALYZE, an incremental rollup; then time `report top --days <days> --source raw` (median of
`repeat`), one `epstats maintain --force retention --only retention` with source.retention =
days - 1 (it retires the oldest day, whole: the summary says how many rows), the size before and
after (pg_total_relation_size of the table and its partitions and indices), and the raw report
again. The plain table's run includes its VACUUM (which makes the space reusable, not smaller).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import arguments, epstats, machine, median, server, timed

# the table with its indices and TOAST, and every partition's (a plain table has none)
SIZE = (
    "SELECT pg_total_relation_size('requests') + coalesce((SELECT sum(pg_total_relation_size("
    "relid)) FROM pg_partition_tree('requests') WHERE relid <> 'requests'::regclass), 0)"
)


def _dsn(admin_dsn: str, name: str) -> str:
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


def _partitioned(conn: psycopg.Connection[Any], days: int) -> None:
    """requests partitioned by UTC day, from `days` + 1 days back to 3 ahead."""
    conn.execute(
        'CREATE TABLE requests (endpoint text NOT NULL, "timestamp" timestamptz NOT NULL, '
        "response_time double precision, status integer) "
        'PARTITION BY RANGE ("timestamp")'
    )
    for (statement,) in conn.execute(
        "SELECT format('CREATE TABLE requests_p%%s PARTITION OF requests FOR VALUES FROM (%%L) "
        "TO (%%L)', to_char(d, 'YYYYMMDD'), d::timestamp AT TIME ZONE 'UTC', "
        "(d + 1)::timestamp AT TIME ZONE 'UTC') "
        "FROM generate_series(-%s, 3) AS g, LATERAL (SELECT current_date + g AS d) AS day",
        (days + 1,),
    ).fetchall():
        conn.execute(statement)


def case(admin_dsn: str, partitioned: bool, rows: int, days: int, repeat: int) -> dict[str, Any]:
    dsn = _dsn(admin_dsn, "bench_retention_" + ("parted" if partitioned else "plain"))
    cfg = Path(tempfile.mkdtemp()) / "epstats.yaml"
    cfg.write_text(
        f"source: {{timezone: UTC, retention: {days - 1}d}}\n"
        "view: {strategy: incremental, lookback: 2d}\n"
        "maintenance: {max_runtime: 2h}\n"
    )
    base = ["-c", str(cfg), "--dsn", dsn]
    with psycopg.connect(dsn, autocommit=True) as conn:
        if partitioned:
            _partitioned(conn, days)
        epstats(*base, "-q", "init", "--with-requests-table")
        until = dt.datetime.now(dt.timezone.utc).date().isoformat()  # whole UTC days
        epstats(*base, "-q", "generate", "--rows", str(rows), "--days", str(days), "--seed", "1",
                "--until", until)  # fmt: skip
        conn.execute('CREATE INDEX ON requests ("timestamp")')
        conn.execute('CREATE INDEX ON requests (endpoint, "timestamp")')
        conn.execute("VACUUM ANALYZE requests")
        epstats(*base, "-q", "view", "build")

        def report() -> None:
            epstats(*base, "-q", "--format", "json", "report", "top", "--days", str(days),
                    "--source", "raw")  # fmt: skip

        raw_before = median([timed(report) for _ in range(repeat)])
        size_before = int(conn.execute(SIZE).fetchone()[0])  # type: ignore[index]
        rollup_before = conn.execute(
            "SELECT sum(request_count) FROM endpoint_daily_stats WHERE endpoint IS NOT NULL"
        ).fetchone()
        out: list[dict[str, Any]] = []

        def retire() -> None:
            r = epstats(*base, "--format", "json", "maintain", "--force", "retention",
                        "--only", "retention")  # fmt: skip
            out.append(json.loads(r.stdout))

        process = timed(retire)
        tasks = out[0]["tasks"]
        summary = tasks[-1]
        assert summary["status"] == "ok", summary
        gone = re.search(r"([\d,]+) raw rows gone", summary["reason"])
        assert gone, summary["reason"]
        vacuum = sum(float(t["seconds"]) for t in tasks if t["task"] == "vacuum")
        size_after = int(conn.execute(SIZE).fetchone()[0])  # type: ignore[index]
        raw_after = median([timed(report) for _ in range(repeat)])
        rollup_after = conn.execute(
            "SELECT sum(request_count) FROM endpoint_daily_stats WHERE endpoint IS NOT NULL"
        ).fetchone()
        assert rollup_after == rollup_before, (rollup_before, rollup_after)
        left = int(conn.execute("SELECT count(*) FROM requests").fetchone()[0])  # type: ignore[index]
    return {
        "rows": left + int(gone.group(1).replace(",", "")),
        "retired": int(gone.group(1).replace(",", "")),
        "summary": summary["reason"],
        "task": float(summary["seconds"]),
        "vacuum": vacuum,
        "process": process,
        "size_before": size_before,
        "size_after": size_after,
        "raw_before": raw_before,
        "raw_after": raw_after,
    }


def main() -> None:
    parser = arguments(__doc__, repeat=3)
    args = parser.parse_args()
    results = {}
    with server(args.version) as dsn:
        with psycopg.connect(dsn) as c:
            version = c.info.server_version
        for partitioned in (False, True):
            name = "drop a partition" if partitioned else "DELETE batches"
            results[name] = case(dsn, partitioned, args.rows, args.days, args.repeat)
    print(f"machine: {machine()}; PostgreSQL {version // 10000}.{version % 10000}")
    mb = 1024 * 1024
    print(
        f"{'':<18}{'rows':>12}{'retired':>10}{'task s':>9}{'vacuum s':>10}{'size MB before':>16}"
        f"{'after':>8}{'raw report s before':>21}{'after':>8}"
    )
    for name, r in results.items():
        print(
            f"{name:<18}{r['rows']:>12,}{r['retired']:>10,}{r['task']:>9.2f}{r['vacuum']:>10.2f}"
            f"{r['size_before'] / mb:>16.0f}{r['size_after'] / mb:>8.0f}"
            f"{r['raw_before']:>21.2f}{r['raw_after']:>8.2f}"
        )
    for name, r in results.items():
        print(f"{name}: {r['summary']}")


if __name__ == "__main__":
    main()
