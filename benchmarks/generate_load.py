"""`epstats generate` vs one plain INSERT ... SELECT ... FROM generate_series of the same size.

Usage: python benchmarks/generate_load.py [--rows 10000000] [--repeat 2] [--version 18]
Both load an unindexed table (TRUNCATE + CHECKPOINT before each run), alternately.
Target (issue 8): epstats at most 1.3x the plain statement's time.
"""

from __future__ import annotations

import argparse

import psycopg

from benchmarks.common import epstats, machine, median, server, timed

PLAIN = """
INSERT INTO requests (endpoint, timestamp, response_time, status)
SELECT '/api/v1/e' || (random() * 20)::int, now() - random() * interval '60 days',
       random() * 100, 200
FROM generate_series(1, %s)
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--version", type=int, default=18)
    args = parser.parse_args()
    with server(args.version) as dsn:
        epstats("--dsn", dsn, "-q", "init", "--with-requests-table")
        with psycopg.connect(dsn, autocommit=True) as conn:
            version = conn.info.server_version
            plain: list[float] = []
            ours: list[float] = []

            def reset() -> None:
                conn.execute("TRUNCATE requests")
                conn.execute("CHECKPOINT")

            for _ in range(args.repeat):
                reset()
                plain.append(timed(lambda: conn.execute(PLAIN, (args.rows,))))
                reset()
                ours.append(
                    timed(
                        lambda: epstats(
                            "--dsn",
                            dsn,
                            "-q",
                            "generate",
                            "--rows",
                            str(args.rows),
                            "--days",
                            "60",
                            "--seed",
                            "7",
                        )
                    )
                )
    p, o = median(plain), median(ours)
    print(f"machine: {machine()}; PostgreSQL {version}; rows: {args.rows:,}")
    print(f"{'load':<44}{'median s':>10}  runs")
    print(
        f"{'plain INSERT ... SELECT generate_series':<44}{p:>10.2f}  "
        + ", ".join(f"{t:.2f}" for t in plain)
    )
    print(
        f"{'epstats generate (whole process)':<44}{o:>10.2f}  "
        + ", ".join(f"{t:.2f}" for t in ours)
    )
    ratio = o / p
    print(f"ratio: {ratio:.2f}x (target <= 1.3x): {'PASS' if ratio <= 1.3 else 'FAIL'}")


if __name__ == "__main__":
    main()
