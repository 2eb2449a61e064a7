"""One `maintain --force verify` over every day vs a full REFRESH MATERIALIZED VIEW CONCURRENTLY.

Usage: python -m benchmarks.verify_task [--rows 10000000] [--days 60] [--repeat 3] [--version 18]

In a fresh database: generate `rows` rows over `days` days (to the current hour), build the
recommended indices, an incremental rollup (what `verify` guards) and a materialized view (the
baseline), then insert 3,000 rows dated 40 days back. Time:
- REFRESH MATERIALIZED VIEW CONCURRENTLY of the materialized view (the baseline: what the
  guide's nightly refresh costs, and what a materialized rollup pays to pick up late rows);
- `epstats maintain --force verify --only verify` on the incremental rollup: first the run that
  finds and repairs the late day, then clean runs (every settled day compared, nothing found).
The verify runs must each check every day (the summary says "checked N of N days").
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import arguments, epstats, machine, median, server, timed


def _verify(cfg: Path, dsn: str) -> tuple[float, float, str, float]:
    """One forced verify run: (its own seconds, the whole process's, its summary, the seconds
    its repairs took)."""
    out: list[list[dict[str, Any]]] = []

    def run() -> None:
        r = epstats(
            "-c", str(cfg), "--dsn", dsn, "--format", "json",
            "maintain", "--force", "verify", "--only", "verify",
        )  # fmt: skip
        out.append(json.loads(r.stdout)["tasks"])

    process = timed(run)
    *repairs, summary = out[0]
    assert summary["status"] == "ok", summary
    found = re.search(r"checked (\d+) of (\d+) days", summary["reason"])
    assert found and found.group(1) == found.group(2), summary["reason"]
    repaired = sum(float(t["seconds"]) for t in repairs if t["task"] == "verify")
    return float(summary["seconds"]), process, str(summary["reason"]), repaired


def scenario(admin_dsn: str, rows: int, days: int, repeat: int) -> dict[str, Any]:
    name = "bench_verify"
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
        epstats("--dsn", dsn, "-q", "init", "--with-requests-table")
        epstats(
            "--dsn", dsn, "-q", "generate", "--rows", str(rows), "--days", str(days),
            "--seed", "1",
        )  # fmt: skip
        epstats("--dsn", dsn, "-q", "indexes", "apply")
        conn.execute("VACUUM ANALYZE requests")
        epstats("-c", str(mat_cfg), "--dsn", dsn, "-q", "view", "build")
        epstats("-c", str(inc_cfg), "--dsn", dsn, "-q", "view", "build")
        conn.execute(
            "INSERT INTO requests (endpoint, timestamp, response_time, status) "
            "SELECT '/api/v1/late', now() - interval '40 days' + g * interval '10 ms', 20, 200 "
            "FROM generate_series(1, 3000) g"
        )
        repair_server, repair_process, repaired, repair_step = _verify(inc_cfg, dsn)
        assert "(+3,000 rows)" in repaired, repaired
        clean = [_verify(inc_cfg, dsn) for _ in range(repeat)]
        concurrently = [
            timed(lambda: conn.execute("REFRESH MATERIALIZED VIEW CONCURRENTLY daily_materialized"))
            for _ in range(repeat)
        ]
        total = conn.execute("SELECT count(*) FROM requests").fetchone()[0]  # type: ignore[index]
        checked = re.search(r"checked (\d+) of", clean[0][2])
        assert checked is not None
    return {
        "rows": int(total),
        "days_checked": int(checked.group(1)),
        "concurrently": median(concurrently),
        "verify_server": median([c[0] for c in clean]),
        "verify_process": median([c[1] for c in clean]),
        "repair_server": repair_server,
        "repair_process": repair_process,
        "repair_step": repair_step,
    }


def main() -> None:
    parser = arguments(__doc__, repeat=3)
    args = parser.parse_args()
    with server(args.version) as dsn:
        with psycopg.connect(dsn) as c:
            version = c.info.server_version
        r = scenario(dsn, args.rows, args.days, args.repeat)
    print(f"machine: {machine()}; PostgreSQL {version // 10000}.{version % 10000}")
    print(f"rows: {r['rows']:,}; days compared by each verify run: {r['days_checked']}")
    print(f"{'':<52}{'server s':>10}{'process s':>11}")
    print(f"{'REFRESH MATERIALIZED VIEW CONCURRENTLY (baseline)':<52}{r['concurrently']:>10.2f}")
    print(
        f"{'maintain --force verify, one day repaired':<52}"
        f"{r['repair_server']:>10.2f}{r['repair_process']:>11.2f}"
    )
    print(
        f"{'maintain --force verify, nothing to repair':<52}"
        f"{r['verify_server']:>10.2f}{r['verify_process']:>11.2f}"
    )
    print(
        f"  of which the repair of the late day (delete + insert, one transaction): "
        f"{r['repair_step']:.2f} s"
    )
    print(
        f"verify / CONCURRENTLY: {r['verify_server'] / r['concurrently']:.2f}x "
        f"(with the repair: {r['repair_server'] / r['concurrently']:.2f}x)"
    )


if __name__ == "__main__":
    main()
