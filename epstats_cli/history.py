"""The run history `epstats.runs`: what each task did, when, and how long it takes.

Every changing command's results land here (through the step executor); `maintain`'s schedule
and `check`'s maintain_failed read it back.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from epstats_cli.config import Config
from epstats_cli.db import Session

# epstats.runs.failure: what kind of failure a failed run was, told by the executor from what
# happened (not read back from the error's words, which quote other sessions' queries):
LOCK_BUSY = "lock_busy"  # only a busy lock (lock_timeout or indexes.max_wait, SKIP_LOCKED)
LEFT_BEHIND = "left_behind"  # it left an invalid index or another leftover behind
ERROR = "error"  # anything else


@dataclass
class TaskResult:
    """One task's outcome, in SPEC.md's maintenance JSON shape."""

    task: str
    target: str
    status: str  # ok | failed | skipped | planned | interrupted
    reason: str = ""
    seconds: float = 0.0
    sql: str | None = None
    error: str | None = None
    failure: str | None = None  # a failed run's kind: LOCK_BUSY, LEFT_BEHIND or ERROR

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "task": self.task,
            "target": self.target,
            "status": self.status,
            "reason": self.reason,
            "seconds": round(self.seconds, 3),
            "sql": self.sql,
        }
        if self.error:
            d["error"] = self.error
        return d


def failure_of(kinds: list[str | None]) -> str:
    """The kind of a task's failure from its failed steps' kinds: LEFT_BEHIND when one left
    something behind, LOCK_BUSY when each was a busy lock, else ERROR."""
    if LEFT_BEHIND in kinds:
        return LEFT_BEHIND
    return LOCK_BUSY if kinds and all(k == LOCK_BUSY for k in kinds) else ERROR


def available(session: Session) -> bool:
    """Whether `epstats init` has created the history table."""
    return session.one("catalog/relation", {"schema": "epstats", "name": "runs"}) is not None


def task_target(config: Config, task: str) -> str:
    """The primary target of a maintenance task: the one its schedule is about."""
    # a build, or the swap of a --replace, refreshes
    if task in ("refresh", "build", "swap", "verify"):
        return str(config.view_name)
    if task == "reindex":
        return f"indices of {config.source.table}"
    if task == "cleanup":
        return f"leftovers of {config.source.table}"
    return str(config.source.table)


def stage_target(target: str, stage: int, stages: int) -> str:
    """The target an early stage of `analyze --in-stages` is recorded under: not the table's
    own, so that only the final stage counts as its analyze (see partial_analyze)."""
    return f"{target} (stage {stage} of {stages})"


def partial_analyze(session: Session) -> dt.datetime | None:
    """When an early stage of `analyze --in-stages` last left the source table's statistics
    at a low target (None: never)."""
    prefix = f"{task_target(session.config, 'analyze')} (stage "  # as stage_target names it
    found = session.value("maintenance/analyze_partial", {"prefix": prefix})
    return found if isinstance(found, dt.datetime) else None


def last_runs(session: Session) -> dict[str, dict[str, Any]]:
    """Per task, the history of its primary target: last_ok, last_status, last_error,
    last_started, p90_seconds."""
    rows = session.all("maintenance/history_last")
    return {r["task"]: r for r in rows if r["target"] == task_target(session.config, r["task"])}


def start(session: Session, task: str, target: str, reason: str, sql: str | None) -> int:
    """A run's row, `running` from now on; `finish` ends it."""
    run_id = session.value(
        "maintenance/history_start", {"task": task, "target": target, "reason": reason, "sql": sql}
    )
    return int(run_id)


def finish(session: Session, run_id: int, result: TaskResult) -> None:
    """End a run's row now, with its outcome (ok, failed, skipped or interrupted) and, for a
    failure, its kind (when epstats.runs has that column: `epstats init` adds it to an older
    table, and until then `check` judges the failure by its words)."""
    params = {
        "id": run_id,
        "status": result.status,
        "reason": result.reason,
        "sql": result.sql,
        "error": result.error,
        "failure": result.failure if result.status == "failed" else None,
    }
    if session.value("maintenance/history_kinded"):
        session.run("maintenance/history_finish", params)
    else:
        session.run("maintenance/history_finish_unkinded", params)


def record(session: Session, result: TaskResult) -> None:
    """Write a task decided or summed up after the fact (start = end - its seconds)."""
    run_id = start(session, result.task, result.target, result.reason, result.sql)
    session.run("maintenance/history_backdate", {"seconds": result.seconds, "id": run_id})
    finish(session, run_id, result)


def record_all(session: Session, results: list[TaskResult]) -> None:
    """Record one-off runs too, so the schedule knows about them (when epstats is initialised)."""
    if session.server.in_recovery or not available(session):
        return
    for r in results:
        if r.status in ("ok", "failed"):
            record(session, r)
