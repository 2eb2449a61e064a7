"""The `verify` maintenance task: the rollup's settled days compared with the raw rows, one day
at a time, oldest check first, and every day that differs recomputed.

A refresh recomputes the days new rows land in (incremental: those within view.lookback;
materialized: all of them, each time it runs). A row that arrives later lands in a day no
refresh looks at again, and reports miss it for good: only a comparison finds it. The task
compares the days before the lookback window of the rollup's as-of, from the oldest day that
still has raw rows (or view.verify_horizon ago), with `rollup.verify.comparison`: each day a
range of the timestamp index, read in its own snapshot (no snapshot is held for the whole
sweep). It stops when max_runtime is used up; the next run goes on after the last day checked
(its summary in epstats.runs says which), so every day is checked in turn. Days up to the
retention horizon (epstats_cli/retention.py) are never compared: their raw rows are retired.
A day that differs is recomputed through the executor: incremental, its rows deleted and
re-aggregated in one transaction; materialized, one REFRESH ... CONCURRENTLY for all of them.
The summary (rollup/verify_record.py) says which days were repaired, by how many rows and how
late those rows were at most; `check`'s late_rows reads it.
"""

from __future__ import annotations

import datetime as dt
import time
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import history, source
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
from epstats_cli.rollup import verify_record
from epstats_cli.rollup.aggregate import aggregate, insert, planner_settings
from epstats_cli.rollup.inspect import RollupFacts, facts
from epstats_cli.rollup.refresh import BLOCKING_MODES, plan_refresh, prologue
from epstats_cli.rollup.verify import comparison, differences, window, window_params
from epstats_cli.sqltext import as_text

Mark = tuple[dt.datetime, str]  # the rollup's as-of and snapshot, as a comparison read them


@dataclass
class Sweep:
    """What one run compares: the rollup, how it reads the raw rows, and the days in order."""

    info: RollupFacts
    strategy: str
    basis: source.Basis
    days: list[dt.date]  # in the order they are checked

    @property
    def view(self) -> tuple[str, str]:
        return (self.info.name.schema, self.info.name.name)

    @property
    def target(self) -> str:
        return str(self.info.name)


def _last_checked(session: Session, target: str) -> dt.date | None:
    if not history.available(session):
        return None
    reason = session.value("maintenance/verify_last", {"target": target})
    return verify_record.read(reason).last_checked


