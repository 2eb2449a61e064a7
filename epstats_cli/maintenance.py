"""VACUUM / ANALYZE / REINDEX / cleanup / refresh that never block production, and `maintain`.

Every statement runs under lock_timeout; VACUUM and ANALYZE use SKIP_LOCKED (a skipped table
is retried with backoff, then reported with who held the lock); REINDEX is CONCURRENTLY and
leaves no invalid `_ccnew` index behind. `maintain` runs what is due under an advisory lock.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import catalog, history, indexes, queries, rollup, schedule
from epstats_cli.catalog import missing_source, relation
from epstats_cli.config import QualifiedName
from epstats_cli.db import Session
from epstats_cli.db import now as db_now
from epstats_cli.durations import format_duration, human_seconds
from epstats_cli.errors import LockedError, OperationFailed
from epstats_cli.execute import (
    CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
    LockNotGranted,
    describe_blockers,
    error_text,
    retry_on_lock,
)
from epstats_cli.history import TaskResult
from epstats_cli.progress import bars as _bars
from epstats_cli.progress import watch
from epstats_cli.schema import require_current
from epstats_cli.sqltext import as_text

LOCK_CLASS = 0x65707374  # "epst": the advisory-lock namespace of epstats


@dataclass(frozen=True)
class Target:
    label: str
    name: QualifiedName
    oid: int


def _v(session: Session) -> int:
    return session.server.version_num


def targets(session: Session) -> list[Target]:
    """The source table and, when it exists, the rollup (a table or materialized view)."""
    out = []
    for qn in (session.config.source.table, session.config.view_name):
        found = relation(session, qn.schema, qn.name)
        if found is not None and found[1] in ("r", "m", "p"):
            if qn == session.config.view_name and found[1] == "m":
                info = rollup.facts(session, qn)
                if not info.populated:
                    continue
            out.append(Target(str(qn), qn, found[0]))
        elif qn == session.config.source.table:
            raise missing_source(session)
    return out


# --- running one statement safely ------------------------------------------------------------


class _Skipped(Exception):
    pass


def _run_skip_locked(
    session: Session, query: sql.Composed, oid: int, show: bool, progress: str, label: str
) -> None:
    """Run a SKIP_LOCKED statement; a skip is retried like a lock timeout, then reported."""
    notices: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        notices.append(diag.message_primary or "")

    tries = 1 + session.config.maintenance.lock_retries
    session.conn.add_notice_handler(on_notice)
    try:
        for attempt in range(tries):
            notices.clear()
            with watch(session, progress, label, _bars(show)):
                retry_on_lock(session, lambda: session.conn.execute(query), relation_oid=oid)
            if not any("skipping" in n and "lock" in n for n in notices):
                return
            who = describe_blockers(session, oid, CONFLICTS_SHARE_UPDATE_EXCLUSIVE)
            if attempt + 1 == tries:
                raise LockNotGranted(f"lock not available (SKIP_LOCKED) after {tries} tries: {who}")
            time.sleep(0.5 * 2**attempt)
    finally:
        session.conn.remove_notice_handler(on_notice)


def _timed_result(
    task: str, target: str, reason: str, text: str, fn: Callable[[], object]
) -> TaskResult:
    start = time.monotonic()
    try:
        fn()
    except (LockNotGranted, psycopg.Error) as exc:
        return TaskResult(
            task, target, "failed", error_text(exc), time.monotonic() - start, text, error_text(exc)
        )
    return TaskResult(task, target, "ok", reason, time.monotonic() - start, text)


# --- the tasks ---------------------------------------------------------------------------------


def analyze(session: Session, dry_run: bool = False, show: bool = False) -> list[TaskResult]:
    """ANALYZE (SKIP_LOCKED) the source table and the rollup."""
    results = []
    for t in targets(session):
        q = queries.get("maintenance/analyze", _v(session), table=(t.name.schema, t.name.name))
        text = as_text(session.conn, q)
        if dry_run:
            results.append(
                TaskResult("analyze", t.label, "planned", "update planner statistics", 0, text)
            )
            continue
        results.append(
            _timed_result(
                "analyze",
                t.label,
                "statistics updated",
                text,
                partial(
                    _run_skip_locked,
                    session,
                    q,
                    t.oid,
                    show,
                    "catalog/analyze_progress",
                    f"analyze {t.label}",
                ),
            )
        )
    return results


def vacuum(
    session: Session,
    with_analyze: bool = True,
    freeze: bool = False,
    dry_run: bool = False,
    show: bool = False,
    reason: str = "",
) -> list[TaskResult]:
    """VACUUM (SKIP_LOCKED[, ANALYZE][, FREEZE]) the source table and the rollup."""
    options = (
        ["SKIP_LOCKED"] + (["ANALYZE"] if with_analyze else []) + (["FREEZE"] if freeze else [])
    )
    opts = sql.SQL(", ").join(sql.SQL(o) for o in options)
    results = []
    for t in targets(session):
        q = queries.get(
            "maintenance/vacuum", _v(session), table=(t.name.schema, t.name.name), options=opts
        )
        text = as_text(session.conn, q)
        why = reason or ("reclaim dead tuples" + (", update statistics" if with_analyze else ""))
        if dry_run:
            results.append(TaskResult("vacuum", t.label, "planned", why, 0, text))
            continue
        results.append(
            _timed_result(
                "vacuum",
                t.label,
                why,
                text,
                partial(
                    _run_skip_locked,
                    session,
                    q,
                    t.oid,
                    show,
                    "catalog/vacuum_progress",
                    f"vacuum {t.label}",
                ),
            )
        )
    return results


def _bloat(session: Session, oid: int) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in session.all("catalog/index_bloat", {"oid": oid})}


def _drop_reindex_leftovers(session: Session, t: Target, index: str) -> None:
    """After a failed REINDEX CONCURRENTLY, drop the invalid `<index>_ccnew` it left."""
    for left in indexes.leftovers(indexes.load_indexes(session, t.oid), set()):
        if left.name.startswith(index[:55]):
            q = queries.get(
                "indexes/drop", _v(session), index=sql.Identifier(t.name.schema, left.name)
            )
            with contextlib.suppress(LockNotGranted, psycopg.Error):
                retry_on_lock(
                    session,
                    partial(session.conn.execute, q),
                    relation_oid=None,
                    retries=2,
                )


def reindex(
    session: Session,
    index: str | None = None,
    bloat_threshold: float | None = None,
    dry_run: bool = False,
    show: bool = False,
) -> list[TaskResult]:
    """REINDEX INDEX CONCURRENTLY each valid index (or one), optionally only bloated ones."""
    results = []
    found = False
    for t in targets(session):
        bloat = _bloat(session, t.oid)
        for name, info in bloat.items():
            if index is not None and name != index:
                continue
            found = True
            q = queries.get(
                "maintenance/reindex", _v(session), index=sql.Identifier(t.name.schema, name)
            )
            text = as_text(session.conn, q)
            label = f"{t.name.schema}.{name}"
            ratio = info["bloat_ratio"]
            estimate = "no bloat estimate" if ratio is None else f"estimated bloat {ratio:.0%}"
            if not info["valid"]:
                results.append(
                    TaskResult(
                        "reindex",
                        label,
                        "skipped",
                        "invalid index: the cleanup task drops it",
                        0,
                        text,
                    )
                )
                continue
            if bloat_threshold and (ratio is None or ratio < bloat_threshold):
                why = (
                    f"{estimate}, below reindex_bloat_ratio {bloat_threshold:.0%}"
                    if ratio is not None
                    else f"{estimate} ({info['method']} index, or table not analyzed yet)"
                )
                results.append(TaskResult("reindex", label, "skipped", why, 0, text))
                continue
            if dry_run:
                results.append(TaskResult("reindex", label, "planned", estimate, 0, text))
                continue

            def run(q: sql.Composed = q, t: Target = t, name: str = name) -> None:
                try:
                    with watch(
                        session, "catalog/index_build_progress", f"reindex {name}", _bars(show)
                    ):
                        retry_on_lock(session, lambda: session.conn.execute(q), relation_oid=t.oid)
                except BaseException:
                    _drop_reindex_leftovers(session, t, name)
                    raise

            results.append(_timed_result("reindex", label, f"rebuilt ({estimate})", text, run))
    if index is not None and not found:
        raise OperationFailed(
            f"no index named {index} on {session.config.source.table} "
            "or the rollup (see: epstats indexes status)"
        )
    return results


def cleanup(session: Session, dry_run: bool = False) -> list[TaskResult]:
    """Drop invalid leftovers of interrupted index builds; prune old run history."""
    results = []
    for t in targets(session):
        current = indexes.load_indexes(session, t.oid)
        building = {
            int(b["index_relid"])
            for b in indexes.builds_running(session, t.oid)
            if b["index_relid"]
        }
        for idx in current:
            if idx.valid or idx.oid in building:
                continue
            q = queries.get(
                "indexes/drop", _v(session), index=sql.Identifier(t.name.schema, idx.name)
            )
            text = as_text(session.conn, q)
            label = f"{t.name.schema}.{idx.name}"
            why = "invalid leftover of an interrupted index build"
            if dry_run:
                results.append(TaskResult("cleanup", label, "planned", why, 0, text))
                continue
            results.append(
                _timed_result(
                    "cleanup",
                    label,
                    f"dropped: {why}",
                    text,
                    partial(
                        retry_on_lock, session, partial(session.conn.execute, q), relation_oid=t.oid
                    ),
                )
            )
    if history.available(session):
        retention = session.config.maintenance.history_retention
        q = queries.get("maintenance/history_prune", _v(session))
        params = {"retention": retention}
        text = as_text(session.conn, q, params)
        why = f"delete run history older than {format_duration(retention)}"
        if dry_run:
            results.append(TaskResult("cleanup", "epstats.runs", "planned", why, 0, text))
        else:
            results.append(
                _timed_result(
                    "cleanup",
                    "epstats.runs",
                    why,
                    text,
                    partial(session.conn.execute, q, params),
                )
            )
    return results


def refresh(session: Session, dry_run: bool = False) -> list[TaskResult]:
    info = rollup.facts(session)
    if not info.exists:
        return [
            TaskResult(
                "refresh",
                str(info.name),
                "skipped",
                "no rollup yet (epstats view build creates it)",
            )
        ]
    if not info.ours:
        return [
            TaskResult(
                "refresh",
                str(info.name),
                "skipped",
                "not built by epstats (epstats view build --replace)",
            )
        ]
    try:
        return [rollup.refresh(session, dry_run=dry_run)]
    except OperationFailed as exc:
        return [TaskResult("refresh", str(info.name), "failed", exc.message, 0, None, exc.message)]


# --- maintain ----------------------------------------------------------------------------------


@dataclass
class MaintainOptions:
    dry_run: bool = False
    only: set[str] = field(default_factory=set)
    skip: set[str] = field(default_factory=set)
    force: set[str] = field(default_factory=set)
    max_runtime: dt.timedelta | None = None
    show_progress: bool = False


@dataclass
class MaintainReport:
    decisions: list[schedule.Decision]
    results: list[TaskResult]
    standby: bool = False

    @property
    def failed(self) -> bool:
        return any(r.status == "failed" for r in self.results)


def _lock_key(session: Session) -> dict[str, Any]:
    return {"k1": LOCK_CLASS, "key": f"epstats.maintain:{session.config.source.table}"}


def acquire_lock(session: Session) -> None:
    """The maintain lock, or LockedError (exit 75) naming the run that holds it."""
    key = _lock_key(session)
    row = session.conn.execute(queries.get("maintenance/try_lock", _v(session)), key).fetchone()
    if row and row[0]:
        return
    holder = session.conn.execute(
        queries.get("maintenance/lock_holder", _v(session)), key
    ).fetchone()
    who = (
        f"pid {holder[0]}, started {holder[1]:%Y-%m-%d %H:%M:%S %Z}"
        if holder
        else "it finished just now"
    )
    raise LockedError(f"another epstats maintain is running ({who}); retry later")


def release_lock(session: Session) -> None:
    session.conn.execute(queries.get("maintenance/unlock", _v(session)), _lock_key(session))


def _run_task(
    session: Session, decision: schedule.Decision, dry_run: bool, show: bool
) -> list[TaskResult]:
    m = session.config.maintenance
    if decision.task == "cleanup":
        return cleanup(session, dry_run)
    if decision.task == "vacuum":
        return vacuum(session, True, decision.freeze, dry_run, show, decision.reason)
    if decision.task == "analyze":
        return analyze(session, dry_run, show)
    if decision.task == "reindex":
        threshold = m.reindex_bloat_ratio if decision.reason != "forced" else None
        return reindex(session, None, threshold, dry_run, show)
    return refresh(session, dry_run)


def maintain(
    session: Session,
    opts: MaintainOptions,
    now: dt.datetime | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> MaintainReport:
    """Run whatever is due (see schedule.due_tasks), recording every task."""
    if session.server.in_recovery:
        return MaintainReport([], [], standby=True)
    if not history.available(session):
        raise OperationFailed("the epstats schema is missing: run `epstats init` once")
    require_current(session)
    targets(session)  # a missing source table is an error before anything runs
    if not opts.dry_run:
        acquire_lock(session)
    try:
        return _maintain_locked(session, opts, now, clock)
    finally:
        if not opts.dry_run:
            release_lock(session)


def _maintain_locked(
    session: Session, opts: MaintainOptions, now: dt.datetime | None, clock: Callable[[], float]
) -> MaintainReport:
    m = session.config.maintenance
    if now is None:
        now, _hour = db_now(session)
    assert now is not None
    runs = history.last_runs(session)
    last_ok = {t: h["last_ok"] for t, h in runs.items() if h["last_ok"] is not None}
    decisions = schedule.due_tasks(
        last_ok, m, now, catalog.need(session), only=opts.only, skip=opts.skip, force=opts.force
    )
    budget = (opts.max_runtime or m.max_runtime).total_seconds()
    start = clock()
    results: list[TaskResult] = []
    vacuumed = False
    for decision in decisions:
        if decision.task == "analyze" and decision.due and vacuumed and decision.reason != "forced":
            results.append(
                TaskResult(
                    "analyze",
                    history.task_target(session.config, "analyze"),
                    "skipped",
                    "done by VACUUM (ANALYZE) in this run",
                )
            )
            continue
        if decision.reason == "not selected":
            continue
        if not decision.due:
            planned = _run_task(session, decision, True, False) if opts.dry_run else []
            text = ";\n".join(r.sql for r in planned if r.sql) or None
            results.append(
                TaskResult(
                    decision.task,
                    history.task_target(session.config, decision.task),
                    "skipped",
                    f"not due: {decision.reason}",
                    0,
                    text,
                )
            )
            continue
        elapsed = clock() - start
        estimate = runs.get(decision.task, {}).get("p90_seconds")
        if not opts.dry_run and not schedule.fits(estimate, elapsed, budget):
            why = (
                f"stopped: max-runtime {human_seconds(budget)} used up"
                if elapsed >= budget
                else f"would not fit in max-runtime (takes ~{human_seconds(estimate or 0)}, "
                f"{human_seconds(budget - elapsed)} left)"
            )
            skipped = TaskResult(
                decision.task, history.task_target(session.config, decision.task), "skipped", why
            )
            history.record(session, skipped)
            results.append(skipped)
            continue
        if opts.dry_run:
            for r in _run_task(session, decision, True, False):
                r.reason = f"due: {decision.reason}" + (
                    f"; {r.reason}" if r.reason != decision.reason else ""
                )
                results.append(r)
            continue
        task_results = _run_task(session, decision, False, opts.show_progress)
        for r in task_results:
            if r.status == "ok" and r.reason != decision.reason:
                r.reason = f"{decision.reason}: {r.reason}"
            history.record(session, r)
            results.append(r)
        if decision.task == "vacuum" and task_results:
            vacuumed = all(r.status == "ok" for r in task_results)
        primary = history.task_target(session.config, decision.task)
        if not any(r.target == primary for r in task_results):
            # The task as a whole, which the schedule reads (e.g. "indices of ..." for reindex:
            # checking and finding nothing to rebuild is this month's reindex done).
            failed = [r for r in task_results if r.status == "failed"]
            done = [r for r in task_results if r.status == "ok"]
            summary = TaskResult(
                decision.task,
                primary,
                "failed" if failed else "ok",
                f"{decision.reason}: {len(done)} done, {len(failed)} failed, "
                f"{len(task_results) - len(done) - len(failed)} skipped",
                sum(r.seconds for r in task_results),
                None,
                "; ".join(r.error or "" for r in failed) or None,
            )
            history.record(session, summary)
            results.append(summary)
    return MaintainReport(decisions, results)
