"""`maintain`, the cron entry point: under an advisory lock, run (through the step executor)
whatever maintenance is due, within max-runtime, recording every task in epstats.runs."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from epstats_cli import catalog, history, rollup, schedule
from epstats_cli.config import Config
from epstats_cli.db import Session
from epstats_cli.db import now as db_now
from epstats_cli.durations import human_seconds
from epstats_cli.errors import LockedError, OperationFailed
from epstats_cli.execute import Executor, Step
from epstats_cli.history import TaskResult
from epstats_cli.maintenance import PLANNERS, RUNNERS, refresh, refusal, targets, task_needs
from epstats_cli.rollup.build import new_name
from epstats_cli.schema import require_current
from epstats_cli.source import local
from epstats_cli.waits import describe_blockers, ms

LOCK_CLASS = 0x65707374  # "epst": the advisory-lock namespace of epstats


@dataclass
class MaintainOptions:
    only: set[str] = field(default_factory=set)
    skip: set[str] = field(default_factory=set)
    force: set[str] = field(default_factory=set)
    max_runtime: dt.timedelta | None = None


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
    if session.value("maintenance/try_lock", key):
        return
    holder = session.one("maintenance/lock_holder", key)
    who = "it finished just now"
    if holder:  # when, in source.timezone (as every time epstats prints)
        who = f"server pid {holder['pid']}"
        if holder["backend_start"] is not None:
            started = local(session, holder["backend_start"])
            who += f", started {started:%Y-%m-%d %H:%M:%S %Z}"
        if holder["state"] == "active" and holder["query"]:
            query = " ".join(str(holder["query"]).split())
            seconds = holder["running"].total_seconds() if holder["running"] else 0.0
            who += (
                f", running `{query}` for {seconds:.0f} s: if its epstats was killed, that "
                "statement runs on, holding the lock, until it ends"
            )
    raise LockedError(f"another epstats maintain is running ({who}); retry later")


def release_lock(session: Session) -> None:
    """Release the maintain lock; when the connection cannot (still busy after an interrupted
    statement), the lock ends with it, so that is no error to hide the interruption behind."""
    with suppress(psycopg.Error):
        session.run("maintenance/unlock", _lock_key(session))


def off_tasks(config: Config) -> dict[str, str]:
    """Tasks with nothing configured to do, and why (never due unless forced)."""
    if config.source.retention is None:
        return {"retention": "off: source.retention is not set"}
    return {}


def maintain(
    session: Session,
    opts: MaintainOptions,
    executor: Executor,
    now: dt.datetime | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> MaintainReport:
    """Run whatever is due (see schedule.due_tasks), recording every task (executor.record);
    with executor.dry_run, every task due or not, with why and its SQL."""
    if session.server.in_recovery:
        return MaintainReport([], [], standby=True)
    if not history.available(session):
        raise OperationFailed("the epstats schema is missing: run `epstats init` once")
    require_current(session)
    targets(session)  # a missing source table is an error before anything runs
    if _selected(opts) & {"refresh", "verify", "retention"}:
        # a rollup built with other parameters than the configuration's: exit 3 before any
        # task (only the tasks that read or write the rollup's contents care); from the
        # catalog and rollup_state alone, so a lock held on the rollup fails its task (which
        # names the holder and is recorded) instead of stopping maintain here
        facts = rollup.identify(session)
        rollup.require_parameters(facts, session.config)
    if not executor.dry_run:
        acquire_lock(session)
    try:
        return _maintain_locked(session, opts, executor, now, clock)
    except psycopg.errors.LockNotAvailable as exc:
        # what decides which tasks are due (the source table's sizes and activity) waited past
        # lock_timeout: say who holds the lock (a task's own waits fail that task alone)
        raise OperationFailed(_not_granted(session, "what maintain decides from")) from exc
    finally:
        if not executor.dry_run:
            release_lock(session)


def _selected(opts: MaintainOptions) -> set[str]:
    """The tasks --only and --skip leave to run (due or not)."""
    return (opts.only or set(schedule.ORDER)) - opts.skip


def _due(why: str, reason: str) -> str:
    """A dry run's reason: why the task is due, then the step's own reason when it differs."""
    return f"due: {why}" + (f"; {reason}" if reason != why else "")


def _for_decision(step: Step, decision: schedule.Decision, dry_run: bool) -> Step:
    """The step with the reason it shows and records in this run of maintain (an analyze due
    by the ratio: its relation's own)."""
    why = dict(decision.targets).get(step.target, decision.reason)
    if dry_run and step.skip is not None:
        return replace(step, skip=_due(why, step.skip))
    if dry_run:
        return replace(step, reason=_due(why, step.reason))
    done = step.done or step.reason
    if step.skip is None and done != why:
        return replace(step, done=f"{why}: {done}")
    return step


def _run_task(
    session: Session, executor: Executor, decision: schedule.Decision, seconds_left: float
) -> list[TaskResult]:
    """Run (or plan) one due task; every result is recorded, skipped ones included, and a
    task whose steps are each about one object gets a row of its own that sums them up. A
    lock its planning could not get within lock_timeout (a plain REFRESH or a REINDEX holding
    the rollup or an index) fails this task alone, recorded with who holds it; the others
    still run."""
    try:
        return _run_task_planned(session, executor, decision, seconds_left)
    except psycopg.errors.LockNotAvailable:
        primary = history.task_target(session.config, decision.task)
        reason = _not_granted(session, "what it works on")
        result = TaskResult(
            decision.task, primary, "failed", reason, 0, None, reason, history.LOCK_BUSY
        )
        if not executor.dry_run:
            executor.record_result(result)
        return [result]


def _not_granted(session: Session, what: str) -> str:
    """`could not read <what>: a lock was not granted within lock_timeout (5s): <holders>`."""
    limit = ms(session.config.database.lock_timeout)
    return f"could not read {what}: a lock was not granted within lock_timeout ({limit}): " + (
        _holders(session)
    )


def _holders(session: Session) -> str:
    """Who holds an ACCESS EXCLUSIVE lock on the source table or the rollup, else the open
    transactions (what holds one on an index only, a REINDEX, is among them)."""
    for target in targets(session):
        params = {"oid": target.oid, "modes": ["AccessExclusiveLock"]}
        held = [r for r in session.all("catalog/lock_holders", params) if r["granted"]]
        if held:
            return describe_blockers(session, None, (), held)
    return describe_blockers(session, None, ())


def _run_task_planned(
    session: Session, executor: Executor, decision: schedule.Decision, seconds_left: float
) -> list[TaskResult]:
    primary = history.task_target(session.config, decision.task)
    if decision.task in RUNNERS and not executor.dry_run:
        refused = refusal(session, task_needs(session, decision.task))
        if refused is not None:  # all the rights it lacks, before it reads anything
            result = TaskResult(decision.task, primary, "failed", refused, 0, None, refused)
            executor.record_result(result)
            return [result]
        return RUNNERS[decision.task](session, executor, decision.reason, seconds_left)
    if decision.task == "refresh":
        results = refresh(session, executor, lambda s: _for_decision(s, decision, executor.dry_run))
        for r in results:
            if r.status in ("skipped", "failed") and not r.sql:
                if executor.dry_run:
                    r.reason = _due(decision.reason, r.reason)
                executor.record_result(r)  # decided without running a step
        return results
    steps = [
        _for_decision(step, decision, executor.dry_run)
        for step in PLANNERS[decision.task](session, decision)
    ]
    if decision.targets and primary not in dict(decision.targets):
        # only the rollup: no row for the source table, whose schedule it would reset
        return executor.run_all(steps)
    return executor.run_task(decision.task, primary, decision.reason, steps)


def _planned_sql(session: Session, decision: schedule.Decision) -> str | None:
    """The SQL a task not due now would run (for a dry run's listing)."""
    if decision.task == "refresh":
        results = refresh(session, Executor(session, dry_run=True))
    else:
        results = Executor(session, dry_run=True).run_all(
            PLANNERS[decision.task](session, decision)
        )
    return ";\n".join(r.sql for r in results if r.sql) or None


def _maintain_locked(
    session: Session,
    opts: MaintainOptions,
    executor: Executor,
    now: dt.datetime | None,
    clock: Callable[[], float],
) -> MaintainReport:
    m = session.config.maintenance
    if now is None:
        now, _hour = db_now(session)
    assert now is not None
    runs = history.last_runs(session)
    last_ok = {t: h["last_ok"] for t, h in runs.items() if h["last_ok"] is not None}
    need = catalog.need(session, new_name(session.config.view_name))
    need = replace(need, partial_analyze=history.partial_analyze(session))
    decisions = schedule.due_tasks(
        last_ok,
        m,
        now,
        need,
        only=opts.only,
        skip=opts.skip,
        force=opts.force,
        off=off_tasks(session.config),
    )
    budget = (opts.max_runtime or m.max_runtime).total_seconds()
    start = clock()
    results: list[TaskResult] = []
    vacuumed = False
    for decision in decisions:
        primary = history.task_target(session.config, decision.task)
        if decision.task == "analyze" and decision.due and vacuumed and decision.reason != "forced":
            results.append(
                TaskResult("analyze", primary, "skipped", "done by VACUUM (ANALYZE) in this run")
            )
            continue
        if decision.reason == "not selected":
            continue
        if not decision.due:
            text = _planned_sql(session, decision) if executor.dry_run else None
            results.append(
                TaskResult(
                    decision.task, primary, "skipped", f"not due: {decision.reason}", 0, text
                )
            )
            continue
        elapsed = clock() - start
        estimate = runs.get(decision.task, {}).get("p90_seconds")
        if decision.task in schedule.SELF_LIMITED:
            estimate = None  # it stops itself when max_runtime is used up
        if not executor.dry_run and not schedule.fits(estimate, elapsed, budget):
            why = (
                f"stopped: max-runtime {human_seconds(budget)} used up"
                if elapsed >= budget
                else f"would not fit in max-runtime (takes ~{human_seconds(estimate or 0)}, "
                f"{human_seconds(budget - elapsed)} left)"
            )
            skipped = TaskResult(decision.task, primary, "skipped", why)
            executor.record_result(skipped)
            results.append(skipped)
            continue
        task_results = _run_task(session, executor, decision, budget - elapsed)
        results += task_results
        if decision.task == "vacuum" and task_results and not executor.dry_run:
            vacuumed = all(r.status == "ok" for r in task_results)
    return MaintainReport(decisions, results)
