"""The step executor: every change epstats makes runs through `Executor.run(step)`.

A planner (maintenance, indexes, rollup, init, generate) describes a change as `Step`s: the
task and target, the reason, the statements and how they run (`Mode`). The executor alone
does dry-run, progress, timing, lock retries with named blockers, repair of invalid leftovers,
history and the result, so `--dry-run` prints exactly the statements a real run executes.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg import sql

from epstats_cli import history
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed, first_line
from epstats_cli.history import TaskResult
from epstats_cli.sqltext import as_text

if TYPE_CHECKING:
    from rich.console import Console

# Lock modes that conflict with SHARE UPDATE EXCLUSIVE (CREATE/DROP INDEX CONCURRENTLY,
# REINDEX CONCURRENTLY, VACUUM, ANALYZE, REFRESH MATERIALIZED VIEW CONCURRENTLY).
CONFLICTS_SHARE_UPDATE_EXCLUSIVE = (
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)


class Mode(enum.Enum):
    """How a step's statements run."""

    AUTOCOMMIT = "autocommit"  # one after another, each retried alone on a lock timeout
    TRANSACTION = "transaction"  # all in one BEGIN ... COMMIT, retried whole
    CONCURRENTLY = "concurrently"  # a CONCURRENTLY statement; `repair` after a failed try


@dataclass(frozen=True)
class Statement:
    """One statement and its parameters, as sent to the server."""

    query: sql.Composed | sql.SQL
    params: Mapping[str, Any] | None = None
    # Called after the statement succeeded (e.g. to advance a row-count progress bar); again
    # when a retry runs it again.
    after: Callable[[], None] | None = field(default=None, compare=False, repr=False)


@dataclass
class Step:
    """One change: what, on what, why, the statements, and how they run."""

    task: str
    target: str
    reason: str
    statements: Sequence[Statement]
    mode: Mode = Mode.AUTOCOMMIT
    done: str | None = None  # the reason shown on success (default: reason)
    relation_oid: int | None = None  # whose lock holders to name when a lock is not granted
    lock_modes: Sequence[str] = CONFLICTS_SHARE_UPDATE_EXCLUSIVE
    skip_locked: bool = False  # a "skipping ... lock" notice counts as a lock not granted
    # The index this step builds or rebuilds: (schema, name). Checked after the run; while it
    # exists and is invalid after a failed or interrupted try, `repair` runs (best effort).
    index: tuple[str, str] | None = None
    repair: Sequence[Statement] = ()
    # Run (best effort) once the step has finally failed or been interrupted, e.g. to drop a
    # half-done replacement; idempotent statements (IF EXISTS).
    on_failure: Sequence[Statement] = ()
    # The message for an error this step expects, by SQLSTATE (e.g. "2BP01"): what to do about
    # it; "{error}" in the text stands for the server's message.
    error_hints: Mapping[str, str] = field(default_factory=dict)
    leftover_hint: str = "`epstats maintain --only cleanup` drops it"
    progress: str | None = None  # a catalog/*_progress statement to draw a bar from
    skip: str | None = None  # planned but not run, for this reason
    retries: int | None = None  # default: maintenance.lock_retries
    # Re-raise the final error (after repair and on_failure; recorded first) instead of
    # returning a failed result: for a step whose failure is its command's failure.
    raise_failure: bool = False


@dataclass(frozen=True)
class Logged:
    """A statement the executor sent: `run` (the plan), `retry` (again after a lock timeout),
    `repair` (after a failed or interrupted try) or `on_failure` (after the step failed)."""

    kind: str
    text: str


class LockNotGranted(OperationFailed):
    """lock_timeout expired on every try; the message names who held the lock (exit 1 when
    it ends a command)."""


class _SkippedForLock(Exception):
    """A SKIP_LOCKED statement skipped its table: retried like a lock timeout."""


def statement_texts(session: Session, step: Step) -> list[str]:
    """The statements of a step as the server receives them, with BEGIN/COMMIT if any."""
    texts = [as_text(session.conn, st.query, st.params) for st in step.statements]
    if step.mode is Mode.TRANSACTION:
        return ["BEGIN", *texts, "COMMIT"]
    return texts


def statements_text(session: Session, step: Step) -> str:
    """The statements of a step joined as one script: what a run sends, and records."""
    return ";\n".join(statement_texts(session, step))


