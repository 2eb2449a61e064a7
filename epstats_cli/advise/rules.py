"""Resource, pool and layout advice: the guide's sizing rules as data plus pure functions,
applied to measured size and traffic (advise.measure reads them from the server;
advise.kubernetes writes the advice as manifests)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from epstats_cli.advise.server_settings import ServerSetting, recommend

GIB = 1024**3

# The guide's rules, as data.
API_BASE_CPU_M = 100
API_CPU_STEP_M = 50  # per 100 req/s of a pod's peak load
API_RPS_STEP = 100
API_MEMORY_MI = 128
API_HEAVY_MEMORY_MI = 256
API_MIN_PODS, API_MAX_PODS = 3, 5
HPA_CPU_TARGET = 70
# (upper bound in bytes, inclusive; cpu millicores; memory Mi)
POSTGRES_TIERS = ((10 * GIB - 1, 500, 1024), (50 * GIB, 1000, 2048), (math.inf, 2000, 4096))
READ_REPLICA_RATIO = 20  # reads per write at which replicas pay off
REDIS_CACHE = (100, 256)
REDIS_PERSISTENT = (200, 512)
REDIS_CLUSTER_BYTES = 2 * GIB
DB_POOL = (5, 20)
REDIS_POOL = (2, 10)
ADMIN_CONNECTIONS = 5  # kept free for epstats, psql and replication tools
CACHE_TTLS = (
    ("high-change: today's stats, the top-N of the last hour", "1-5 min", 300),
    ("medium-change: stats of the last few days (still refreshed)", "30-60 min", 3600),
    ("reference: settled days, endpoint lists", "12-24 h", 86400),
)
# the bytes a day adds to the rollup, against those it adds to the raw table, above which the
# rollup saves little (at 1 or more, it is larger than the raw table)
ROLLUP_SAVES_LITTLE = 0.5
# a rollup row (with its unique index) against a raw row (with its indices), in bytes, when
# no rollup exists to measure: its thirteen columns are wider (2.0-2.6x measured here)
ROLLUP_ROW_WIDER = 2.0
INCREMENTAL_REFRESH_SECONDS = 60
INCREMENTAL_TABLE_BYTES = 5 * GIB
PARTITION_TABLE_BYTES = 100 * GIB

Strategy = Literal["materialized", "incremental"]
TrafficSource = Literal["raw", "raw rows", "rollup"]  # where the request rate was measured
Level = Literal["info", "warning"]
SETTINGS_AREA = "settings"  # the server settings of the memory tier (server_settings.py)


@dataclass(frozen=True)
class Measured:
    database_bytes: int
    table_bytes: int
    table_rows: int
    rows_per_day: float
    avg_rps: float
    peak_rps: float
    reads: int
    writes: int
    max_connections: int
    reserved_connections: int
    rollup_bytes: int | None = None
    rollup_strategy: Strategy | None = None  # None: no rollup reports can use
    refresh_seconds: float | None = None
    redundant_indexes: tuple[str, ...] = ()
    traffic_source: TrafficSource = "raw"
    server_version_num: int = 0  # the manifests run this major version
    database: str = ""  # and create this database
    # who owns the source table and the rollup: (the relation as ALTER ... OWNER TO names it,
    # "TABLE public.requests"; its owner; whether the owner is a superuser), for the grants
    # written above the CronJobs
    owners: tuple[tuple[str, str, bool], ...] = ()
    # the rows a day adds to the rollup (one per endpoint) against the raw rows it brings:
    # counted in the rollup ("rollup"), or projected from the raw rows' distinct endpoints per
    # day ("projected", measured as rollup_rows_how says); None: nothing to tell it from
    rollup_rows_per_day: float | None = None
    rollup_raw_rows_per_day: float | None = None
    rollup_rows_source: Literal["rollup", "projected"] | None = None
    rollup_rows_how: str = ""
    rollup_row_bytes: float | None = None  # the rollup's bytes per row (None: no rollup)
    normalization: str = "off"  # source.endpoint_ids/endpoint_rules, described
    settings: tuple[ServerSetting, ...] = ()  # server_settings.SETTINGS as pg_settings has them


@dataclass(frozen=True)
class Options:
    heavy_analysis: bool = False
    redis_persistence: bool = False
    pods: int = API_MIN_PODS


@dataclass
class Advice:
    area: str
    rule: str
    measured: str
    recommendation: str
    level: Level = "info"
    values: dict[str, Any] = field(default_factory=dict)


def api_cpu_millicores(rps_per_pod: float) -> int:
    """100m, plus 50m for every (whole) 100 req/s a pod serves at peak."""
    return API_BASE_CPU_M + API_CPU_STEP_M * int(max(0.0, rps_per_pod) // API_RPS_STEP)


def api_memory_mi(heavy_analysis: bool) -> int:
    return API_HEAVY_MEMORY_MI if heavy_analysis else API_MEMORY_MI


def postgres_tier(database_bytes: int) -> tuple[int, int]:
    """(cpu millicores, memory Mi): under 10 GB, 10-50 GB, over 50 GB (GB = 1024^3 bytes)."""
    for upper, cpu, mem in POSTGRES_TIERS:
        if database_bytes <= upper:
            return cpu, mem
    raise AssertionError("unreachable")


def reads_dominate(reads: int, writes: int) -> bool:
    return reads >= READ_REPLICA_RATIO * max(writes, 1)


def redis_resources(persistence: bool, dataset_bytes: int) -> tuple[int, int, bool]:
    """(cpu m, memory Mi, use Redis Cluster)."""
    cpu, mem = REDIS_PERSISTENT if persistence else REDIS_CACHE
    return cpu, mem, dataset_bytes > REDIS_CLUSTER_BYTES


def pool_fits(
    max_pods: int, pool_max: int, max_connections: int, reserved: int
) -> tuple[bool, int]:
    """Whether max_pods x pool_max connections fit, and the largest per-pod pool that does."""
    available = max_connections - reserved - ADMIN_CONNECTIONS
    return max_pods * pool_max <= available, max(0, available // max(max_pods, 1))


def _gib(n: float) -> str:
    """GB for thresholds and big sizes, MB below 1 GB (1024-based, as pg_size_pretty)."""
    if n >= GIB or n == 0:
        return f"{n / GIB:,.2f} GB"
    return f"{n / 1024**2:,.1f} MB"


def advise(m: Measured, opts: Options = Options()) -> list[Advice]:
    """Every rule applied to the measurements."""
    out: list[Advice] = []
    pods = max(API_MIN_PODS, opts.pods)
    per_pod = m.peak_rps / pods
    cpu = api_cpu_millicores(per_pod)
    mem = api_memory_mi(opts.heavy_analysis)
    out.append(
        Advice(
            "api",
            "100m CPU and 128Mi per pod, +50m CPU per 100 req/s; 256Mi for heavy analysis",
            f"peak {m.peak_rps:,.1f} req/s over {pods} pods = {per_pod:,.1f} req/s per pod"
            f" (average {m.avg_rps:,.1f} req/s, from the {m.traffic_source})",
            f"requests: cpu {cpu}m, memory {mem}Mi per pod",
            values={"cpu_m": cpu, "memory_mi": mem, "rps_per_pod": per_pod},
        )
    )
    out.append(
        Advice(
            "api",
            "3-5 pods; HPA at 70% CPU",
            f"{pods} pods at peak",
            f"HorizontalPodAutoscaler: min {API_MIN_PODS}, max {max(API_MAX_PODS, pods)}, "
            f"target {HPA_CPU_TARGET}% CPU",
            values={"min": API_MIN_PODS, "max": max(API_MAX_PODS, pods), "cpu": HPA_CPU_TARGET},
        )
    )
    out.append(
        Advice(
            "api",
            "a PodDisruptionBudget for critical components",
            f"min {API_MIN_PODS} pods",
            f"PodDisruptionBudget: minAvailable {API_MIN_PODS - 1}",
            values={"min_available": API_MIN_PODS - 1},
        )
    )
    pg_cpu, pg_mem = postgres_tier(m.database_bytes)
    out.append(
        Advice(
            "postgresql",
            "under 10 GB 500m/1Gi; 10-50 GB 1000m/2Gi; over 50 GB 2000m/4Gi",
            f"database {_gib(m.database_bytes)}",
            f"cpu {pg_cpu}m, memory {pg_mem}Mi",
            values={"cpu_m": pg_cpu, "memory_mi": pg_mem},
        )
    )
    replicas = reads_dominate(m.reads, m.writes)
    ratio = m.reads / max(m.writes, 1)
    out.append(
        Advice(
            "postgresql",
            f"read replicas when reads dominate ({READ_REPLICA_RATIO}:1 or more)",
            f"{m.reads:,} tuples read, {m.writes:,} written ({ratio:,.1f}:1)",
            "add a read replica for reports and dashboards"
            if replicas
            else "no read replica needed yet",
            values={"read_replica": replicas},
        )
    )
    dataset = m.rollup_bytes or 0
    r_cpu, r_mem, cluster = redis_resources(opts.redis_persistence, dataset)
    out.append(
        Advice(
            "redis",
            "caching 100m/256Mi; with persistence 200m/512Mi; Redis Cluster above 2 GB",
            f"cached data ~ the rollup, {_gib(dataset)}; persistence "
            f"{'on' if opts.redis_persistence else 'off'}",
            f"cpu {r_cpu}m, memory {r_mem}Mi" + ("; use Redis Cluster" if cluster else ""),
            values={"cpu_m": r_cpu, "memory_mi": r_mem, "cluster": cluster},
        )
    )
    for what, ttl, seconds in CACHE_TTLS:
        out.append(
            Advice(
                "redis",
                "cache TTL by how often the data changes",
                what,
                f"TTL {ttl}",
                values={"ttl_seconds": seconds},
            )
        )
    max_pods = max(API_MAX_PODS, pods)
    fits, largest = pool_fits(max_pods, DB_POOL[1], m.max_connections, m.reserved_connections)
    out.append(
        Advice(
            "pools",
            "database pool 5-20 per pod, within max_connections",
            f"max_connections {m.max_connections} ({m.reserved_connections} reserved, "
            f"{ADMIN_CONNECTIONS} kept for admin); up to {max_pods} pods x {DB_POOL[1]}",
            f"pool min {DB_POOL[0]}, max {DB_POOL[1]} per pod"
            if fits
            else f"{max_pods} x {DB_POOL[1]} = {max_pods * DB_POOL[1]} would exhaust "
            "max_connections: "
            f"cap the pool at {largest} per pod, raise max_connections, or put PgBouncer in front",
            level="info" if fits else "warning",
            values={"min": DB_POOL[0], "max": DB_POOL[1] if fits else largest, "fits": fits},
        )
    )
    out.append(
        Advice(
            "pools",
            "Redis pool 2-10 per pod",
            f"up to {max_pods} pods",
            f"pool min {REDIS_POOL[0]}, max {REDIS_POOL[1]} per pod",
            values={"min": REDIS_POOL[0], "max": REDIS_POOL[1]},
        )
    )
    pool_per_pod = DB_POOL[1] if fits else largest
    connections = max(1, min(max_pods * pool_per_pod + ADMIN_CONNECTIONS, m.max_connections))
    how = (
        f"{max_pods} pods x {pool_per_pod} + {ADMIN_CONNECTIONS} admin, within max_connections "
        f"{m.max_connections}"
    )
    for r in recommend(m.settings, pg_mem, connections, how, m.max_connections):
        out.append(Advice(SETTINGS_AREA, r.reason, r.measured(), r.text(), values=r.values()))
    slow = m.refresh_seconds is not None and m.refresh_seconds > INCREMENTAL_REFRESH_SECONDS
    big = m.table_bytes > INCREMENTAL_TABLE_BYTES
    if m.rollup_strategy == "materialized" and (slow or big):
        out.append(
            Advice(
                "epstats",
                f"incremental rollup when a full refresh takes over "
                f"{INCREMENTAL_REFRESH_SECONDS}s or the table passes "
                f"{_gib(INCREMENTAL_TABLE_BYTES)}",
                f"last refresh {m.refresh_seconds or 0:,.1f}s, table {_gib(m.table_bytes)}",
                "set view.strategy: incremental and run epstats view build --replace",
                level="warning",
            )
        )
    elif m.rollup_strategy is None:
        out.append(
            Advice(
                "epstats",
                "reports read a daily rollup",
                "no rollup",
                "epstats view build",
                level="warning",
            )
        )
    else:
        out.append(
            Advice(
                "epstats",
                "keep the rollup's refresh cheap",
                f"{m.rollup_strategy} rollup, table {_gib(m.table_bytes)}",
                "no change",
            )
        )
    growth_advice = rollup_growth(m)
    if growth_advice is not None:
        out.append(growth_advice)
    growth = m.rows_per_day * (m.table_bytes / m.table_rows) if m.table_rows else 0.0
    if m.table_bytes > PARTITION_TABLE_BYTES:
        out.append(
            Advice(
                "epstats",
                f"partition the table by month above {_gib(PARTITION_TABLE_BYTES)}",
                f"table {_gib(m.table_bytes)}, growing {_gib(growth)}/day",
                "range-partition requests by timestamp (monthly); drop old months instead of "
                "DELETE",
                level="warning",
            )
        )
    else:
        days_left = ((PARTITION_TABLE_BYTES - m.table_bytes) / growth) if growth else None
        out.append(
            Advice(
                "epstats",
                f"partition the table by month above {_gib(PARTITION_TABLE_BYTES)}",
                f"table {_gib(m.table_bytes)}, growing {_gib(growth)}/day",
                "no partitioning needed"
                + (f" (about {days_left:,.0f} days until it is)" if days_left else ""),
            )
        )
    out.append(
        Advice(
            "epstats",
            "drop indices that another index covers",
            f"{len(m.redundant_indexes)} redundant",
            "epstats indexes apply --prune-redundant (" + ", ".join(m.redundant_indexes) + ")"
            if m.redundant_indexes
            else "nothing to drop",
            level="warning" if m.redundant_indexes else "info",
        )
    )
    return out


def rollup_growth(m: Measured) -> Advice | None:
    """Whether the rollup saves anything: one row per endpoint and day against the raw rows of
    a day. Past ROLLUP_SAVES_LITTLE of them it saves little, at as many it is larger than the
    raw table; the fix is endpoints normalized into routes."""
    per_day, raw_per_day = m.rollup_rows_per_day, m.rollup_raw_rows_per_day
    if per_day is None or not raw_per_day:
        return None
    has = m.rollup_rows_source == "rollup"
    raw_row = m.table_bytes / m.table_rows if m.table_rows and m.table_bytes else None
    if raw_row is None:
        width, wider = "", 1.0
    elif has and m.rollup_row_bytes:
        wider = m.rollup_row_bytes / raw_row
        width = f"; a rollup row takes {m.rollup_row_bytes:,.0f} bytes, a raw row {raw_row:,.0f}"
    else:
        wider = ROLLUP_ROW_WIDER
        width = f"; a rollup row takes about {wider:.0f}x a raw row's {raw_row:,.0f} bytes"
    ratio = per_day * wider / raw_per_day  # the bytes a day adds, rollup against raw table
    measured = (
        f"{'the rollup adds' if has else 'a rollup would add'} {per_day:,.0f} rows a day "
        f"(one per endpoint) for {raw_per_day:,.0f} raw rows{width}: {ratio:.0%} of the "
        "raw table's growth"
        + ("" if has else f"; {m.rollup_rows_how}")
        + (f"; normalization {m.normalization}" if m.normalization != "off" else "")
    )
    values = {
        "rollup_rows_per_day": per_day,
        "raw_rows_per_day": raw_per_day,
        "rollup_growth_ratio": round(ratio, 4),
    }
    rule = (
        f"a rollup saves little past {ROLLUP_SAVES_LITTLE:.0%} of the bytes the raw table "
        "grows by a day, and is larger than the raw table at as many"
    )
    if ratio <= ROLLUP_SAVES_LITTLE:
        return Advice("epstats", rule, measured, "no change", values=values)
    if m.normalization == "off":
        fix = (
            "if endpoints are paths with ids, normalize them: source.endpoint_ids: auto (and "
            "source.endpoint_rules for what it cannot guess; epstats endpoints shows their "
            "shapes), then epstats view build --replace"
        )
    else:
        fix = (
            "add source.endpoint_rules for what endpoint_ids cannot guess (epstats endpoints "
            "shows their shapes), then epstats view build --replace"
        )
    if ratio >= 1:
        state = "is larger than" if has else "would be larger than"
    else:
        state = "saves little over" if has else "would save little over"
    return Advice(
        "epstats",
        rule,
        measured,
        f"the rollup {state} the raw table: {fix}",
        level="warning",
        values=values,
    )
