"""The checks' judgements: pure functions from typed facts, thresholds and the clock to a
Nagios state and a message. No session, no SQL: tested at every threshold without a server."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from epstats_cli.catalog import ServerFacts, TableFacts
from epstats_cli.config import Levels
from epstats_cli.durations import human_seconds
from epstats_cli.health.facts import (
    IndexBloat,
    IndexFacts,
    LastRun,
    MaintenanceFacts,
    PoolerFacts,
    RollupFreshness,
    TableBloat,
)
from epstats_cli.health.result import (
    CheckResult,
    State,
    Thresholds,
    cannot_check,
    level,
    nagios_line,
    overall,
    severity,
)

# Re-exported: the judges' callers take the result types from here.
__all__ = [
    "CheckResult",
    "State",
    "Thresholds",
    "cannot_check",
    "level",
    "nagios_line",
    "overall",
    "severity",
]

# --- the judges ------------------------------------------------------------------------------


def connect(version: str, in_recovery: bool) -> CheckResult:
    role = "standby" if in_recovery else "primary"
    return CheckResult("connect", State.OK, f"PostgreSQL {version} ({role})")


def turned_off(name: str, key: str | None) -> CheckResult:
    """A check whose thresholds are both 0 (`key`), or whose list of rules is empty (None)."""
    if key is None:
        return CheckResult(name, State.OK, f"off (check.{name} has no rule)")
    return CheckResult(name, State.OK, f"off (check.{key} is 0)")


def on_the_primary(name: str) -> CheckResult:
    """A check of statistics each node counts for itself, on a hot standby."""
    return CheckResult(
        name, State.OK, "judged on the primary (statistics are per node: this is a standby)"
    )


def _has_data(table: TableFacts) -> bool:
    return bool(
        (table.live_tuples or 0) + (table.modified_since_analyze or 0) + (table.estimated_rows or 0)
    )


def _age(
    name: str,
    what: str,
    last: dt.datetime | None,
    every: dt.timedelta,
    t: Thresholds,
    table: TableFacts,
    now: dt.datetime,
) -> CheckResult:
    """Time since the last (auto)analyze or vacuum, in multiples of its schedule."""
    levels = t.check.overdue
    if last is None:
        if not _has_data(table):
            return CheckResult(name, State.OK, f"never {what}, but there is nothing to {what} yet")
        return CheckResult(name, State.WARNING, f"never {what}")
    age = (now - last).total_seconds()
    ratio = age / every.total_seconds()
    return CheckResult(
        name,
        level(ratio, levels),
        f"last {what} {human_seconds(age)} ago (every {human_seconds(every.total_seconds())})",
        round(age),
        levels.warning * every.total_seconds(),
        levels.critical * every.total_seconds(),
        unit="seconds",
    )


def analyze_age(table: TableFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Time since the last (auto)analyze, in multiples of the analyze schedule."""
    return _age("analyze_age", "analyzed", table.last_analyzed, t.schedule.analyze, t, table, now)


