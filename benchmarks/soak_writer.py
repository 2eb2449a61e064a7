"""The soak's writer: one connection, one-row INSERTs at a fixed rate, each commit timed.

Run as its own process (`SOAK_DSN=... python -m benchmarks.soak_writer --rate 200 --endpoint
/soak/x`), so that its timing shares no interpreter with the driver. It prints `ready` once
connected, writes until its stdin closes, then prints one JSON document: rows committed, when
each INSERT began (time.monotonic(), comparable across processes) and how long it took to
commit, how far the writer fell behind its schedule, and the errors it met.

The rate is a schedule, not a pause: the k-th INSERT is due at start + k / rate. When an INSERT
was slow, the ones whose turn has passed go at once (an application's queue drains), so the
writer commits about rate x seconds rows whatever happened, and `max_lag` says how far behind it
fell. Autocommit: a row is committed when its INSERT returned without an error.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

APPLICATION_NAME = "soak-writer"
INSERT = (
    'INSERT INTO requests (endpoint, "timestamp", response_time, status) '
    "VALUES (%(endpoint)s, now(), %(seq)s, 200)"
)


def write(
    dsn: str,
    rate: float,
    endpoint: str,
    stop: threading.Event,
    lock_timeout_ms: int = 0,
    ready: Callable[[], None] = lambda: None,
) -> dict[str, Any]:
    """INSERT at `rate` rows/s until `stop` is set; the figures as a JSON-ready dict."""
    began_at: list[float] = []
    latencies: list[float] = []
    errors: list[str] = []
    error_count = 0
    reconnects = 0
    max_lag = 0.0
    interval = 1.0 / rate
    conn = _connect(dsn, lock_timeout_ms)
    ready()
    start = time.monotonic()
    seq = 0
    while not stop.is_set():
        due = start + seq * interval
        now = time.monotonic()
        if due > now:
            time.sleep(due - now)
        began = time.monotonic()
        max_lag = max(max_lag, began - due)
        try:
            conn.execute(INSERT, {"endpoint": endpoint, "seq": seq}, prepare=True)
            latencies.append(time.monotonic() - began)
            began_at.append(began)
        except psycopg.Error as exc:
            error_count += 1
            if len(errors) < 20:
                errors.append(f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}")
            if conn.closed or conn.broken:
                conn = _connect(dsn, lock_timeout_ms)
                reconnects += 1
        seq += 1
    conn.close()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "endpoint": endpoint,
        "attempted": seq,
        "committed": len(latencies),
        "began_at": began_at,
        "latencies": latencies,
        "max_lag": max_lag,
        "errors": errors,
        "error_count": error_count,
        "reconnects": reconnects,
        "seconds": time.monotonic() - start,
        "cpu_seconds": usage.ru_utime + usage.ru_stime,
    }


def _connect(dsn: str, lock_timeout_ms: int) -> psycopg.Connection[Any]:
    conn = psycopg.connect(dsn, autocommit=True, application_name=APPLICATION_NAME)
    # 0: wait as long as the lock takes (the benchmark measures the wait). Otherwise an INSERT
    # that waits longer than this for a lock fails: the test reads that as "blocked", whatever
    # the machine's speed.
    conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
    return conn


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=200.0, help="INSERTs per second")
    parser.add_argument("--endpoint", default="/soak/writer", help="the rows' endpoint")
    parser.add_argument("--lock-timeout-ms", type=int, default=0)
    args = parser.parse_args()
    stop = threading.Event()

    def wait_for_eof() -> None:
        sys.stdin.read()
        stop.set()

    def ready() -> None:
        print("ready", flush=True)

    threading.Thread(target=wait_for_eof, daemon=True).start()
    result = write(
        os.environ["SOAK_DSN"], args.rate, args.endpoint, stop, args.lock_timeout_ms, ready
    )
    json.dump(result, sys.stdout)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
