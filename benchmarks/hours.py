"""`epstats report top --hours 1` vs `epstats report top --days 1 --source view` (issue 18).

Usage: python -m benchmarks.hours [--rows 10000000] [--days 60] [--repeat 9]

Setup: `rows` requests over `days` days up to now (`epstats generate`), the recommended
indices, the materialized rollup, then an hour of rows the rollup has not seen. Both commands
are then run as whole processes, alternately, `repeat` times each (after one warm-up run of
each); the medians and their ratio are printed with each command's own server time
(query_seconds), and for information `--hours 30` (a raw head, the rest from the rollup).
Target (issue 18): `--hours 1` whole process <= 1.5x `--days 1 --source view`.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import psycopg

from benchmarks.common import arguments, epstats, load, machine, median, server

COMMANDS = {
    "report top --hours 1": ["--hours", "1"],
    "report top --days 1 --source view": ["--days", "1", "--source", "view"],
    "report top --hours 30 (info)": ["--hours", "30"],
}


def main() -> None:
    parser = arguments(__doc__, repeat=9)
    args = parser.parse_args()
    cfg = Path(tempfile.mkdtemp()) / "c.yaml"
    cfg.write_text("view: {strategy: materialized}\n")
    with server(args.version) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        base = ["-c", str(cfg), "--dsn", dsn]
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        start = time.perf_counter()
        load(base, args.rows, args.days, now.strftime("%Y-%m-%d %H:%M:%S%z"))
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
        setup = time.perf_counter() - start
        version = conn.info.server_version
        process: dict[str, list[float]] = {name: [] for name in COMMANDS}
        query: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for turn in range(args.repeat + 1):  # turn 0: a warm-up, not counted
            for name, options in COMMANDS.items():
                cmd = [*base, "--format", "json", "report", "top", *options]
                began = time.perf_counter()
                out = epstats(*cmd).stdout
                seconds = time.perf_counter() - began
                if turn:
                    process[name].append(seconds)
                    query[name].append(json.loads(out)["query_seconds"])
        # what a person sees, once, to check it renders (not timed)
        shown = {w: epstats(*base, "report", "top", "--hours", w).stdout for w in ("1", "30")}

    print(
        f"machine: {machine()}; PostgreSQL {version}; rows: {args.rows:,} over {args.days} days"
        f" + 1 unrefreshed hour; setup {setup:.0f} s; median of {args.repeat}"
    )
    print(f"{'':<40}{'server ms':>12}{'process ms':>12}")
    for name in COMMANDS:
        print(f"{name:<40}{median(query[name]) * 1000:>12.1f}{median(process[name]) * 1000:>12.1f}")
    hours, days = (median(process[name]) for name in list(COMMANDS)[:2])
    ratio = hours / days
    print(
        f"whole process, --hours 1 vs --days 1 --source view: {ratio:.2f}x (target <= 1.5x): "
        f"{'PASS' if ratio <= 1.5 else 'FAIL'}"
    )
    for name in list(COMMANDS)[:2]:
        print(f"{name} runs (s): {', '.join(f'{x:.3f}' for x in process[name])}")
    for hours_shown, text in shown.items():
        print(f"\n--hours {hours_shown}:\n{text}")


if __name__ == "__main__":
    main()
