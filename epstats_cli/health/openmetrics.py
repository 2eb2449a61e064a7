"""`check` and `status` as OpenMetrics text: gauges only, each family with `# TYPE`, `# UNIT`
(when it has one) and `# HELP`, no timestamps, ending with `# EOF`. The same text is valid
Prometheus text format 0.0.4 (which reads `# UNIT` and `# EOF` as comments), so node_exporter's
textfile collector reads it. Pure: results or the status document in, text out."""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from epstats_cli.health.result import CheckResult, Perf, overall

PREFIX = "epstats_"

# What each perfdata value measures, for `# HELP` (a check's own value is named after it).
PERF_HELP = {
    "analyze_age": "Time since the source table was last analyzed",
    "vacuum_age": "Time since the source table was last vacuumed",
    "dead_tuples": "Dead tuples as a share of all tuples of the source table",
    "xid_age": "The source table's transaction-ID age as a share of autovacuum_freeze_max_age",
    "invalid_indexes": "Invalid indices on the source table that no running build will finish",
    "missing_indexes": "Recommended indices that are missing",
    "redundant_indexes": "Indices another index covers",
    "view_staleness": "Age of the oldest raw row the rollup has not aggregated",
    "future_rows": "How far ahead of the server's clock the newest row is dated",
    "late_rows": "Rows the verify task found later than view.lookback",
    "maintain_failed": "Maintenance tasks whose latest runs failed",
    "table_bloat": "Estimated bloat of the source table",
    "index_bloat": "Estimated bloat of the most bloated index",
    "long_transactions": "Age of the oldest transaction, prepared transaction or slot holding "
    "back xmin",
    "long_transactions_slot_xmin_age": "Transactions each replication slot's xmin holds back",
    "ingest_stalled": "Age of the newest row dated up to now (no row in the window looked "
    "at: the window, a lower bound)",
    "connections": "Connections in use as a share of max_connections less reserved ones",
    "connections_used": "Client connections to the server",
    "connections_available": "max_connections less the reserved connections",
    "connections_pool_need": "Connections the guide's pools would need (pods x pool + admin)",
    "replication_lag": "Replay lag of the worst standby (or of this standby)",
    "replication_lag_standby": "Replay lag of each standby",
    "replication_behind": "WAL each standby has still to replay",
    "database_size": "Size of the database",
    "database_size_tier": "The guide's resource tier of the database (1: under 10 GB, "
    "2: 10-50 GB, 3: over 50 GB)",
    "sequence_exhaustion": "Share used of the fullest sequence feeding the source table",
    "sequence_used": "Share used of each sequence feeding the source table",
    "endpoint_cardinality": "Distinct endpoints per day (normalized ones when normalization "
    "is on): the rollup's rows per day",
    "latency_p95": "The highest p95 response time over check.latency_window of the endpoints "
    "check.latency_p95 judges, against its rule",
    "latency_p95_endpoint": "p95 response time over check.latency_window of each endpoint "
    "past its check.latency_p95 threshold",
}


@dataclass
class Family:
    """One metric family: a gauge with its samples (labels, value)."""

    name: str
    help: str
    unit: str = ""
    samples: list[tuple[tuple[tuple[str, str], ...], float]] = field(default_factory=list)


class Families:
    """Families in the order they are first named; a name is one family, whatever adds to it."""

    def __init__(self) -> None:
        self._by_name: dict[str, Family] = {}

    def add(
        self,
        stem: str,
        help: str,
        value: float | None,
        labels: Iterable[tuple[str, str]] = (),
        unit: str = "",
    ) -> None:
        """A sample of the gauge `epstats_<stem>[_<unit>]` (nothing when value is None)."""
        if value is None:
            return
        name = metric_name(stem, unit)
        family = self._by_name.setdefault(name, Family(name, help, unit))
        family.samples.append((tuple(labels), float(value)))

    def text(self) -> str:
        lines = []
        for f in self._by_name.values():
            lines.append(f"# TYPE {f.name} gauge")
            if f.unit:
                lines.append(f"# UNIT {f.name} {f.unit}")
            lines.append(f"# HELP {f.name} {_escape_help(f.help)}")
            for labels, value in f.samples:
                lines.append(f"{f.name}{_labels(labels)} {_number(value)}")
        lines.append("# EOF")
        return "\n".join(lines) + "\n"