def vacuum_age(table: TableFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Time since the last (auto)vacuum, in multiples of the vacuum schedule."""
    return _age("vacuum_age", "vacuumed", table.last_vacuumed, t.schedule.vacuum, t, table, now)


def dead_tuples(table: TableFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Dead tuples as a share of all tuples."""
    live, dead = table.live_tuples or 0, table.dead_tuples or 0
    ratio = dead / (live + dead) if live + dead else 0.0
    text = f"{ratio:.1%} dead tuples ({dead:,} of {live + dead:,})"
    return _ratio("dead_tuples", ratio, t.check.dead_tuple_ratio, text)


def _ratio(name: str, ratio: float, levels: Levels, text: str) -> CheckResult:
    """A share judged against warning and critical levels, with the share as perfdata."""
    return CheckResult(
        name,
        level(ratio, levels),
        text,
        round(ratio, 4),
        levels.warning,
        levels.critical,
        unit="ratio",
    )


def xid_age(table: TableFacts, server: ServerFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """The table's transaction-ID age as a share of autovacuum_freeze_max_age."""
    ratio = (table.xid_age or 0) / server.autovacuum_freeze_max_age
    text = f"transaction-ID age {table.xid_age or 0:,} is {ratio:.1%} of autovacuum_freeze_max_age"
    return _ratio("xid_age", ratio, t.check.xid_age_ratio, text)


def _index_list(
    name: str,
    found: Sequence[str],
    found_text: str,
    none_text: str,
    configured: str,
    warn: int | None,
) -> CheckResult:
    """The shape the three index checks share: a list of names, a severity when non-empty."""
    state = severity(configured) if found else State.OK
    crit = 1 if warn is None else None
    return CheckResult(name, state, found_text if found else none_text, len(found), warn, crit)


def invalid_indexes(facts: IndexFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Invalid indices that no running build will finish."""
    bad = facts.invalid
    text = f"{len(bad)} invalid: {', '.join(bad)} (epstats maintain --only cleanup)"
    return _index_list(
        "invalid_indexes", bad, text, "no invalid indices", t.check.invalid_index, None
    )


def missing_indexes(facts: IndexFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Recommended indices that are missing, invalid or in conflict with another definition."""
    missing = facts.missing
    text = f"{', '.join(missing)} missing (epstats indexes apply)"
    return _index_list(
        "missing_indexes",
        missing,
        text,
        "all recommended indices present",
        t.check.missing_index,
        1,
    )


def redundant_indexes(facts: IndexFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Indices another index covers."""
    names = sorted(facts.redundant)
    covered = ", ".join(f"{n} (covered by {facts.redundant[n]})" for n in names)
    text = f"{covered} (epstats indexes apply --prune-redundant)"
    return _index_list(
        "redundant_indexes", names, text, "no redundant indices", t.check.redundant_index, 1
    )


def view_staleness(rollup: RollupFreshness, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Age of the oldest raw row the rollup lacks, in multiples of the refresh schedule."""
    if not rollup.usable:
        return CheckResult(
            "view_staleness", State.WARNING, f"{rollup.why}; reports read the raw rows"
        )
    every = t.schedule.refresh
    levels = t.check.overdue
    warning = levels.warning * every.total_seconds()
    critical = levels.critical * every.total_seconds()
    if rollup.oldest_unaggregated is None:
        return CheckResult(
            "view_staleness",
            State.OK,
            "the rollup holds every row",
            0,
            warning,
            critical,
            unit="seconds",
        )
    age = rollup.age_seconds  # by the server's clock; from `now` only for facts without it
    lag = max(0.0, (now - rollup.oldest_unaggregated).total_seconds() if age is None else age)
    return CheckResult(
        "view_staleness",
        level(lag / every.total_seconds(), levels),
        f"rows up to {human_seconds(lag)} old are not in the rollup "
        f"(refresh every {human_seconds(every.total_seconds())})",
        round(lag),
        warning,
        critical,
        unit="seconds",
    )


def _task_failure(task: str, run: LastRun, t: Thresholds) -> tuple[State, str] | None:
    """How bad a task's latest runs are, and why; None when its latest run succeeded."""
    streak = 0
    for r in run.recent:
        if r.ok:
            break
        streak += 1
    if not streak:
        return None
    last = run.recent[0]
    at = f"{last.started_at:%Y-%m-%d %H:%M %Z}"  # in source.timezone (facts.maintenance)
    when = f"{task} failed at {at}"
    error = last.error or "no error recorded"
    runs = t.check.maintain_failed_runs
    if last.left_behind:
        return State.CRITICAL, f"{when} and left an invalid index or leftover behind: {error}"
    if streak >= runs:
        times = f"{task} failed {streak} times in a row, last at {at}" if streak > 1 else when
        return State.CRITICAL, f"{times}: {error}"
    if last.lock_busy:
        state = min(State.WARNING, severity(t.check.maintain_failed))
        return state, f"{when} (a busy lock: WARNING until {runs} failures in a row): {error}"
    return severity(t.check.maintain_failed), f"{when}: {error}"


def maintain_failed(history: MaintenanceFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Tasks whose latest runs failed: a busy lock is WARNING (it clears when the task next
    succeeds), any other failure check.maintain_failed; CRITICAL after maintain_failed_runs
    failures in a row, or when a failure left an invalid index or leftover behind."""
    if not history.available:
        return CheckResult("maintain_failed", State.UNKNOWN, "no run history (run epstats init)")
    runs = history.runs
    judged = [(task, _task_failure(task, r, t)) for task, r in sorted(runs.items())]
    failing = sorted(
        ((task, f) for task, f in judged if f is not None and f[0] != State.OK),
        key=lambda item: -item[1][0],
    )
    if not failing:
        return CheckResult(
            "maintain_failed",
            State.OK,
            f"last runs OK ({len(runs)} tasks recorded)" if runs else "no maintenance recorded yet",
            0,
        )
    return CheckResult(
        "maintain_failed",
        max(f[0] for _task, f in failing),
        "; ".join(f[1] for _task, f in failing),
        len(failing),
    )


def source_missing(table: str) -> CheckResult:
    """The source table does not exist: the one result that replaces every check needing it."""
    return CheckResult(
        "source_table",
        State.CRITICAL,
        f"{table} does not exist (epstats init --with-requests-table creates it; "
        "or set source.table)",
    )


def table_bloat(bloat: TableBloat | None, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Estimated heap bloat; tables under bloat_min_size never count."""
    levels = t.check.table_bloat
    if bloat is None or bloat.bloat_ratio is None:
        return CheckResult("table_bloat", State.OK, "no estimate yet (table not analyzed)")
    ratio = bloat.bloat_ratio
    if bloat.size_bytes < t.check.bloat_min_size:
        return CheckResult(
            "table_bloat",
            State.OK,
            f"estimated {ratio:.0%}, table too small to matter",
            round(ratio, 3),
            levels.warning,
            levels.critical,
            unit="ratio",
        )
    return CheckResult(
        "table_bloat",
        level(ratio, levels),
        f"estimated {ratio:.0%} of the table",
        round(ratio, 3),
        levels.warning,
        levels.critical,
        unit="ratio",
    )


def index_bloat(bloats: Sequence[IndexBloat], t: Thresholds, now: dt.datetime) -> CheckResult:
    """The most bloated index with an estimate and at least bloat_min_size."""
    levels = t.check.index_bloat
    judged = [
        b for b in bloats if b.bloat_ratio is not None and b.size_bytes >= t.check.bloat_min_size
    ]
    if not judged:
        return CheckResult("index_bloat", State.OK, "no index large enough to judge")
    worst = max(judged, key=lambda b: b.bloat_ratio or 0.0)
    ratio = worst.bloat_ratio or 0.0
    return CheckResult(
        "index_bloat",
        level(ratio, levels),
        f"worst {worst.name}: estimated {ratio:.0%}",
        round(ratio, 3),
        levels.warning,
        levels.critical,
        unit="ratio",
    )


def pooler(facts: PoolerFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Whether commands that change the database would get one server session."""
    info = facts.maintenance
    whose = "database.maintenance_dsn" if facts.separate else "the DSN"
    reads = "; reads go through a pooler" if facts.reads_per_statement else ""
    if info.keeps_session:
        how = "directly" if info.kind == "direct" else "through a session-mode pool"
        return CheckResult("pooler", State.OK, f"changing commands connect {how} ({whose}){reads}")
    mode = (
        "a pooler whose mode is not proven"
        if info.kind == "unknown-pooler"
        else f"a pooler in {info.kind} mode"
    )
    fix = (
        "point database.maintenance_dsn at the server itself or a session-mode pool"
        if facts.separate
        else "set database.maintenance_dsn to the server itself or a session-mode pool"
    )
    return CheckResult(
        "pooler",
        severity(t.check.pooler),
        f"{whose} goes through {mode}: maintain and the other changing commands refuse to run "
        f"through it ({fix})",
        details=[info.evidence],
    )
