"""The PostgreSQL settings that fit the guide's memory tier, each against the server's current
value (pg_settings' reset_val: what a session starts with, before epstats sets its own jit).
Pure: the current values, the tier's memory and the pools' connections in, advice out."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

SETTINGS = (
    "max_connections",
    "shared_buffers",
    "effective_cache_size",
    "work_mem",
    "maintenance_work_mem",
    "autovacuum_max_workers",
    "random_page_cost",
    "jit",
)
SHARED_BUFFERS_SHARE = 4  # a quarter of the memory
CACHE_SHARE = 0.75  # shared_buffers and the OS page cache together
SORTS_PER_QUERY = 3  # sorts and hashes a query may run at once, each up to work_mem
MAINTENANCE_SHARE = 16
MAINTENANCE_MAX_MB = 2048
MIN_WORK_MEM_MB = 1
AUTOVACUUM_WORKERS = 3
SSD_RANDOM_PAGE_COST = 1.1
# where a value comes from ALTER ROLE / DATABASE ... SET: a server setting does not override it
ROLE_SOURCES = ("database", "user", "database user", "role or database")
MEMORY_UNITS = {"B": 1 / 1024, "kB": 1, "MB": 1024, "GB": 1024**2, "TB": 1024**3}


@dataclass(frozen=True)
class ServerSetting:
    """One row of pg_settings as a new session of the role starts with it."""

    name: str
    value: str  # reset_val, in `unit`
    unit: str | None
    source: str  # default, configuration file, database, user, ...
    context: str  # postmaster: only a restart applies a change


@dataclass(frozen=True)
class Recommended:
    name: str
    recommended: str  # as postgresql.conf or `-c name=value` takes it
    reason: str
    current: str | None = None  # None: not measured
    source: str | None = None
    change: bool = False
    restart: bool = False

    def measured(self) -> str:
        if self.current is None:
            return f"{self.name}: current value not read"
        return f"{self.name} = {self.current} ({self.source})"

    def text(self) -> str:
        if not self.change and self.current is not None:
            return "no change"
        if self.source in ROLE_SOURCES:
            return (
                f"{self.name} = {self.recommended}: ALTER ROLE / DATABASE ... SET "
                f"{self.name} = {self.recommended} (or RESET {self.name}); set for the role or "
                "database, the server's value (postgresql.conf, -c) does not override it"
            )
        return f"{self.name} = {self.recommended}" + (
            " (a restart applies it)" if self.restart else ""
        )

    def values(self) -> dict[str, Any]:
        return {
            "setting": self.name,
            "current": self.current,
            "recommended": self.recommended,
            "change": self.change,
            "restart": self.restart,
            "source": self.source,
        }


def kilobytes(value: str, unit: str | None) -> float | None:
    """A memory setting in kB (its unit may be '8kB'); None when it is not one."""
    match = re.fullmatch(r"(\d*)\s*(B|kB|MB|GB|TB)", unit or "")
    if match is None:
        return None
    try:
        return float(value) * int(match.group(1) or 1) * MEMORY_UNITS[match.group(2)]
    except ValueError:
        return None


def memory(kb: float) -> str:
    """kB as PostgreSQL writes it: the largest unit that divides it."""
    n = round(kb)
    for unit, size in (("TB", 1024**3), ("GB", 1024**2), ("MB", 1024)):
        if n and n % size == 0:
            return f"{n // size}{unit}"
    return f"{n}kB"


def _mb(kb: float) -> int:
    return int(kb // 1024)


def recommend(
    current: Sequence[ServerSetting],
    memory_mi: int,
    connections: int,
    connections_how: str,
    max_connections: int,
) -> list[Recommended]:
    """Every setting of SETTINGS for a server of `memory_mi` serving `connections` within
    `max_connections` (the measured server's, which work_mem is shared within)."""
    mem_kb = memory_mi * 1024
    shared_kb = mem_kb / SHARED_BUFFERS_SHARE
    work_mb = max(
        MIN_WORK_MEM_MB, _mb((mem_kb - shared_kb) / (max(connections, 1) * SORTS_PER_QUERY))
    )
    maintenance_mb = min(MAINTENANCE_MAX_MB, _mb(mem_kb / MAINTENANCE_SHARE))
    tier = f"{memory_mi}Mi"
    wanted: list[tuple[str, str, str]] = [
        (
            "max_connections",
            str(max_connections),
            "the measured server's: the pools and work_mem are sized within it (the "
            "official image starts with 100)",
        ),
        (
            "shared_buffers",
            memory(_mb(shared_kb) * 1024),
            f"a quarter of the tier's {tier}: PostgreSQL's own cache; the rest is for the "
            "connections' work_mem, maintenance and the OS page cache",
        ),
        (
            "effective_cache_size",
            memory(_mb(mem_kb * CACHE_SHARE) * 1024),
            f"three quarters of {tier}: what shared_buffers and the OS page cache hold "
            "together; the planner's estimate only (allocates nothing), it makes index scans "
            "of the (endpoint, timestamp) index look as cheap as they are",
        ),
        (
            "work_mem",
            memory(work_mb * 1024),
            f"({tier} - shared_buffers) / ({connections} connections x {SORTS_PER_QUERY} sorts "
            f"or hashes each); {connections_how}: reports' sorts fit, and a burst of "
            "connections cannot run the pod out of memory",
        ),
        (
            "maintenance_work_mem",
            memory(maintenance_mb * 1024),
            f"1/{MAINTENANCE_SHARE} of {tier} (at most {MAINTENANCE_MAX_MB // 1024}GB): "
            "VACUUM's dead-row list and CREATE INDEX CONCURRENTLY's sort (indexes apply, the "
            "rollup's unique index); each autovacuum worker may take as much",
        ),
        (
            "autovacuum_max_workers",
            str(AUTOVACUUM_WORKERS),
            "one worker per table at a time (requests, the rollup, epstats' own tables): more "
            "would not vacuum the one large table sooner, and they share "
            "autovacuum_vacuum_cost_limit",
        ),
        (
            "random_page_cost",
            str(SSD_RANDOM_PAGE_COST),
            "for SSD-backed volumes (the usual storage classes): a random read costs little "
            "more than a sequential one; the default 4 assumes spinning disks and steers "
            "reports away from the indices",
        ),
        (
            "jit",
            "off",
            "the API's, reports' and checks' queries take milliseconds; compiling one past "
            "jit_above_cost takes tens (benchmarks/jit.py); epstats' own read-only sessions "
            "turn it off whatever the server says",
        ),
    ]
    found = {s.name: s for s in current}
    out = []
    for name, value, reason in wanted:
        setting = found.get(name)
        if setting is None:
            out.append(Recommended(name, value, reason))
            continue
        shown, differs = _compare(setting, name, value)
        out.append(
            Recommended(
                name,
                value,
                reason,
                current=shown,
                source=setting.source,
                change=differs,
                restart=differs and setting.context == "postmaster",
            )
        )
    return out


def _compare(setting: ServerSetting, name: str, value: str) -> tuple[str, bool]:
    """The current value as a person reads it, and whether it differs from `value`."""
    kb = kilobytes(setting.value, setting.unit)
    if kb is not None:
        wanted = kilobytes(value[:-2], value[-2:])
        return memory(kb), wanted is None or round(kb) != round(wanted)
    if name == "random_page_cost":
        return setting.value, float(setting.value) != float(value)
    return setting.value, setting.value != value