def metric_name(stem: str, unit: str = "") -> str:
    """`epstats_<stem>_<unit>`, with anything a metric name may not hold made `_`."""
    name = PREFIX + re.sub(r"[^a-zA-Z0-9_]", "_", stem)
    if unit and not name.endswith("_" + unit):
        name += "_" + unit
    return name


def _escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def _escape_label(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Sequence[tuple[str, str]]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{re.sub(r"[^a-zA-Z0-9_]", "_", k)}="{_escape_label(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _number(value: float) -> str:
    """Integers without a fraction, other numbers as Python writes floats; a NaN or an
    infinity as OpenMetrics spells them (NaN, +Inf, -Inf: bad data, an infinite p95)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 2**53:
        return str(int(value))
    return repr(value)


# --- check ------------------------------------------------------------------------------------


def _perf(families: Families, check: str, perf: Perf) -> None:
    about = PERF_HELP.get(perf.label, f"The value of check {check}")
    families.add(perf.label, about, perf.value, perf.labels, perf.unit)
    for level, threshold in (("warning", perf.warning), ("critical", perf.critical)):
        families.add(
            perf.label + "_threshold",
            f"The warning and critical thresholds of {perf.label}",
            threshold,
            (*perf.labels, ("level", level)),
            perf.unit,
        )


def check_metrics(results: Sequence[CheckResult]) -> str:
    """The checks as gauges: the overall state, each check's state, and every perfdata value
    (and its thresholds) as a metric of its own."""
    families = Families()
    states = "0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN"
    families.add(
        "state",
        f"The overall state of epstats check, as its exit code ({states})",
        int(overall(results)),
    )
    for r in results:
        families.add(
            "check_state", f"The state of each check ({states})", int(r.state), [("check", r.name)]
        )
    for r in results:
        for perf in r.perfs():
            _perf(families, r.name, perf)
    return families.text()


# --- status -----------------------------------------------------------------------------------


def _seconds(value: Any) -> float | None:
    """A timestamp as Unix seconds."""
    return value.timestamp() if isinstance(value, dt.datetime) else None


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    return None if value is None else float(value)


TABLE_GAUGES = (
    ("estimated_rows", "table_estimated_rows", "", "Estimated rows (reltuples)"),
    ("live_tuples", "table_live_tuples", "", "Live tuples"),
    ("dead_tuples", "table_dead_tuples", "", "Dead tuples"),
    ("modified_since_analyze", "table_modified_since_analyze", "", "Rows modified since ANALYZE"),
    ("heap_bytes", "table_heap", "bytes", "Size of the heap"),
    ("index_bytes", "table_indexes", "bytes", "Size of the indices"),
    ("toast_bytes", "table_toast", "bytes", "Size of the TOAST table"),
    ("total_bytes", "table_total", "bytes", "Total size"),
    ("xid_age", "table_xid_age", "", "Transaction-ID age (age of relfrozenxid)"),
)
TABLE_TIMES = {
    "last_vacuum": "vacuumed",
    "last_autovacuum": "autovacuumed",
    "last_analyze": "analyzed",
    "last_autoanalyze": "autoanalyzed",
}


def status_metrics(doc: Mapping[str, Any]) -> str:
    """`status` as gauges: server, source table, indices, rollup and maintenance tasks (a
    section that could not be read is left out)."""
    families = Families()
    srv = doc["server"]
    db = [("database", str(srv["database"]))]
    # not epstats_database_size_bytes: check's perfdata has that name (both may feed the
    # same textfile collector, which wants one meaning per name)
    families.add("database", "Size of the database", srv["database_bytes"], db, "bytes")
    families.add(
        "server_in_recovery", "1 on a standby, 0 on a primary", _num(srv["in_recovery"]), db
    )
    families.add("server_max_connections", "max_connections", srv["max_connections"], db)
    families.add(
        "server_started_timestamp",
        "When the server started (Unix time)",
        _seconds(srv["started_at"]),
        db,
        "seconds",
    )
    tbl = doc["table"]
    table = [("table", str(tbl["name"]))]
    families.add("table_present", "1 when the source table exists", _num(tbl["present"]), table)
    if tbl["present"]:
        for key, stem, unit, about in TABLE_GAUGES:
            families.add(stem, f"{about} of the source table", _num(tbl.get(key)), table, unit)
        for key, done in TABLE_TIMES.items():
            families.add(
                f"table_{key}_timestamp",
                f"When the source table was last {done} (Unix time)",
                _seconds(tbl.get(key)),
                table,
                "seconds",
            )
        _status_indexes(families, doc.get("indexes"), table)
        _status_rollup(families, doc.get("rollup"))
        _status_tasks(families, doc.get("maintenance"))
        _status_endpoints(families, doc.get("endpoints"), table)
    return families.text()


def _status_indexes(families: Families, indexes: Any, table: list[tuple[str, str]]) -> None:
    if not isinstance(indexes, list):
        return
    for i in indexes:
        labels = [*table, ("index", str(i["name"]))]
        families.add(
            "index_present",
            "1 when the index exists (0: recommended, missing)",
            0 if i.get("missing") else 1,
            labels,
        )
        families.add("index_valid", "1 when the index is valid", _num(i["valid"]), labels)
        families.add("index_size", "Size of the index", _num(i["size_bytes"]), labels, "bytes")
        families.add(
            "index_recommended",
            "1 when epstats recommends the index",
            _num(i["recommended"]),
            labels,
        )
        families.add(
            "index_redundant",
            "1 when another index covers it",
            _num(i["redundant_of"] is not None),
            labels,
        )


def _status_rollup(families: Families, rollup: Any) -> None:
    if not isinstance(rollup, dict):
        return
    labels = [("rollup", str(rollup["name"]))]
    families.add(
        "rollup_usable", "1 when reports can use the rollup", _num(rollup["usable"]), labels
    )
    if not rollup["usable"]:
        return
    families.add("rollup_rows", "Rows of the rollup", _num(rollup["rows"]), labels)
    families.add("rollup_size", "Size of the rollup", _num(rollup["size_bytes"]), labels, "bytes")
    families.add(
        "rollup_watermark_timestamp",
        "The instant the rollup is complete through (Unix time; absent: never refreshed)",
        _seconds(rollup["watermark"]),
        labels,
        "seconds",
    )
    age = rollup["unaggregated_age_seconds"] if rollup["oldest_unaggregated"] else 0.0
    families.add(
        "rollup_unaggregated_age",
        "Age of the oldest raw row the rollup has not aggregated (0: up to date)",
        _num(age),
        labels,
        "seconds",
    )


def _status_endpoints(families: Families, endpoints: Any, table: list[tuple[str, str]]) -> None:
    if not isinstance(endpoints, dict):
        return
    about = "Distinct endpoints per day of the source table"
    for kind, key in (("stored", "raw_per_day"), ("normalized", "normalized_per_day")):
        labels = [*table, ("endpoints", kind)]
        families.add("endpoints_per_day", about, _num(endpoints[key]), labels)


def _status_tasks(families: Families, tasks: Any) -> None:
    if not isinstance(tasks, list):
        return
    for m in tasks:
        labels = [("task", str(m["task"]))]
        families.add(
            "task_last_run_timestamp",
            "When the task last ran (Unix time)",
            _seconds(m["last_run"]),
            labels,
            "seconds",
        )
        families.add(
            "task_last_ok_timestamp",
            "When the task last succeeded (Unix time)",
            _seconds(m["last_ok"]),
            labels,
            "seconds",
        )
        families.add(
            "task_next_due_timestamp",
            "When the task is next due (Unix time)",
            _seconds(m["next_due"]),
            labels,
            "seconds",
        )
        families.add("task_due", "1 when the task is due now", _num(m["due_now"]), labels)
        if m["last_status"] is not None:
            families.add(
                "task_last_failed",
                "1 when the task's last run failed",
                _num(m["last_status"] == "failed"),
                labels,
            )
