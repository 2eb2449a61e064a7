"""The `retention` maintenance task: the raw rows of whole days (in source.timezone) older than
source.retention retired, and never a number lost.

Two rules make it lose nothing. (1) Before it touches a day it records the retention horizon
with the rollup (epstats.rollup_state.retired_through): from then on no refresh, repair or
verify recomputes a day up to it from what is left of its raw rows (rollup/refresh.py refuses
to, even when planned before). (2) A row is deleted only when the rollup counts it: the days
are compared with every raw row of theirs first (repaired when they differ, as the verify task
does), in one snapshot, recorded (`retiring`); then each raw row the rollup counts (seen by
that snapshot) is deleted, and each row that arrived since (a late row) is merged into the
rollup additively in the same statement (sql/retention/merge.sql: counts and sums add, min/max
combine, histograms add). A run that resumes a half-deleted day reads the recorded snapshot
instead of comparing what is left; a raw row of a day retired before is late by definition.

On a plain table the rows go in batches (sql/retention/delete_batch.sql), each its own short
transaction under lock_timeout, within max_runtime, then VACUUM. On a partitioned table each
partition wholly older than the horizon (its bounds local midnights) is compared and repaired,
detached (CONCURRENTLY on PostgreSQL 14+ without a default partition, else a plain DETACH
under lock_timeout), its late rows merged and it is dropped in one transaction. Rows sitting in
the DEFAULT partition dated up to the horizon (a late row of a dropped partition's day, a day
before the first partition) are units of their own, one a day, retired as a plain table's
(delete_batch on the DEFAULT partition). A person at a terminal sees the batches' progress.

The partitions are read here (`partitions`, pg_inherits and pg_get_expr(relpartbound)): the
partition module of `epstats partition` was not there yet when this was written.

This module is over 400 lines because the task's safety rests on the order of its steps (the
horizon, the counted snapshot, the batches or the detach, the merge and drop, the resume of an
interrupted run), which is easier to check when they are read in one place.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row
from psycopg.types.json import Jsonb

from epstats_cli import rights, source
from epstats_cli.catalog import source_oid
from epstats_cli.config import QualifiedName
from epstats_cli.db import Session, read_snapshot
from epstats_cli.db import now as db_now
from epstats_cli.endpoints import Normalization
from epstats_cli.errors import (
    EpstatsError,
    Interrupted,
    first_line,
    interrupted,
    interrupted_message,
    noted_signal,
)
from epstats_cli.execute import Executor, Mode, Statement, Step
from epstats_cli.history import TaskResult
from epstats_cli.rollup import days as rollup_days
from epstats_cli.rollup import state
from epstats_cli.rollup.aggregate import aggregate, insert
from epstats_cli.rollup.build import build_key
from epstats_cli.rollup.inspect import RollupFacts, facts, parameter_mismatch
from epstats_cli.rollup.refresh import BLOCKING_MODES, prologue

BATCH = 20_000  # raw rows per DELETE batch: one short transaction
REPAIR_TRIES = 3  # compare, repair, compare again ... before a day is left for the next run


@dataclass(frozen=True)
class Partition:
    """One partition of the source table and its range as instants (None: MINVALUE/MAXVALUE)."""

    name: QualifiedName
    oid: int
    default: bool
    detach_pending: bool
    lower: dt.datetime | None
    upper: dt.datetime | None


def partitions(session: Session, parent: int, basis: source.Basis) -> list[Partition]:
    """The partitions of the table `parent`, oldest first (the DEFAULT one first of all)."""
    rows = session.all(
        "retention/partitions",
        {"parent": parent, "naive": basis.naive, "naive_tz": basis.naive_timezone},
    )
    return [
        Partition(
            QualifiedName(r["schema"], r["name"]),
            int(r["oid"]),
            bool(r["is_default"]),
            bool(r["detach_pending"]),
            r["lower_at"],
            r["upper_at"],
        )
        for r in rows
    ]


def _midnight(day: dt.date, tz: str) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), zoneinfo.ZoneInfo(tz))


def _local_day(instant: dt.datetime, tz: str) -> dt.date:
    return instant.astimezone(zoneinfo.ZoneInfo(tz)).date()


def last_retired_day(now: dt.datetime, retention: dt.timedelta, tz: str) -> dt.date:
    """The last whole day (in `tz`) older than `retention` at `now`."""
    return _local_day(now - retention, tz) - dt.timedelta(days=1)


@dataclass
class Unit:
    """Days retired together: one day of a plain table, one partition's days, or one day of
    the rows in the DEFAULT partition (`table`: deleted from it as a plain table's)."""

    first: dt.date
    last: dt.date
    partition: Partition | None = None
    table: QualifiedName | None = None

    @property
    def label(self) -> str:
        span = self.first.isoformat() + ("" if self.last == self.first else f"..{self.last}")
        if self.table is not None:
            return f"{span} (DEFAULT partition {self.table})"
        return span + (f" ({self.partition.name})" if self.partition else "")


@dataclass
class Plan:
    info: RollupFacts
    basis: source.Basis
    table: QualifiedName
    oid: int
    through: dt.date  # the last day it may retire now
    units: list[Unit]
    concurrently: bool = False  # DETACH ... CONCURRENTLY
    skipped: list[str] = field(default_factory=list)  # partitions it leaves, and why
    partitioned: bool = False
    default: QualifiedName | None = None  # the DEFAULT partition
    default_rows: int = 0  # its rows dated up to `through` (or a pending detach), found

    @property
    def view(self) -> tuple[str, str]:
        return (self.info.name.schema, self.info.name.name)


def plan(session: Session, now: dt.datetime) -> Plan | str:
    """What one run retires, or why it cannot run."""
    cfg = session.config
    if cfg.source.retention is None:
        return "source.retention is not set"
    info = facts(session, contents=False)
    why = info.unreadable()
    if why is not None:
        return why
    if not info.ours or info.strategy != "incremental":
        return "needs an incremental rollup built by epstats (epstats view build --replace)"
    if info.missing_status or info.missing_latency:
        return "the rollup lacks status classes or histograms (epstats view build --replace)"
    mismatch = parameter_mismatch(info, cfg)
    if mismatch:
        return mismatch[0]
    assert info.as_of is not None
    basis = source.Basis.of(cfg, source.check_columns(session))
    margin = max(cfg.view.lookback, cfg.view.commit_delay)
    settled = rollup_days.settled_through(min(now, info.as_of), margin, basis.timezone)
    through = min(last_retired_day(now, cfg.source.retention, basis.timezone), settled)
    oid = source_oid(session)
    table = cfg.source.table
    relkind = session.value("retention/relkind", {"oid": oid})
    if relkind != "p":
        first = _first_day(session, basis) or through + dt.timedelta(days=1)
        spans = (first + dt.timedelta(days=i) for i in range((through - first).days + 1))
        units = [Unit(day, day) for day in spans]
        return Plan(info, basis, table, oid, through, units)
    parts = partitions(session, oid, basis)
    out = Plan(info, basis, table, oid, through, [], partitioned=True)
    has_default = any(p.default for p in parts)
    out.concurrently = session.server.version_num >= 140000 and not has_default
    end = _midnight(through + dt.timedelta(days=1), basis.timezone)
    limit = through  # the DEFAULT's rows retired up to it: never past a pending detach
    for p in parts:
        if p.default or p.upper is None or p.upper > end:
            continue
        if p.detach_pending:  # its rows are counted and recorded (`retiring`) by then
            limit = (
                _local_day(p.lower, basis.timezone) - dt.timedelta(days=1)
                if p.lower is not None
                else dt.date.min
            )
            out.skipped.append(
                f"{p.name}: a DETACH CONCURRENTLY of it was interrupted; `ALTER TABLE "
                f"{table} DETACH PARTITION {p.name} FINALIZE` completes it, the next run "
                "merges its late rows and drops it"
            )
            break
        last = _local_day(p.upper - dt.timedelta(microseconds=1), basis.timezone)
        if p.upper != _midnight(last + dt.timedelta(days=1), basis.timezone) or (
            p.lower is not None
            and p.lower != _midnight(_local_day(p.lower, basis.timezone), basis.timezone)
        ):
            out.skipped.append(f"{p.name}: its bounds are not local midnights in {basis.timezone}")
            continue
        lower = _local_day(p.lower, basis.timezone) if p.lower is not None else None
        out.units.append(Unit(lower or _first_day(session, basis) or last, last, p))
    default = next((p for p in parts if p.default), None)
    if default is not None and limit > dt.date.min:
        out.default = default.name
        out.units = sorted(
            out.units + _default_units(session, out, default, parts, limit), key=lambda u: u.first
        )
    return out


def _default_units(
    session: Session, p: Plan, default: Partition, parts: list[Partition], limit: dt.date
) -> list[Unit]:
    """A unit for each day up to `limit` of rows sitting in the DEFAULT partition (dated where
    no partition is: a late row of a day whose partition was dropped, a day before the first
    one), retired as a plain table's: compared, then deleted from the DEFAULT in batches, the
    late ones merged. A day a partition overlaps is left to it."""
    tz = p.basis.timezone
    ranges = [(q.lower, q.upper) for q in parts if not q.default]
    units = []
    for row in session.all(
        "retention/default_days",
        {"to_day": limit},
        default=(default.name.schema, default.name.name),
        day=source.day(session, p.basis),
        before=source.before_next_day(session, p.basis),
    ):
        day: dt.date = row["day"]
        start, end = _midnight(day, tz), _midnight(day + dt.timedelta(days=1), tz)
        if any(
            (lower is None or lower < end) and (upper is None or upper > start)
            for lower, upper in ranges
        ):
            continue
        p.default_rows += int(row["rows"])
        units.append(Unit(day, day, table=default.name))
    return units


def needs(session: Session) -> rights.Needs:
    """What retiring needs on a partitioned table besides verify's and refresh's rights
    (rights.task_needs): the owner's rights on the parent and on each partition older than
    source.retention (DETACH, then DROP TABLE), and SELECT and DELETE on the DEFAULT partition
    (its old rows deleted as a plain table's). From the catalog and the configuration alone,
    before anything runs."""
    cfg, out = session.config, rights.Needs()
    oid = source_oid(session)
    if cfg.source.retention is None or session.value("retention/relkind", {"oid": oid}) != "p":
        return out
    basis = source.Basis.of(cfg, source.check_columns(session, oid))
    now, _hour = db_now(session)
    last = last_retired_day(now, cfg.source.retention, basis.timezone)
    end = _midnight(last + dt.timedelta(days=1), basis.timezone)
    for part in partitions(session, oid, basis):
        if part.default:
            out.on(part.name, "SELECT", "DELETE", why="retire the DEFAULT partition's old rows")
        elif part.upper is not None and part.upper <= end:
            out.owned(cfg.source.table, why="detach its partitions older than source.retention")
            out.owned(part.name, why="drop it: older than source.retention")
    return out


def _first_day(session: Session, basis: source.Basis) -> dt.date | None:
    """The day of the oldest raw row (None: there is none)."""
    return source.first_day(session, basis, dt.date.min)


# --- the statements ----------------------------------------------------------------------------


def _days(session: Session, basis: source.Basis) -> sql.Composable:
    """Every raw row of the days %(from_day)s to %(to_day)s: two ends of the timestamp index."""
    return sql.SQL("{} AND {}").format(
        source.since(session, basis), source.before_next_day(session, basis)
    )


def late_condition(session: Session, counted: bool) -> sql.Composable:
    """A raw row the rollup does not count: one the snapshot %(snapshot)s could not see
    (`counted`: the days equalled their raw rows in it); else every row (a day retired before)."""
    if not counted:
        return sql.SQL("true")
    return session.statement(
        "fragments/retired_late", xid8=session.statement("fragments/xmin_xid8")
    )


def merge(session: Session, p: Plan, rows: sql.Composable) -> sql.Composed:
    """The rollup rows `rows` merged into the rollup additively."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c in p.info.insert_columns())
    return session.statement("retention/merge", view=p.view, columns=names, rows=rows)


def delete_batch(
    session: Session, p: Plan, counted: bool, table: QualifiedName | None = None
) -> sql.Composed:
    """One batch of the days' raw rows deleted (from `table`: the DEFAULT partition; else the
    source table), the late ones merged into the rollup."""
    table = table or p.table
    norm = Normalization.of(session.config)
    rows = aggregate(
        session, p.basis, sql.Identifier("epstats_late"), norm, True, sql.Identifier("gone")
    )
    return session.statement(
        "retention/delete_batch",
        table=(table.schema, table.name),
        since=source.since(session, p.basis),
        before=source.before_next_day(session, p.basis),
        late=late_condition(session, counted),
        merge=merge(session, p, rows),
    )


def merge_table(session: Session, p: Plan, table: QualifiedName, counted: bool) -> sql.Composed:
    """The late rows of a detached partition `table` merged into the rollup."""
    norm = Normalization.of(session.config)
    ident = sql.Identifier(table.schema, table.name)
    rows = aggregate(session, p.basis, late_condition(session, counted), norm, True, ident)
    return session.statement(
        "retention/merge_table", merge=merge(session, p, rows), table=ident, rows=rows
    )


def comparison(session: Session, p: Plan) -> sql.Composed:
    """The endpoint-days of %(from_day)s..%(to_day)s where the rollup differs from every raw row
    of theirs (view/verify over the whole days)."""
    norm = Normalization.of(session.config)
    view = sql.Identifier(*p.view)
    return session.statement(
        "view/verify",
        stored=view,
        definition=aggregate(session, p.basis, _days(session, p.basis), norm, True),
    )


def repair_step(session: Session, p: Plan, unit: Unit, why: str) -> Step:
    """The days recomputed from every raw row of theirs, serialized with refreshes."""
    norm = Normalization.of(session.config)
    rows = aggregate(session, p.basis, _days(session, p.basis), norm, True)
    span = {"from_day": unit.first, "to_day": unit.last}
    statements = [
        *prologue(session),
        Statement(session.statement("view/delete_day_range", view=p.view), span),
        Statement(insert(session, p.view, p.info.insert_columns(), rows), span),
    ]
    return Step(
        "retention",
        f"{p.info.name} {unit.label}",
        why,
        statements,
        Mode.TRANSACTION,
        relation_oid=p.info.oid,
        lock_modes=BLOCKING_MODES,
    )


def detach_step(session: Session, p: Plan, part: Partition) -> Step:
    """The partition detached: CONCURRENTLY where allowed; FINALIZE of an interrupted one."""
    ids = {
        "parent": (p.table.schema, p.table.name),
        "partition": (part.name.schema, part.name.name),
    }
    if p.concurrently:
        name, why = "retention/detach_concurrently", "detach it without blocking writers"
    else:
        name = "retention/detach"
        why = "detach it (a default partition exists: no CONCURRENTLY)"
        if session.server.version_num < 140000:
            why = "detach it (PostgreSQL 13 has no DETACH CONCURRENTLY)"
    mode = Mode.AUTOCOMMIT if p.concurrently else Mode.TRANSACTION
    return Step(
        "retention",
        str(part.name),
        why,
        [Statement(session.statement(name, **ids))],
        mode,
        relation_oid=p.oid,
        lock_modes=("AccessShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock"),
    )


def _state(session: Session, name: str, params: dict[str, Any]) -> Any:
    """One statement on epstats.rollup_state in a transaction of its own."""
    with session.conn.transaction():
        return session.value(name, params)


# --- a run -------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """How far a run got: what its summary says."""

    days: list[dt.date] = field(default_factory=list)  # retired (wholly)
    deleted: int = 0  # raw rows deleted or dropped with their partition
    late: int = 0  # of them, merged into the rollup (it had not counted them)
    default_deleted: int = 0  # of them, deleted from the DEFAULT partition
    repaired: list[str] = field(default_factory=list)  # units recomputed before retiring
    failed: list[str] = field(default_factory=list)
    stopped: bool = False  # by max_runtime
    horizon: dt.date | None = None

    def summary(self, p: Plan) -> str:
        span = f"{self.days[0]}..{self.days[-1]}" if self.days else "none"
        out = (
            f"retired {len(self.days)} day(s) ({span}): {self.deleted:,} raw rows gone, "
            f"{self.late:,} late rows merged into the rollup first"
        )
        if self.horizon is not None:
            out += f"; retention horizon {self.horizon} (days up to it: the rollup alone)"
        if self.repaired:
            out += f"; recomputed before retiring: {', '.join(self.repaired)}"
        if p.default_rows:
            out += (
                f"; {p.default_rows:,} row(s) found in the DEFAULT partition {p.default} dated "
                f"up to {p.through}: {self.default_deleted:,} deleted as a plain table's"
            )
        if self.stopped:
            out += "; stopped by max_runtime (the next run goes on)"
        return "; ".join([out, *p.skipped])


Clock = Callable[[], float]


def run(
    session: Session,
    executor: Executor,
    due: str,
    seconds_left: float,
    clock: Clock = time.monotonic,
    *,
    vacuum: Callable[[Session], list[Step]] | None = None,
    batch: int = BATCH,
) -> list[TaskResult]:
    """Retire what is older than source.retention within `seconds_left`, and record the summary
    on the source table. One run at a time per rollup, never beside a `view build --replace`
    (its advisory lock, tried, never waited for)."""
    start = clock()
    target = str(session.config.source.table)
    key = build_key(session.config.view_name)
    if not executor.dry_run and not session.value("view/build_lock", key):
        why = "a `view build --replace` (or another retention run) holds the rollup: next time"
        skipped = TaskResult("retention", target, "skipped", why)
        executor.record_result(skipped)
        return [skipped]
    outcome = Outcome()
    try:
        return _run(session, executor, due, seconds_left, clock, start, outcome, vacuum, batch)
    except (KeyboardInterrupt, Interrupted) as exc:
        signum = noted_signal()
        message = (
            exc.format_message()
            if isinstance(exc, Interrupted)
            else f"{interrupted_message(signum)}: retention of {target} did not finish"
        )
        got = f"{due}: retired {len(outcome.days)} day(s) before it was stopped; horizon kept"
        executor.record_interrupted(
            TaskResult("retention", target, "interrupted", got, clock() - start, None, message)
        )
        raise exc if isinstance(exc, Interrupted) else interrupted(signum, message) from exc
    finally:
        with suppress(psycopg.Error):
            session.run("view/build_unlock", key)


def _run(
    session: Session,
    executor: Executor,
    due: str,
    seconds_left: float,
    clock: Clock,
    start: float,
    outcome: Outcome,
    vacuum: Callable[[Session], list[Step]] | None,
    batch: int,
) -> list[TaskResult]:
    target = str(session.config.source.table)
    now, _hour = db_now(session)
    p = plan(session, now)
    if isinstance(p, str):
        skipped = TaskResult("retention", target, "skipped", p)
        executor.record_result(skipped)
        return [skipped]
    results: list[TaskResult] = []
    _finish_detached(session, p, outcome)
    for unit in p.units:
        if clock() - start >= seconds_left:
            outcome.stopped = True
            break
        try:
            results += _retire(
                session, executor, p, unit, outcome, batch, clock, start + seconds_left
            )
        except (psycopg.Error, EpstatsError) as exc:
            text = exc.message if isinstance(exc, EpstatsError) else first_line(exc)
            outcome.failed.append(f"{unit.label}: {text}")
            break
        if outcome.failed or outcome.stopped:
            break
    recorded = session.one("view/state_get", {"view": str(p.info.name)})
    outcome.horizon = None if recorded is None else recorded["retired_through"]
    if outcome.deleted and vacuum is not None and not p.partitioned:
        results += [executor.run(step) for step in vacuum(session)]
    errors = "; ".join(outcome.failed) or None
    summary = TaskResult(
        "retention",
        target,
        "failed" if errors else "ok",
        f"{due}: {outcome.summary(p)}",
        clock() - start,
        None,
        errors,
    )
    executor.record_result(summary)
    return [*results, summary]


def _recorded(session: Session, p: Plan) -> tuple[dt.date | None, dict[str, Any] | None]:
    row = session.one("view/state_get", {"view": str(p.info.name)})
    if row is None:
        return None, None
    return row["retired_through"], row["retiring"]


def _covers(retiring: dict[str, Any] | None, unit: Unit) -> bool:
    if not retiring:
        return False
    first, last = dt.date.fromisoformat(retiring["from"]), dt.date.fromisoformat(retiring["to"])
    return first <= unit.first and unit.last <= last


def _retiring(session: Session, p: Plan, value: dict[str, Any] | None) -> Statement:
    return Statement(
        session.statement("retention/retiring"),
        {"view": str(p.info.name), "retiring": None if value is None else Jsonb(value)},
    )


def _in_transaction(session: Session, statements: list[Statement]) -> None:
    with session.conn.transaction():
        for st in statements:
            session.conn.execute(st.query, st.params)


def _retire(
    session: Session,
    executor: Executor,
    p: Plan,
    unit: Unit,
    outcome: Outcome,
    batch: int,
    clock: Clock,
    deadline: float,
) -> list[TaskResult]:
    """Retire one unit: the horizon first, the snapshot its rows are counted in, then its rows."""
    horizon, retiring = _recorded(session, p)
    results: list[TaskResult] = []
    snapshot: str | None = None
    if _covers(retiring, unit) and retiring and retiring.get("snapshot"):
        snapshot = retiring["snapshot"]  # a half-retired unit: counted in this snapshot
    elif horizon is not None and unit.last <= horizon and not _covers(retiring, unit):
        snapshot = None  # retired before: any raw row of it now arrived since, is late
    else:
        pending = {"from": unit.first.isoformat(), "to": unit.last.isoformat(), "snapshot": None}
        _in_transaction(
            session, [state.retire(session, p.info.name, unit.last), _retiring(session, p, pending)]
        )
        settled = _settle(session, executor, p, unit, outcome, results)
        if settled is None:
            return results
        snapshot = settled
        counted = {**pending, "snapshot": snapshot}
        if unit.partition is not None:
            counted["table"] = str(unit.partition.name)
        _in_transaction(session, [_retiring(session, p, counted)])
    if unit.partition is None:
        _delete(session, executor, p, unit, snapshot, outcome, batch, clock, deadline)
        if outcome.stopped:
            return results
    else:
        detached = executor.run(detach_step(session, p, unit.partition))
        results.append(detached)
        if detached.status != "ok":
            outcome.failed.append(f"{unit.label}: {detached.error or detached.reason}")
            return results
        _drop(session, p, unit.partition.name, snapshot, outcome)
    _in_transaction(session, [_retiring(session, p, None)])
    outcome.days += [
        unit.first + dt.timedelta(days=i) for i in range((unit.last - unit.first).days + 1)
    ]
    return results


def _settle(
    session: Session,
    executor: Executor,
    p: Plan,
    unit: Unit,
    outcome: Outcome,
    results: list[TaskResult],
) -> str | None:
    """The snapshot in which the unit's rollup days equal every raw row of theirs (compared,
    recomputed when they differ, compared again); None when they could not be made equal."""
    params = {"from_day": unit.first, "to_day": unit.last, "histograms": True}
    query = comparison(session, p)
    for _try in range(REPAIR_TRIES):
        with read_snapshot(session):
            with session.conn.cursor(row_factory=dict_row) as cur:
                diffs = cur.execute(query, params).fetchall()
            snapshot: str = session.value("retention/snapshot")
        if not diffs:
            return snapshot
        why = f"{len(diffs)} endpoint-day(s) differ from the raw rows: recompute before retiring"
        r = executor.run(repair_step(session, p, unit, why))
        results.append(r)
        if r.status != "ok":
            outcome.failed.append(f"{unit.label}: {r.error or r.reason}")
            return None
        outcome.repaired.append(unit.label)
    outcome.failed.append(f"{unit.label}: still differs from its raw rows after recomputing it")
    return None


def _delete(
    session: Session,
    executor: Executor,
    p: Plan,
    unit: Unit,
    snapshot: str | None,
    outcome: Outcome,
    batch: int,
    clock: Clock,
    deadline: float,
) -> None:
    """The day's raw rows deleted in batches, each its own transaction, within max_runtime,
    with a progress bar for a person watching."""
    query = delete_batch(session, p, snapshot is not None, unit.table)
    params = {"from_day": unit.first, "to_day": unit.last, "snapshot": snapshot, "batch": batch}
    with _bar(session, executor, p, unit) as shown:
        done = 0
        while True:
            if clock() >= deadline:
                outcome.stopped = True
                return
            with session.conn.transaction():
                row = session.conn.execute(query, params).fetchone()
            assert row is not None
            outcome.deleted += int(row[0])
            outcome.late += int(row[1])
            if unit.table is not None:
                outcome.default_deleted += int(row[0])
            if row[0] == 0:
                return
            done += int(row[0])
            shown(done)


@contextmanager
def _bar(
    session: Session, executor: Executor, p: Plan, unit: Unit
) -> Iterator[Callable[[int], None]]:
    """A progress bar of a unit's DELETE batches for a person at a terminal (the executor's
    console; none for cron, pipes and --quiet): the rows deleted of those the days had when
    it began, redrawn after each batch. Yields shown(rows deleted so far)."""
    if executor.console is None or executor.dry_run:
        yield lambda _done: None
        return
    from epstats_cli.progress import bar

    table = unit.table or p.table
    total = int(
        session.value(
            "retention/day_rows",
            {"from_day": unit.first, "to_day": unit.last},
            table=(table.schema, table.name),
            since=source.since(session, p.basis),
            before=source.before_next_day(session, p.basis),
        )
        or 0
    )
    label = f"retention {table} {unit.first}" + (
        "" if unit.last == unit.first else f"..{unit.last}"
    )
    with bar(executor.console) as progress:
        task = progress.add_task(label, total=max(total, 1), phase="deleting in batches")

        def shown(done: int) -> None:
            progress.update(
                task,
                completed=min(done, total),
                phase=f"deleting in batches: {done:,} of {total:,} rows",
                refresh=True,
            )

        yield shown


def _drop(
    session: Session, p: Plan, table: QualifiedName, snapshot: str | None, outcome: Outcome
) -> None:
    """A detached partition's late rows merged into the rollup and the table dropped, in one
    transaction."""
    ident = (table.schema, table.name)
    with session.conn.transaction():
        merged = session.conn.execute(
            merge_table(session, p, table, snapshot is not None), {"snapshot": snapshot}
        ).fetchone()
        session.conn.execute(session.statement("retention/drop_table", partition=ident))
    assert merged is not None
    outcome.deleted += int(merged[0])
    outcome.late += int(merged[1])


def _finish_detached(session: Session, p: Plan, outcome: Outcome) -> None:
    """A partition an interrupted run detached but did not drop: its late rows merged, dropped."""
    _horizon, retiring = _recorded(session, p)
    if not retiring or not retiring.get("table") or not retiring.get("snapshot"):
        return
    schema, _dot, name = str(retiring["table"]).partition(".")
    found = session.value(
        "retention/detached", {"schema": schema.strip('"'), "name": name.strip('"')}
    )
    if not found:
        return
    _drop(
        session, p, QualifiedName(schema.strip('"'), name.strip('"')), retiring["snapshot"], outcome
    )
    _in_transaction(session, [_retiring(session, p, None)])


def plan_steps(session: Session) -> list[Step]:
    """What a run would do, for --dry-run: shown for the first unit it retires."""
    target = str(session.config.source.table)
    now, _hour = db_now(session)
    p = plan(session, now)
    if isinstance(p, str):
        return [Step("retention", target, p, [], skip=p)]
    if not p.units:
        why = f"no raw rows of a whole day up to {p.through} (older than source.retention)"
        return [Step("retention", target, why, [], skip=why)]
    unit = p.units[0]
    snapshot = session.value("retention/snapshot")
    span = {"from_day": unit.first, "to_day": unit.last}
    pending = {"from": unit.first.isoformat(), "to": unit.last.isoformat(), "snapshot": None}
    horizon = Step(
        "retention",
        str(p.info.name),
        f"record the retention horizon {unit.last} before touching a row ({len(p.units)} "
        f"unit(s) up to {p.through}; shown for {unit.label})",
        [state.retire(session, p.info.name, unit.last), _retiring(session, p, pending)],
        Mode.TRANSACTION,
    )
    compare = Step(
        "retention",
        f"{p.info.name} {unit.label}",
        "compare the days with every raw row of theirs, recompute them if they differ",
        [Statement(comparison(session, p), {**span, "histograms": True})],
    )
    steps = [horizon, compare]
    if unit.partition is None:
        batch = {**span, "snapshot": snapshot, "batch": BATCH}
        steps.append(
            Step(
                "retention",
                f"{target} {unit.label}",
                f"delete the day's raw rows in batches of {BATCH:,}, each its own transaction, "
                "merging the late ones into the rollup; then VACUUM",
                [Statement(delete_batch(session, p, True, unit.table), batch)],
                Mode.TRANSACTION,
            )
        )
        return steps
    name = unit.partition.name
    drop = Step(
        "retention",
        str(name),
        "merge its late rows into the rollup, then drop it, in one transaction",
        [
            Statement(merge_table(session, p, name, True), {"snapshot": snapshot}),
            Statement(
                session.statement("retention/drop_table", partition=(name.schema, name.name))
            ),
        ],
        Mode.TRANSACTION,
    )
    return [*steps, detach_step(session, p, unit.partition), drop]
