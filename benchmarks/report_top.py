"""`epstats report top --days 30` (view and auto) vs the guide's "optimized" query run by psql.

Usage: python benchmarks/report_top.py [--rows 10000000] [--days 60] [--repeat 5]

Setup: `rows` requests over `days` days, the recommended indices, the materialized rollup,
then an hour of rows the rollup has not seen. Times, in the same run:
- server side: the guide's query vs the view source's query (epstats's own query_seconds);
- whole processes: `psql -c <guide query>` vs `epstats report top --source view|auto`.
Targets (issue 6): view source >= 100x faster server-side; each epstats process >= 4x faster
than the psql process.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psycopg

from benchmarks.common import arguments, epstats, load, machine, median, server, timed

GUIDE = """SELECT endpoint, COUNT(*), AVG(response_time)
FROM requests
WHERE timestamp > NOW() - INTERVAL '30 days'
GROUP BY endpoint
ORDER BY COUNT(*) DESC
LIMIT 10"""


def psql_binary() -> str:
    found = shutil.which("psql")
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob("*/bin/psql"), reverse=True):
        return str(candidate)
    raise SystemExit("psql not found")


def main() -> None:
    parser = arguments(__doc__, repeat=5)
    args = parser.parse_args()
    psql = psql_binary()
    cfg = Path(tempfile.mkdtemp()) / "c.yaml"
    cfg.write_text("view: {strategy: materialized}\n")
    with server(args.version) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        base = ["-c", str(cfg), "--dsn", dsn]
        now = conn.execute("SELECT date_trunc('hour', now())").fetchone()[0]  # type: ignore[index]
        load(base, args.rows, args.days, now.isoformat(sep=" "))
        epstats(*base, "-q", "indexes", "apply")
        conn.execute("VACUUM ANALYZE requests")
        epstats(*base, "-q", "view", "build")
        # an hour of traffic the rollup has not seen yet
        conn.execute(
            "INSERT INTO requests SELECT '/api/v1/users', now() - random() * interval '1 hour', "
            "random() * 50, 200 FROM generate_series(1, %s)",
            (args.rows // args.days // 24,),
        )
        conn.execute("ANALYZE requests")
        version = conn.info.server_version

        guide_server = [timed(lambda: conn.execute(GUIDE).fetchall()) for _ in range(args.repeat)]
        psql_process = [
            timed(
                lambda: subprocess.run(
                    [psql, dsn, "-X", "-q", "-c", GUIDE], capture_output=True, check=True
                )
            )
            for _ in range(args.repeat)
        ]
        results: dict[str, tuple[list[float], list[float]]] = {}
        for source in ("view", "auto"):
            server_s: list[float] = []
            process_s: list[float] = []
            cmd = [*base, "--format", "json", "report", "top", "--days", "30", "--source", source]
            for _ in range(args.repeat):
                start = time.perf_counter()
                out = epstats(*cmd).stdout
                process_s.append(time.perf_counter() - start)
                server_s.append(json.loads(out)["query_seconds"])
            results[source] = (server_s, process_s)
        # the table a person sees, once, to check it renders (not timed)
        table = epstats(*base, "report", "top", "--days", "30", "--source", "auto").stdout

    g_srv, g_proc = median(guide_server), median(psql_process)
    print(
        f"machine: {machine()}; PostgreSQL {version}; rows: {args.rows:,} over {args.days} days"
        f" + 1 unrefreshed hour"
    )
    print(f"{'':<34}{'server ms':>12}{'process ms':>12}")
    print(f"{'guide query (psql)':<34}{g_srv * 1000:>12.1f}{g_proc * 1000:>12.1f}")
    for source, (srv, proc) in results.items():
        print(
            f"{'epstats report top --source ' + source:<34}{median(srv) * 1000:>12.1f}"
            f"{median(proc) * 1000:>12.1f}"
        )
    view_srv = g_srv / median(results["view"][0])
    print(
        f"server side, view vs guide: {view_srv:.0f}x (target >= 100x): "
        f"{'PASS' if view_srv >= 100 else 'FAIL'}"
    )
    for source in ("view", "auto"):
        ratio = g_proc / median(results[source][1])
        print(
            f"whole process, {source} vs psql: {ratio:.1f}x (target >= 4x): "
            f"{'PASS' if ratio >= 4 else 'FAIL'}"
        )
    print()
    print(table)


if __name__ == "__main__":
    main()
