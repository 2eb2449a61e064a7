"""The soak's measurements: latency percentiles, who used the CPU, leftovers, orphaned backends."""

from __future__ import annotations

import os
import re
import resource
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

CC_LEFTOVER = re.compile(r"_cc(new|old)[0-9]*$")
LEFTOVERS = r"""
SELECT c.relname::text, i.indisvalid
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'
  AND (i.indisvalid IS FALSE OR c.relname ~ '_cc(new|old)[0-9]*$'
       OR c.relname LIKE '%\_epstats\_new%')
ORDER BY 1
"""
TICK = float(os.sysconf("SC_CLK_TCK")) if hasattr(os, "sysconf") else 100.0


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of unsorted values; 0 for none."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def latency_summary(latencies: list[float]) -> dict[str, float]:
    """Milliseconds: p50, p99, p99.9, worst; and how many INSERTs."""
    return {
        "inserts": len(latencies),
        "p50_ms": round(percentile(latencies, 50) * 1000, 3),
        "p99_ms": round(percentile(latencies, 99) * 1000, 3),
        "p999_ms": round(percentile(latencies, 99.9) * 1000, 3),
        "worst_ms": round(max(latencies, default=0.0) * 1000, 3),
    }


def _stat(pid: int | str) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, ...]; None when gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2 :].split()


def server_cpu_seconds(postmaster: int) -> float:
    """CPU the server has used: the postmaster with its reaped children (every backend that
    has exited, parallel workers too) plus its live children. A difference of two readings is
    the CPU used in between, backends that came and went included."""
    fields = _stat(postmaster)
    if fields is None:
        return 0.0
    ticks = sum(int(x) for x in fields[11:15])  # utime stime cutime cstime
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        child = _stat(entry.name)
        if child is not None and child[1] == str(postmaster):
            ticks += int(child[11]) + int(child[12])
    return ticks / TICK


def _machine_ticks() -> tuple[float, float]:
    try:
        fields = [float(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except OSError:
        return (0.0, 0.0)
    return sum(fields[:8]), fields[3] + fields[4]  # all, idle + iowait


@dataclass
class CpuMeter:
    """Core-seconds between start and read(): the whole machine's busy time (other users
    included), the server's, our child processes' that ended (writer, epstats commands) and
    this process's (the driver and its sampler)."""

    postmaster: int | None
    machine: tuple[float, float] = (0.0, 0.0)
    server: float = 0.0
    children: float = 0.0
    driver: float = 0.0
    started: float = 0.0

    def start(self) -> CpuMeter:
        self.machine = _machine_ticks()
        self.server = server_cpu_seconds(self.postmaster) if self.postmaster else 0.0
        self.children = _children_cpu()
        self.driver = _own_cpu()
        self.started = time.monotonic()
        return self

    def read(self) -> dict[str, float]:
        total, idle = _machine_ticks()
        d_total, d_idle = total - self.machine[0], idle - self.machine[1]
        wall = time.monotonic() - self.started
        cores = os.cpu_count() or 1
        busy = 1 - d_idle / d_total if d_total > 0 else 0.0
        server = server_cpu_seconds(self.postmaster) - self.server if self.postmaster else 0.0
        return {
            "wall_s": round(wall, 1),
            "cores": cores,
            "machine_busy": round(busy, 3),
            "machine_busy_core_s": round(busy * cores * wall, 1),
            "server_core_s": round(server, 1),
            "clients_core_s": round(_children_cpu() - self.children, 1),
            "driver_core_s": round(_own_cpu() - self.driver, 1),
        }


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def postmaster_pid(conn: psycopg.Connection[Any]) -> int | None:
    """The server's postmaster, when it runs on this machine (the backend's parent)."""
    row = conn.execute("SELECT pg_backend_pid()").fetchone()
    fields = _stat(row[0]) if row else None
    if fields is None:
        return None
    parent = int(fields[1])
    return parent if _stat(parent) is not None else None


def leftovers(conn: psycopg.Connection[Any]) -> dict[str, list[str]]:
    """Invalid indices, REINDEX CONCURRENTLY leftovers and `*_epstats_new` relations."""
    rows = conn.execute(LEFTOVERS).fetchall()
    return {
        "invalid_indexes": [r[0] for r in rows if r[1] is False],
        "cc_leftovers": [r[0] for r in rows if CC_LEFTOVER.search(r[0])],
        "epstats_new": [r[0] for r in rows if "_epstats_new" in r[0]],
    }


def wait_for_orphans(conn: psycopg.Connection[Any], timeout: float) -> tuple[float, int]:
    """Wait until no epstats backend runs (a killed client's statement runs on until it ends);
    the seconds waited and how many were still there at the timeout."""
    start = time.monotonic()
    while True:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
            "AND application_name LIKE 'epstats%'"
        ).fetchone()
        left = int(row[0]) if row else 0
        waited = time.monotonic() - start
        if left == 0 or waited >= timeout:
            return round(waited, 1), left
        time.sleep(0.2)