def plan_sweep(session: Session, now: dt.datetime) -> Sweep | str:
    """The days to compare, in the order to check them; or why the task cannot run."""
    info = facts(session, contents=False, state=False)
    if not info.exists:
        return "no rollup yet (epstats view build creates it)"
    if not info.ours:
        return "not built by epstats (epstats view build --replace)"
    why = info.unreadable()
    if why is not None:
        return why
    if info.missing_status:
        return "built without status classes (epstats view build --replace adds them)"
    assert info.as_of is not None
    cfg = session.config
    basis = source.Basis.of(cfg, source.check_columns(session))
    # Whole days before the lookback window of the as-of: no refresh recomputes them, and each
    # of their rows is dated more than commit_delay before the as-of, so the rollup holds it.
    margin = max(cfg.view.lookback, cfg.view.commit_delay)
    last = rollup_days.settled_through(min(now, info.as_of), margin, basis.timezone)
    horizon = dt.date.min
    if cfg.view.verify_horizon is not None:
        zone = zoneinfo.ZoneInfo(basis.timezone)
        horizon = (now - cfg.view.verify_horizon).astimezone(zone).date()
    if info.retired_through is not None:  # retired days: the rollup's alone, never compared
        horizon = max(horizon, info.retired_through + dt.timedelta(days=1))
    first = source.first_day(session, basis, horizon)
    span = (
        []
        if first is None
        else [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    )
    ordered = verify_record.order(span, _last_checked(session, str(info.name)))
    return Sweep(info, info.strategy or "materialized", basis, ordered)


def compare_day(session: Session, sweep: Sweep, day: dt.date) -> tuple[list[dict[str, Any]], Mark]:
    """The endpoint-days of `day` that differ, and the as-of they were compared with: the
    rollup's bookkeeping row and the comparison read in one snapshot."""
    with read_snapshot(session):
        mark = session.one("view/as_of", view=sweep.view)
        if mark is None:
            raise EpstatsError(f"{sweep.target} has no bookkeeping row any more")
        statement = comparison(
            session,
            sweep.basis,
            day,
            day,
            mark["as_of"],
            mark["snapshot"],
            histograms=sweep.info.histograms,
        )
        return differences(session, statement), (mark["as_of"], mark["snapshot"])


def repair_step(session: Session, sweep: Sweep, day: dt.date, mark: Mark, reason: str) -> Step:
    """incremental: the day's rows deleted and re-aggregated from the raw rows the comparison
    read (the same condition), in one transaction serialized with refreshes."""
    norm = Normalization.of(session.config)
    rows = aggregate(session, sweep.basis, window(session, sweep.basis), norm)
    planner = planner_settings(session, norm)
    statements = [
        *prologue(session),
        *(Statement(q) for q in planner),
        Statement(
            session.statement("view/delete_day_range", view=sweep.view),
            {"from_day": day, "to_day": day},
        ),
        Statement(
            insert(session, sweep.view, sweep.info.insert_columns(), rows),
            window_params(session, day, day, *mark),
        ),
    ]
    return Step(
        "verify",
        f"{sweep.target} {day.isoformat()}",
        reason,
        statements,
        Mode.TRANSACTION,
        relation_oid=sweep.info.oid,
        lock_modes=BLOCKING_MODES,
    )


def refresh_step(session: Session, sweep: Sweep, target: str, reason: str) -> Step:
    """materialized: one REFRESH ... CONCURRENTLY (the refresh's own step) recomputes every day."""
    return replace(plan_refresh(session), task="verify", target=target, reason=reason, done=None)


def plan_verify(session: Session) -> list[Step]:
    """What a run would do, for --dry-run: the comparison (shown for the first day it checks)
    and the repair of a day that differs (shown for that day too)."""
    now, _hour = db_now(session)
    target = str(session.config.view_name)
    sweep = plan_sweep(session, now)
    if isinstance(sweep, str):
        return [Step("verify", target, sweep, [], skip=sweep)]
    if not sweep.days:
        why = "no day before the lookback window has raw rows yet"
        return [Step("verify", target, why, [], skip=why)]
    day = sweep.days[0]
    assert sweep.info.as_of is not None and sweep.info.snapshot is not None
    mark = (sweep.info.as_of, sweep.info.snapshot)
    compare = Step(
        "verify",
        target,
        f"compare {len(sweep.days)} days ({verify_record.ranges(sweep.days)}) with the raw "
        "rows, one day at a time, oldest check first, until max_runtime is used up "
        f"(shown for {day})",
        [comparison(session, sweep.basis, day, day, *mark, histograms=sweep.info.histograms)],
    )
    if sweep.strategy == "incremental":
        why = f"only for a day that differs: recompute it in one transaction (shown for {day})"
        return [compare, repair_step(session, sweep, day, mark, why)]
    why = "only if a day differs: one REFRESH CONCURRENTLY recomputes every day"
    return [compare, refresh_step(session, sweep, target, why)]


def _delta(diffs: list[dict[str, Any]]) -> int:
    """Raw rows minus the rollup's count over the endpoint-days that differ."""
    return sum((d["raw_requests"] or 0) - (d["view_requests"] or 0) for d in diffs)


@dataclass
class _Progress:
    """How far a run got (what an interrupted one records)."""

    outcome: verify_record.Outcome | None = None  # once the days to compare are known
    shown: str | None = None  # the comparison, shown for the first day checked


def run(
    session: Session,
    executor: Executor,
    due: str,
    seconds_left: float,
    clock: Callable[[], float] = time.monotonic,
) -> list[TaskResult]:
    """Compare day by day within `seconds_left`, repair every day that differs, and record the
    summary (why the task is due, then verify_record.summary) on the rollup's name. Stopped by
    SIGINT, SIGTERM or SIGHUP, the task is recorded as interrupted with how far it got (the
    next run goes on after the last day it checked), and the error to exit with names it."""
    start = clock()
    progress = _Progress()
    try:
        return _sweep(session, executor, due, seconds_left, clock, start, progress)
    except (KeyboardInterrupt, Interrupted) as exc:
        raise _stopped(session, executor, due, progress, clock() - start, exc) from exc


def _stopped(
    session: Session,
    executor: Executor,
    due: str,
    progress: _Progress,
    seconds: float,
    exc: KeyboardInterrupt | Interrupted,
) -> Interrupted:
    """Record the task as interrupted, and the error to exit with (130/143/129): the
    executor's own when a day's repair was stopped (it names the step, recorded too), else one
    naming the task."""
    target = str(session.config.view_name)
    signum = noted_signal()
    if isinstance(exc, Interrupted):
        message = exc.format_message()
    else:
        message = f"{interrupted_message(signum)}: verify {target} did not finish"
    o = progress.outcome
    got = verify_record.summary(o) if o is not None else "stopped before it compared a day"
    reason = f"{due}: {got}"
    executor.record_interrupted(
        TaskResult("verify", target, "interrupted", reason, seconds, progress.shown, message)
    )
    return exc if isinstance(exc, Interrupted) else interrupted(signum, message)


def _sweep(
    session: Session,
    executor: Executor,
    due: str,
    seconds_left: float,
    clock: Callable[[], float],
    start: float,
    progress: _Progress,
) -> list[TaskResult]:
    now, _hour = db_now(session)
    sweep = plan_sweep(session, now)
    target = str(session.config.view_name)
    if isinstance(sweep, str):
        skipped = TaskResult("verify", target, "skipped", sweep)
        executor.record_result(skipped)
        return [skipped]
    cfg = session.config
    outcome = verify_record.Outcome([], len(sweep.days), lookback=cfg.view.lookback)
    progress.outcome = outcome
    found: dict[dt.date, tuple[list[dict[str, Any]], Mark]] = {}
    error: str | None = None
    for day in sweep.days:
        if outcome.checked and clock() - start >= seconds_left:
            outcome.stopped = True
            break
        try:
            diffs, mark = compare_day(session, sweep, day)
        except (psycopg.Error, EpstatsError) as exc:
            error = f"comparing {day}: " + (
                exc.message if isinstance(exc, EpstatsError) else first_line(exc)
            )
            break
        if progress.shown is None:
            st = comparison(session, sweep.basis, day, day, *mark, histograms=sweep.info.histograms)
            text = as_text(session.conn, st.query, st.params)
            progress.shown = f"-- day by day; shown for {day}\n" + text
        outcome.checked.append(day)
        if diffs:
            found[day] = (diffs, mark)
    results = _repair(session, executor, sweep, found, outcome)
    late = sorted(r.day for r in outcome.repairs if r.rows > 0)
    if late:
        midnight = session.statement(
            "fragments/local_midnight",
            day=sql.Placeholder("day"),
            tz=sql.Literal(sweep.basis.timezone),
        )
        outcome.late_by_seconds = session.value("view/day_age", {"day": late[0]}, midnight=midnight)
    failed = [f"{verify_record.UNREPAIRED} {r.day}: {r.error}" for r in outcome.failed]
    errors = "; ".join([*failed, *([error] if error else [])]) or None
    summary = TaskResult(
        "verify",
        target,
        "failed" if errors else "ok",
        f"{due}: {verify_record.summary(outcome)}",
        clock() - start,
        progress.shown,
        errors,
        _failure(outcome, error) if errors else None,
    )
    executor.record_result(summary)
    return [*results, summary]


def _failure(outcome: verify_record.Outcome, error: str | None) -> str:
    """The kind of a failed verify run, from its repairs' own (check's maintain_failed reads
    it): a repair that left something behind, else only busy locks, else an error."""
    kinds = {r.failure for r in outcome.failed}
    if history.LEFT_BEHIND in kinds:
        return history.LEFT_BEHIND
    if kinds == {history.LOCK_BUSY} and error is None:
        return history.LOCK_BUSY
    return history.ERROR


def _repair(
    session: Session,
    executor: Executor,
    sweep: Sweep,
    found: dict[dt.date, tuple[list[dict[str, Any]], Mark]],
    outcome: verify_record.Outcome,
) -> list[TaskResult]:
    """Recompute the days that differ; each one's repair goes into `outcome`."""
    if not found:
        return []
    if sweep.strategy == "incremental":
        results = []
        for day, (diffs, mark) in sorted(found.items()):
            rows = _delta(diffs)
            why = f"{len(diffs)} endpoint(s) differ ({rows:+,} raw rows): recompute the day"
            r = executor.run(repair_step(session, sweep, day, mark, why))
            results.append(r)
            outcome.repairs.append(
                verify_record.DayRepair(day, rows, len(diffs), r.status == "ok", r.error, r.failure)
            )
        return results
    days = sorted(found)
    label = f"{sweep.target} {verify_record.ranges(days)}"
    why = f"{len(days)} day(s) differ: REFRESH CONCURRENTLY recomputes every day"
    try:
        r = executor.run(refresh_step(session, sweep, label, why))
    except Interrupted:
        raise  # (an EpstatsError too): the task is stopped, not failed
    except EpstatsError as exc:
        r = TaskResult("verify", label, "failed", exc.message, 0, None, exc.message)
        executor.record_result(r)
    for day in days:
        diffs = found[day][0]
        outcome.repairs.append(
            verify_record.DayRepair(
                day, _delta(diffs), len(diffs), r.status == "ok", r.error, r.failure
            )
        )
    return [r]