def plan_text(session: Session, step: Step) -> str:
    """What --dry-run prints for a step: its statements, then the repair it may need."""
    text = statements_text(session, step)
    for st in step.repair:
        repair = as_text(session.conn, st.query, st.params)
        text += f";\n-- only if a try fails and leaves the index invalid: {repair}"
    for st in step.on_failure:
        undo = as_text(session.conn, st.query, st.params)
        text += f";\n-- only if the step fails: {undo}"
    return text


def describe_blockers(session: Session, relation_oid: int | None, modes: Sequence[str]) -> str:
    """`pid 123 (ShareLock, idle in transaction since 12:00:01)` for whoever blocks us now."""
    rows: list[dict[str, Any]] = []
    if relation_oid is not None:
        found = session.all("catalog/lock_holders", {"oid": relation_oid, "modes": list(modes)})
        rows = [r for r in found if r["granted"]]  # the holders, not the other waiters
    if not rows:
        # CONCURRENTLY builds also wait for older transactions to finish.
        rows = session.all("catalog/oldest_transaction")
    if not rows:
        return "no blocker visible any more"
    parts = []
    for r in rows[:3]:
        since = f" since {r['xact_start']:%H:%M:%S}" if r["xact_start"] else ""
        parts.append(f"pid {r['pid']} ({r['mode']}, {r['state'] or 'unknown state'}{since})")
    return "blocked by " + ", ".join(parts)


