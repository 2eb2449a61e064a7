"""Incremental refresh vs REFRESH MATERIALIZED VIEW CONCURRENTLY, and how each grows with history.

Usage: python benchmarks/view_refresh.py [--rows 10000000] [--days 60] [--version 18]

For history H in (days, 2 x days), each in a fresh database: generate `rows x H/days` rows
over H days ending a day ago, build the recommended indices and both rollups (a materialized
view and an incremental table), then add one new day of `rows/days` rows and time:
- REFRESH MATERIALIZED VIEW CONCURRENTLY on the materialized view,
- `epstats view refresh` on the incremental table (server-side seconds and whole process).
Targets (issue 4): incremental >= 10x faster than CONCURRENTLY; incremental time with doubled
history within 1.5x of the single history.
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path

import psycopg

from benchmarks.common import arguments, epstats, machine, median, server, timed


def scenario(admin_dsn: str, rows: int, days: int, repeat: int) -> dict[str, float]:
    name = f"bench_{days}d"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name}")
        admin.execute(f"CREATE DATABASE {name}")
    params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
    params["dbname"] = name
    dsn = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
    tmp = Path(tempfile.mkdtemp())
    inc_cfg = tmp / "inc.yaml"
    inc_cfg.write_text("view: {name: daily_incremental, strategy: incremental, lookback: 2d}\n")
    mat_cfg = tmp / "mat.yaml"
    mat_cfg.write_text("view: {name: daily_materialized, strategy: materialized}\n")
    with psycopg.connect(dsn, autocommit=True) as conn:
        now = conn.execute("SELECT date_trunc('hour', now())").fetchone()[0]  # type: ignore[index]
        until_history = (now - dt.timedelta(days=1)).isoformat(sep=" ")
        epstats("--dsn", dsn, "-q", "init", "--with-requests-table")
        epstats(
            "--dsn",
            dsn,
            "-q",
            "generate",
            "--rows",
            str(rows),
            "--days",
            str(days),
            "--until",
            until_history,
            "--seed",
            "1",
        )
        epstats("--dsn", dsn, "-q", "indexes", "apply")
        conn.execute("VACUUM ANALYZE requests")
        epstats("-c", str(mat_cfg), "--dsn", dsn, "-q", "view", "build")
        epstats("-c", str(inc_cfg), "--dsn", dsn, "-q", "view", "build")
        # one new day of traffic, the same size whatever the history
        new_rows = rows // days
        epstats(
            "--dsn",
            dsn,
            "-q",
            "generate",
            "--rows",
            str(new_rows),
            "--days",
            "1",
            "--until",
            now.isoformat(sep=" "),
            "--seed",
            "2",
        )
        conn.execute("ANALYZE requests")
        concurrently = [
            timed(lambda: conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY daily_materialized"))
            for _ in range(max(1, repeat - 1))
        ]
        incremental_server: list[float] = []
        incremental_process: list[float] = []
        out: list[str] = []
        for _ in range(repeat):
            out.clear()
            incremental_process.append(
                timed(
                    lambda: out.append(
                        epstats(
                            "-c", str(inc_cfg), "--dsn", dsn, "--format", "json", "view", "refresh"
                        ).stdout
                    )
                )
            )
            incremental_server.append(json.loads(out[0])["tasks"][0]["seconds"])
        total = conn.execute("SELECT count(*) FROM requests").fetchone()[0]  # type: ignore[index]
        check = epstats(
            "-c",
            str(inc_cfg),
            "--dsn",
            dsn,
            "--format",
            "json",
            "view",
            "verify",
            "--days",
            str(days + 2),
        )
        assert json.loads(check.stdout)["ok"], "incremental rollup differs from the raw rows"
    return {
        "rows": float(total),
        "concurrently": median(concurrently),
        "incremental_server": median(incremental_server),
        "incremental_process": median(incremental_process),
    }


def main() -> None:
    parser = arguments(__doc__, repeat=3)
    args = parser.parse_args()
    with server(args.version) as dsn:
        with psycopg.connect(dsn) as c:
            version = c.info.server_version
        one = scenario(dsn, args.rows, args.days, args.repeat)
        two = scenario(dsn, args.rows * 2, args.days * 2, args.repeat)
    print(f"machine: {machine()}; PostgreSQL {version}")
    print(
        f"{'history':<28}{'rows':>14}{'CONCURRENTLY s':>16}{'incremental s':>15}"
        f"{'(process s)':>13}{'speed-up':>10}"
    )
    for label, r in ((f"{args.days} days", one), (f"{args.days * 2} days (doubled)", two)):
        print(
            f"{label:<28}{int(r['rows']):>14,}{r['concurrently']:>16.2f}"
            f"{r['incremental_server']:>15.3f}{r['incremental_process']:>13.2f}"
            f"{r['concurrently'] / r['incremental_server']:>9.1f}x"
        )
    speedup = one["concurrently"] / one["incremental_server"]
    growth = two["incremental_server"] / one["incremental_server"]
    print(
        f"incremental vs CONCURRENTLY: {speedup:.1f}x faster (target >= 10x): "
        f"{'PASS' if speedup >= 10 else 'FAIL'}"
    )
    print(
        f"incremental, doubled history: {growth:.2f}x the time (target <= 1.5x): "
        f"{'PASS' if growth <= 1.5 else 'FAIL'}"
    )


if __name__ == "__main__":
    main()
