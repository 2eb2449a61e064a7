"""`epstats check`: gather the facts each check needs, then judge them (Nagios states)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable

import psycopg

from epstats_cli.db import Session
from epstats_cli.db import now as db_now
from epstats_cli.errors import EpstatsError, first_line
from epstats_cli.health import (
    judges,
    partition_judges,
    replication_judges,
    row_judges,
    server_judges,
)
from epstats_cli.health.facts import FactSource, Gatherer, SourceMissing
from epstats_cli.health.judges import CheckResult, Thresholds

Judge = Callable[[FactSource, Thresholds, dt.datetime], CheckResult]

# name -> the facts it reads and the judge of them, in the order `check` reports them
_CHECKS: dict[str, Judge] = {
    "connect": lambda f, t, now: judges.connect(f.connection().version, f.connection().in_recovery),
    "analyze_age": lambda f, t, now: judges.analyze_age(f.table(), t, now),
    "vacuum_age": lambda f, t, now: judges.vacuum_age(f.table(), t, now),
    "dead_tuples": lambda f, t, now: judges.dead_tuples(f.table(), t, now),
    "xid_age": lambda f, t, now: judges.xid_age(f.table(), f.server(), t, now),
    "invalid_indexes": lambda f, t, now: judges.invalid_indexes(f.indexes(), t, now),
    "missing_indexes": lambda f, t, now: judges.missing_indexes(f.indexes(), t, now),
    "redundant_indexes": lambda f, t, now: judges.redundant_indexes(f.indexes(), t, now),
    "view_staleness": lambda f, t, now: judges.view_staleness(f.rollup(), t, now),
    "future_rows": lambda f, t, now: row_judges.future_rows(f.future_rows(), t, now),
    "late_rows": lambda f, t, now: row_judges.late_rows(f.late_rows(), t, now),
    "maintain_failed": lambda f, t, now: judges.maintain_failed(f.maintenance(), t, now),
    "table_bloat": lambda f, t, now: judges.table_bloat(f.table_bloat(), t, now),
    "index_bloat": lambda f, t, now: judges.index_bloat(f.index_bloat(), t, now),
    "pooler": lambda f, t, now: judges.pooler(f.pooler(), t, now),
    "long_transactions": lambda f, t, now: server_judges.long_transactions(
        f.transactions(), t, now
    ),
    "ingest_stalled": lambda f, t, now: row_judges.ingest_stalled(f.newest_row(), t, now),
    "connections": lambda f, t, now: server_judges.connections(f.connections(), t, now),
    "replication_lag": lambda f, t, now: replication_judges.replication_lag(
        f.replication(), t, now
    ),
    "database_size": lambda f, t, now: server_judges.database_size(f.server(), t, now),
    "sequence_exhaustion": lambda f, t, now: server_judges.sequence_exhaustion(
        f.sequences(), t, now
    ),
    "endpoint_cardinality": lambda f, t, now: row_judges.endpoint_cardinality(
        f.endpoint_cardinality(), t, now
    ),
    "latency_p95": lambda f, t, now: row_judges.latency_p95(f.latency(), t, now),
    "partition_runway": lambda f, t, now: partition_judges.partition_runway(
        f.partition_runway(), t, now
    ),
}
CHECKS = tuple(_CHECKS)
# The threshold pair under `check:` each check is judged by: both levels 0 turn it off.
LEVELS_KEY = {
    "analyze_age": "overdue",
    "vacuum_age": "overdue",
    "dead_tuples": "dead_tuple_ratio",
    "xid_age": "xid_age_ratio",
    "view_staleness": "overdue",
    "future_rows": "future_rows",
    "table_bloat": "table_bloat",
    "index_bloat": "index_bloat",
    "long_transactions": "long_transactions",
    "ingest_stalled": "ingest_stalled",
    "connections": "connections",
    "replication_lag": "replication_lag",
    "sequence_exhaustion": "sequence_exhaustion",
    "endpoint_cardinality": "endpoint_cardinality",
    "partition_runway": "partition_runway",
}
# checks of statistics each node counts for itself (pg_stat_user_tables): on a hot standby
# they say "never vacuumed" of a table the primary vacuums, so they are judged there
PER_NODE = {"analyze_age", "vacuum_age", "dead_tuples"}
# checks of the server alone; every other check is about the source table or its upkeep
WITHOUT_SOURCE = {"connect", "long_transactions", "connections", "replication_lag", "database_size"}


def evaluate(
    facts: FactSource, wanted: Iterable[str], thresholds: Thresholds, now: dt.datetime
) -> list[CheckResult]:
    """Judge each wanted check (in CHECKS order); one whose facts cannot be read is UNKNOWN."""
    wanted = set(wanted)
    results = []
    off = {n for n, key in LEVELS_KEY.items() if getattr(thresholds.check, key).off}
    if not thresholds.check.latency_p95:  # off until a rule names endpoints
        off.add("latency_p95")
    missing: SourceMissing | None = None
    if (wanted or set(_CHECKS)) - WITHOUT_SOURCE - off:
        try:
            facts.table()
        except SourceMissing as exc:
            missing = exc  # one CRITICAL line instead of every check failing on its own
        except (psycopg.Error, EpstatsError):
            pass  # each check that needs the table says so
    for name, judge in _CHECKS.items():
        if wanted and name not in wanted:
            continue
        if missing is not None and name not in WITHOUT_SOURCE:
            continue
        if name in off:
            results.append(judges.turned_off(name, LEVELS_KEY.get(name)))
            continue
        if name in PER_NODE and facts.connection().in_recovery:
            results.append(judges.on_the_primary(name))
            continue
        try:
            results.append(judge(facts, thresholds, now))
        except (psycopg.Error, EpstatsError) as exc:
            message = exc.message if isinstance(exc, EpstatsError) else first_line(exc)
            message = "; ".join(message.splitlines())  # one line for Nagios
            results.append(judges.cannot_check(name, message))
    if missing is not None:
        results.append(judges.source_missing(str(missing.table)))
    return results


def run_checks(
    session: Session, only: Iterable[str] = (), now: dt.datetime | None = None
) -> list[CheckResult]:
    """Every check (or those in `only`); a check that cannot run is UNKNOWN, never an error."""
    if now is None:
        now, _hour = db_now(session)
    return evaluate(Gatherer(session), only, Thresholds.of(session.config), now)