def retry_on_lock(
    session: Session,
    fn: Callable[[], object],
    *,
    relation_oid: int | None,
    modes: Sequence[str] = CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
    retries: int | None = None,
    after_timeout: Callable[[], None] | None = None,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run fn (a statement or a short transaction); when lock_timeout expires or a
    SKIP_LOCKED statement skips, retry with doubling backoff, then give up naming the blocker.

    `after_timeout` runs after each failed try (e.g. to drop an invalid half-built index).
    """
    tries = 1 + (session.config.maintenance.lock_retries if retries is None else retries)
    for attempt in range(tries):
        try:
            fn()
            return
        except (psycopg.errors.LockNotAvailable, _SkippedForLock) as exc:
            who = describe_blockers(session, relation_oid, modes)
            if after_timeout is not None:
                after_timeout()
            if attempt + 1 == tries:
                if isinstance(exc, _SkippedForLock):
                    raise LockNotGranted(
                        f"lock not available (SKIP_LOCKED) after {tries} tries: {who}"
                    ) from exc
                ms = round(session.config.database.lock_timeout.total_seconds() * 1000)
                raise LockNotGranted(
                    f"lock not granted within lock_timeout ({ms}ms) after {tries} tries: {who}"
                ) from exc
            sleep(backoff * (2**attempt))


def error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, LockNotGranted) else first_line(exc)


@dataclass
class Executor:
    """Runs steps (or, with dry_run, only describes them); records results in epstats.runs
    when `record` is set and the history table exists.

    A result's `sql` is the step's plan_text when planned (dry run: with the statements that
    run only on a repair or failure), else the statements the step consists of.
    """

    session: Session
    dry_run: bool = False
    console: Console | None = None  # progress bars go here (None: no bars)
    record: bool = False
    log: list[Logged] = field(default_factory=list)
    results: list[TaskResult] = field(default_factory=list)  # every result run() returned
    _history: bool | None = field(default=None, repr=False)

    def run_all(self, steps: Iterable[Step], stop_on_failure: bool = False) -> list[TaskResult]:
        """Run steps in order; with stop_on_failure, the rest are skipped after a failure."""
        results: list[TaskResult] = []
        failed = False
        for step in steps:
            if failed and stop_on_failure:
                skipped = TaskResult(
                    step.task,
                    step.target,
                    "skipped",
                    "not run: an earlier step failed",
                    0,
                    statements_text(self.session, step),
                )
                self.results.append(skipped)
                results.append(skipped)
                continue
            result = self.run(step)
            failed = failed or result.status == "failed"
            results.append(result)
        return results

    def run(self, step: Step) -> TaskResult:
        """Run one step and return (and record) its result."""
        result = self._run(step)
        self.results.append(result)
        return result

    def _run(self, step: Step) -> TaskResult:
        if step.skip is not None:
            text = statements_text(self.session, step)
            return TaskResult(step.task, step.target, "skipped", step.skip, 0, text)
        if self.dry_run:
            text = plan_text(self.session, step)
            return TaskResult(step.task, step.target, "planned", step.reason, 0, text)
        text = statements_text(self.session, step)
        start = time.monotonic()
        error: str | None = None
        failure: LockNotGranted | psycopg.Error | None = None
        attempts = iter(range(1 << 30))
        try:
            with self._progress(step):
                retry_on_lock(
                    self.session,
                    lambda: self._try(step, next(attempts)),
                    relation_oid=step.relation_oid,
                    modes=step.lock_modes,
                    retries=step.retries,
                    after_timeout=lambda: self._repair(step),
                )
            if step.index is not None and self._index_valid(step) is False:
                error = "the build finished but the index is not valid"
                self._repair(step)
        except (LockNotGranted, psycopg.Error) as exc:
            failure = exc
            error = error_text(exc)
            hint = step.error_hints.get(getattr(exc, "sqlstate", None) or "")
            if hint is not None:
                error = hint.replace("{error}", error)
            if step.index is not None:
                self._repair(step)
                if self._index_valid(step) is False:
                    error += (
                        f"; an invalid index {step.index[1]} was left behind (it cannot be "
                        f"dropped while that transaction runs): {step.leftover_hint}"
                    )
        except BaseException:
            self._repair(step)  # interrupted: leave nothing half-built that we can remove
            self._undo(step)
            raise
        seconds = time.monotonic() - start
        if error is not None:
            self._undo(step)
        if error is None:
            result = TaskResult(
                step.task, step.target, "ok", step.done or step.reason, seconds, text
            )
        else:
            result = TaskResult(step.task, step.target, "failed", error, seconds, text, error)
        self.record_result(result)
        if failure is not None and step.raise_failure:
            raise failure
        return result

    def _try(self, step: Step, attempt: int) -> None:
        conn = self.session.conn
        kind = "run" if attempt == 0 else "retry"
        if step.mode is Mode.TRANSACTION:
            with conn.transaction():
                self.log.append(Logged(kind, "BEGIN"))
                for st in step.statements:
                    self._execute(st, kind)
            self.log.append(Logged(kind, "COMMIT"))
            return
        for st in step.statements:
            self._execute(st, kind, step.skip_locked)

    def _execute(self, st: Statement, kind: str, skip_locked: bool = False) -> None:
        conn = self.session.conn
        self.log.append(Logged(kind, as_text(conn, st.query, st.params)))
        if not skip_locked:
            conn.execute(st.query, st.params)
            if st.after is not None:
                st.after()
            return
        notices: list[str] = []

        def on_notice(diag: psycopg.errors.Diagnostic) -> None:
            notices.append(diag.message_primary or "")

        conn.add_notice_handler(on_notice)
        try:
            conn.execute(st.query, st.params)
        finally:
            conn.remove_notice_handler(on_notice)
        if any("skipping" in n and "lock" in n for n in notices):
            raise _SkippedForLock(notices[0])
        if st.after is not None:
            st.after()

    def _index_valid(self, step: Step) -> bool | None:
        assert step.index is not None
        schema, name = step.index
        try:
            value = self.session.value("indexes/is_valid", {"schema": schema, "name": name})
        except psycopg.Error:
            return None
        return None if value is None else bool(value)

    def _repair(self, step: Step) -> None:
        """Drop what a failed try left invalid (best effort, bounded by lock_timeout)."""
        if not step.repair or step.index is None or self._index_valid(step) is not False:
            return
        for st in step.repair:
            self._best_effort("repair", st)

    def _undo(self, step: Step) -> None:
        """The step's on_failure statements (best effort)."""
        for st in step.on_failure:
            self._best_effort("on_failure", st)

    def _best_effort(self, kind: str, st: Statement) -> None:
        """One statement with two lock retries; an error is swallowed (the caller reports)."""
        conn = self.session.conn
        self.log.append(Logged(kind, as_text(conn, st.query, st.params)))
        with suppress(LockNotGranted, psycopg.Error):
            retry_on_lock(
                self.session,
                lambda: conn.execute(st.query, st.params),
                relation_oid=None,
                retries=2,
            )

    @contextmanager
    def _progress(self, step: Step) -> Iterator[None]:
        if self.console is None or step.progress is None:
            yield
            return
        from epstats_cli.progress import watch

        with watch(self.session, step.progress, f"{step.task} {step.target}", self.console):
            yield

    def record_result(self, result: TaskResult) -> None:
        """Record a result in epstats.runs (when `record` is set, not in a dry run, on a
        primary where init has run): each step's, and ones decided without running a step
        (a max-runtime skip, a task's summary)."""
        if not self.record or self.dry_run or self.session.server.in_recovery:
            return
        if self._history is None:
            self._history = history.available(self.session)
        if self._history:
            history.record(self.session, result)
