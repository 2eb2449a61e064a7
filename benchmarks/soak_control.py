"""The soak's control: the same writer alone, then beside N processes that only burn CPU.

Usage: python -m benchmarks.soak_control [--seconds 60] [--rate 200] [--burners 1,2]
       [--dsn DSN | --version 15]

No epstats command, no lock, no I/O: what is left of the insert p99 is what CPU contention
alone costs on this machine. Set against `benchmarks.soak`, it says how much of the soak's
p99 is CPU (and so what no lock or vacuum setting can buy back on the same cores).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import psycopg

from benchmarks.common import machine, server
from benchmarks.soak import DATABASE, WriterProcess, _epstats, memory
from benchmarks.soak_faults import ROOT
from benchmarks.soak_measure import CpuMeter, latency_summary, postmaster_pid

BURN = "while True: pass"


def phase(dsn: str, rate: float, seconds: float, burners: int, postmaster: int | None) -> Any:
    """The writer for `seconds` beside `burners` CPU-bound processes; latency and CPU."""
    hogs = [subprocess.Popen([sys.executable, "-c", BURN], cwd=ROOT) for _ in range(burners)]
    try:
        cpu = CpuMeter(postmaster).start()
        writer = WriterProcess(dsn, rate, f"/control/{burners}", 0)
        time.sleep(seconds)
        result = writer.stop()
        used = cpu.read()
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait()
    return {"burners": burners, "latency": latency_summary(result["latencies"]), "cpu": used}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=60.0, help="per phase")
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--burners", default="1,2", help="comma-separated counts")
    parser.add_argument("--dsn", help="a server to create the database epstats_soak on")
    parser.add_argument("--version", type=int, default=15)
    args = parser.parse_args()
    counts = [int(n) for n in args.burners.split(",")]
    with (
        server(args.version) if not args.dsn else _given(args.dsn) as admin,
        psycopg.connect(admin, autocommit=True) as conn,
    ):
        version = str(conn.execute("SHOW server_version").fetchone()[0])  # type: ignore[index]
        conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {DATABASE}")
        params = psycopg.conninfo.conninfo_to_dict(admin)
        params["dbname"] = DATABASE
        dsn = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
        try:
            with tempfile.TemporaryDirectory() as tmp:
                config = Path(tmp) / "c.yaml"
                config.write_text("{}\n")
                _epstats(config, dsn, "init", "--with-requests-table").check_returncode()
            with psycopg.connect(dsn, autocommit=True) as c:
                postmaster = postmaster_pid(c)
            runs = [phase(dsn, args.rate, args.seconds, n, postmaster) for n in [0, *counts]]
        finally:
            conn.execute(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    print(f"machine: {machine()}, {memory()}; PostgreSQL {version}")
    print(f"{'writer beside':<22}{'p50 ms':>9}{'p99 ms':>9}{'worst ms':>10}{'p99 / alone':>13}")
    alone = runs[0]["latency"]["p99_ms"] or 1.0
    for r in runs:
        lat = r["latency"]
        label = f"{r['burners']} CPU burner(s)" if r["burners"] else "nothing (alone)"
        print(
            f"{label:<22}{lat['p50_ms']:>9.2f}{lat['p99_ms']:>9.2f}{lat['worst_ms']:>10.1f}"
            f"{lat['p99_ms'] / alone:>12.2f}x   machine busy {r['cpu']['machine_busy']:.0%}"
        )
    print(json.dumps({"postgresql": version, "runs": runs}, sort_keys=True))


def _given(dsn: str) -> Any:
    from contextlib import nullcontext

    return nullcontext(dsn)


if __name__ == "__main__":
    main()
