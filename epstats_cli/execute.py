"""The step executor: every change epstats makes runs through `Executor.run(step)`.

Planners describe a change as `Step`s (steps.py). The executor alone does dry-run, progress,
timing, lock waits (CONCURRENTLY statements under indexes.max_wait, one epstats process per
table at a time; the rest under database.lock_timeout) and retries naming the blocker, work the
server skipped with a WARNING, repair of invalid leftovers (one try within REPAIR_BUDGET; a
deadlock's victim repaired and tried once more), interruption (bounded repair, exit
130/143/129), history (with the kind of a failure) and the result, so `--dry-run` prints
exactly the statements a real run executes.

The module is over 400 lines because the Executor is one contract (run, retry, repair,
interrupt, record) whose parts share its state; the step types and the lock waits already
live in steps.py and waits.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import TYPE_CHECKING

import psycopg
from psycopg import pq, sql

from epstats_cli import history
from epstats_cli.db import Session
from epstats_cli.errors import (
    Interrupted,
    OperationFailed,
    first_line,
    from_exception,
    interrupted,
    interrupted_message,
    noted_signal,
)
from epstats_cli.history import ERROR, LEFT_BEHIND, LOCK_BUSY, TaskResult
from epstats_cli.sqltext import as_text
from epstats_cli.steps import (
    LEFTOVER,
    Logged,
    Mode,
    Statement,
    Step,
    left_by,
    plan_text,
    statement_texts,
    statements_text,
)
from epstats_cli.waits import (
    CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
    LockNotGranted,
    RepairFailed,
    WaitWatch,
    execute_noting_skips,
    max_wait_text,
    one_at_a_time,
    retry_on_lock,
    timeouts,
    watch_waits,
)

if TYPE_CHECKING:
    from rich.console import Console

    from epstats_cli.progress import Span

# planners import the step types from here, with the executor that runs them
__all__ = [
    "CONFLICTS_SHARE_UPDATE_EXCLUSIVE",
    "LockNotGranted",
    "Logged",
    "Mode",
    "Statement",
    "Step",
    "plan_text",
    "retry_on_lock",
    "statement_texts",
    "statements_text",
]

# How long the repairs after an interruption may take in all (Kubernetes gives 30 s between
# SIGTERM and SIGKILL); a leftover that cannot be dropped in time is left to `cleanup`.
INTERRUPT_BUDGET = 5.0
# How long the repair of a failed try may take (one DROP INDEX CONCURRENTLY of what it left,
# no lock retries): a step gives up within indexes.max_wait and this.
REPAIR_BUDGET = 3.0


@dataclass
class _Repairs:
    """The repairs of one step: the invalid indices its relation had before it ran (see
    Executor._left), and the deadline its repairs share, set by the first."""

    before: frozenset[int] = frozenset()
    deadline: float | None = None

    def by(self) -> float:
        if self.deadline is None:
            self.deadline = time.monotonic() + REPAIR_BUDGET
        return self.deadline


def error_text(exc: BaseException) -> str:
    """A step's failure in the words of the one error table (errors.RULES)."""
    if isinstance(exc, OperationFailed):
        return str(exc)
    if isinstance(exc, psycopg.Error):
        mapped = from_exception(exc)
        if mapped is not None:
            return mapped.format_message()
    return first_line(exc)


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
    # Lines for a person watching (whom a CONCURRENTLY statement waits for); None: say nothing
    note: Callable[[str], None] | None = None
    log: list[Logged] = field(default_factory=list)
    results: list[TaskResult] = field(default_factory=list)  # every result run() returned
    _history: bool | None = field(default=None, repr=False)
    _span: tuple[Span, Sequence[Step]] | None = field(default=None, repr=False)  # one bar

    def run_all(self, steps: Iterable[Step], stop_on_failure: bool = False) -> list[TaskResult]:
        """Run steps in order; with stop_on_failure, the rest are skipped after a failure."""
        results: list[TaskResult] = []
        failed = False
        steps = list(steps)
        with self._spanning(steps):
            for step in steps:
                if failed and stop_on_failure:
                    why = "not run: an earlier step failed"
                    text = statements_text(self.session, step)
                    skipped = TaskResult(step.task, step.target, "skipped", why, 0, text)
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

    def run_task(
        self, task: str, target: str, reason: str, steps: Sequence[Step]
    ) -> list[TaskResult]:
        """Run the steps of one task (a skipped one is recorded too). When no step is about the
        task's own target (`indices of public.requests` for reindex), the task gets a row of its
        own, spanning its steps, with their sum: the row the schedule reads."""
        if self.dry_run:
            return [self.run(step) for step in steps]
        own = not any(step.target == target for step in steps)
        run_id = self._start(task, target, reason, None) if own else None
        started = time.monotonic()
        results: list[TaskResult] = []
        try:
            with self._spanning(steps):
                for step in steps:
                    result = self.run(step)
                    if result.status == "skipped":
                        self.record_result(result)  # run() records only what ran
                    results.append(result)
        except BaseException as exc:
            if run_id is not None:  # (a KeyboardInterrupt: a signal came between two steps)
                stopped = isinstance(exc, Interrupted | KeyboardInterrupt)
                signalled = isinstance(exc, KeyboardInterrupt)
                why = interrupted_message(noted_signal()) if signalled else error_text(exc)
                status = "interrupted" if stopped else "failed"
                kind = LOCK_BUSY if isinstance(exc, LockNotGranted) else ERROR
                end = TaskResult(task, target, status, why, 0, None, why, kind)
                with suppress(psycopg.Error):
                    self._recover()
                    self._finish(run_id, end)
            raise
        if not own:
            return results
        failed = [r for r in results if r.status == "failed"]
        done = [r for r in results if r.status == "ok"]
        summary = TaskResult(
            task,
            target,
            "failed" if failed else "ok",
            f"{reason}: {len(done)} done, {len(failed)} failed, "
            f"{len(results) - len(done) - len(failed)} skipped",
            time.monotonic() - started,
            None,
            "; ".join(r.error or "" for r in failed) or None,
            history.failure_of([r.failure for r in failed]) if failed else None,
        )
        self._finish(run_id, summary)
        return [*results, summary]

    def _run(self, step: Step) -> TaskResult:
        if step.skip is not None:
            text = statements_text(self.session, step)
            return TaskResult(step.task, step.target, "skipped", step.skip, 0, text)
        if self.dry_run:
            text = plan_text(self.session, step)
            why = step.reason + (f"; would fail: {step.refused}" if step.refused else "")
            return TaskResult(step.task, step.target, "planned", why, 0, text)
        text = statements_text(self.session, step)
        if step.refused is not None:
            refused = TaskResult(
                step.task, step.target, "failed", step.refused, 0, text, step.refused, ERROR
            )
            self.record_result(refused)
            if step.raise_failure:
                raise OperationFailed(step.refused)
            return refused
        run_id = self._start(step.task, step.target, step.reason, text)
        start = time.monotonic()
        if step.mode is not Mode.CONCURRENTLY or step.relation_oid is None:
            return self._attempt(step, text, run_id, start, None)
        with ExitStack() as turn:
            try:
                label = f"{step.task} {step.target}"
                limit = turn.enter_context(
                    one_at_a_time(self.session, step.relation_oid, label, self.note)
                )
            except KeyboardInterrupt as exc:
                raise self._interrupted(step, text, run_id, start) from exc
            except (OperationFailed, psycopg.Error) as exc:
                # its turn never came: nothing ran, nothing to repair
                kind = LOCK_BUSY if isinstance(exc, LockNotGranted) else ERROR
                why = error_text(exc)
                result = TaskResult(
                    step.task, step.target, "failed", why, time.monotonic() - start, text, why, kind
                )
                return self._conclude(step, run_id, result, exc)
            return self._attempt(step, text, run_id, start, limit)

    def _attempt(
        self, step: Step, text: str, run_id: int | None, start: float, limit: timedelta | None
    ) -> TaskResult:
        """Run a step (a CONCURRENTLY one in its turn, waiting at most `limit`), repair what a
        failed try left within a few seconds, and end its row."""
        error: str | None = None
        kind: str | None = None
        failure: OperationFailed | psycopg.Error | None = None
        repairs = _Repairs(self._invalid(step))
        try:
            stale = self._drop_stale(step)
            if stale:  # an earlier rebuild's copy is still there: do not add another
                why = (
                    f"not rebuilt: the invalid copy {', '.join(stale)} an earlier interrupted "
                    "rebuild left cannot be dropped yet (an older transaction still runs, and "
                    "DROP INDEX CONCURRENTLY waits for it too); another try would only leave "
                    f"another copy: {step.leftover_hint} once that transaction has ended"
                )
                seconds = time.monotonic() - start
                skipped = TaskResult(step.task, step.target, "skipped", why, seconds, text)
                return self._conclude(step, run_id, skipped, None)
            repairs = _Repairs(self._invalid(step))
            self._tries(step, limit, repairs)
            if step.index is not None and self._index_valid(step) is False:
                error, kind = "the build finished but the index is not valid", LEFT_BEHIND
                self._repair(step, repairs)
        except (OperationFailed, psycopg.Error) as exc:
            failure = exc
            error = error_text(exc)
            kind = LOCK_BUSY if isinstance(exc, LockNotGranted) else ERROR
            hint = step.error_hints.get(getattr(exc, "sqlstate", None) or "")
            if hint is not None:
                error = hint.replace("{error}", error)
            left = self._repair(step, repairs)
            if left:
                kind = LEFT_BEHIND
                error += (
                    f"; an invalid index {', '.join(left)} was left behind (it cannot be "
                    "dropped while an older transaction still runs, and DROP INDEX "
                    f"CONCURRENTLY waits for it too): {step.leftover_hint}"
                )
        except KeyboardInterrupt as exc:
            raise self._interrupted(step, text, run_id, start, repairs) from exc
        except BaseException as exc:
            self._stop(step, time.monotonic() + INTERRUPT_BUDGET, repairs)
            why = error_text(exc)
            result = TaskResult(step.task, step.target, "failed", why, 0, text, why, ERROR)
            with suppress(psycopg.Error):
                self._end(run_id, result)
            raise
        seconds = time.monotonic() - start
        if error is not None:
            self._undo(step)
            result = TaskResult(step.task, step.target, "failed", error, seconds, text, error, kind)
        else:
            result = TaskResult(
                step.task, step.target, "ok", step.done or step.reason, seconds, text
            )
        return self._conclude(step, run_id, result, failure)

    def _conclude(
        self,
        step: Step,
        run_id: int | None,
        result: TaskResult,
        failure: OperationFailed | psycopg.Error | None,
    ) -> TaskResult:
        """End the step's row with its result; re-raise its failure when the step says so."""
        self._end(run_id, result)
        if failure is not None and step.raise_failure:
            raise failure
        return result

    def _tries(self, step: Step, limit: timedelta | None, repairs: _Repairs) -> None:
        """The step's tries: retried on a lock timeout (not a CONCURRENTLY statement, which
        waited indexes.max_wait already); a CONCURRENTLY statement chosen as a deadlock's
        victim is repaired and tried once more."""
        attempts = iter(range(1 << 30))
        concurrently = step.mode is Mode.CONCURRENTLY
        for deadlocked in (False, True):
            try:
                with self._watching(step) as waits:
                    retry_on_lock(
                        self.session,
                        lambda: self._try(step, next(attempts), limit),
                        relation_oid=step.relation_oid,
                        modes=step.lock_modes,
                        retries=0 if concurrently and step.retries is None else step.retries,
                        between_tries=lambda: self._repair_or_stop(step, repairs),
                        waited=max_wait_text(self.session) if concurrently else None,
                        seen=waits.seen,
                    )
                return
            except psycopg.errors.DeadlockDetected:
                if deadlocked or not concurrently or self._repair(step, repairs):
                    raise
                if self.note is not None:
                    self.note(
                        f"epstats: {step.task} {step.target} was a deadlock's victim; what it "
                        "left is repaired, and it tries once more"
                    )
                repairs.deadline = None  # the next try's repair has a budget of its own

    def _interrupted(
        self,
        step: Step,
        text: str,
        run_id: int | None,
        start: float,
        repairs: _Repairs | None = None,
    ) -> Interrupted:
        """After SIGINT/SIGTERM/SIGHUP (psycopg has cancelled the statement): repair (unless
        nothing ran yet: `repairs` None) for at most INTERRUPT_BUDGET seconds, record the run as
        interrupted, and the error to exit with (130/143/129)."""
        seconds = time.monotonic() - start
        signum = noted_signal()
        message = f"{interrupted_message(signum)}: {step.task} {step.target} did not finish"
        if step.interrupted_note:
            message += f"; {step.interrupted_note}"
        deadline = time.monotonic() + INTERRUPT_BUDGET
        self._recover()
        left = self._stop(step, deadline, repairs)
        if left:
            message += (
                f"; the invalid index {', '.join(left)} could not be dropped in time: "
                f"{step.leftover_hint}"
            )
        result = TaskResult(step.task, step.target, "interrupted", message, seconds, text, message)
        with suppress(psycopg.Error):
            self._end(run_id, result)
        return interrupted(signum, message)

    def _recover(self) -> None:
        """A connection that can run statements again after an interruption: the same one
        (rolled back if need be), or a fresh one when psycopg could not finish cancelling (on
        a loaded server) and the old one is still busy."""
        conn = self.session.conn
        status = None if conn.closed else conn.pgconn.transaction_status
        if status == pq.TransactionStatus.IDLE:
            return
        with suppress(psycopg.Error):
            if status in (pq.TransactionStatus.INTRANS, pq.TransactionStatus.INERROR):
                conn.rollback()
            else:
                self.session = replace(self.session, conn=self.session.another())

    def _stop(self, step: Step, deadline: float, repairs: _Repairs | None) -> list[str]:
        """Repair (unless nothing ran yet: `repairs` None) and undo what a step stopped halfway
        left, within a deadline; the invalid indices still left (for cleanup)."""
        with suppress(psycopg.Error):
            left = [] if repairs is None else self._repair(step, repairs, deadline)
            self._undo(step, deadline)
            return left
        return []

    def _try(self, step: Step, attempt: int, limit: timedelta | None) -> None:
        conn = self.session.conn
        kind = "run" if attempt == 0 else "retry"
        if step.mode is Mode.TRANSACTION:
            with conn.transaction():
                self.log.append(Logged(kind, "BEGIN"))
                for st in step.statements:
                    self._execute(st, kind, step.skip_locked)
            self.log.append(Logged(kind, "COMMIT"))
            return
        max_wait = limit or self.session.config.indexes.max_wait
        with timeouts(self.session, max_wait if step.mode is Mode.CONCURRENTLY else None):
            for st in step.statements:
                self._execute(st, kind, step.skip_locked)

    def _execute(self, st: Statement, kind: str, skip_locked: bool = False) -> None:
        conn = self.session.conn
        self.log.append(Logged(kind, as_text(conn, st.query, st.params)))
        # a permission error carries the statement, so its hint names the grant it lacks
        with self.session.noting(sql.Composed([st.query])):
            execute_noting_skips(conn, st.query, st.params, skip_locked)
        if st.after is not None:
            st.after()

    def _index_valid(self, step: Step) -> bool | None:
        assert step.index is not None
        schema, name = step.index
        with suppress(psycopg.Error):
            value = self.session.value("indexes/is_valid", {"schema": schema, "name": name})
            return None if value is None else bool(value)
        return None

    def _invalid(self, step: Step) -> frozenset[int]:
        """The invalid indices of the relation of a step that builds or rebuilds one, before it
        runs: those a failed try leaves are the others (see _left)."""
        if step.index is None or step.relation_oid is None:
            return frozenset()
        with suppress(psycopg.Error):
            rows = self.session.all("indexes/invalid", {"oid": step.relation_oid})
            return frozenset(int(r["oid"]) for r in rows)
        return frozenset()

    def _stale(self, step: Step) -> list[tuple[str, str]]:
        """For a REINDEX CONCURRENTLY (its index the predicted `_ccnew` copy): the invalid
        copies of the same index that an earlier, interrupted rebuild left (not another
        session's build in progress)."""
        if step.index is None or step.relation_oid is None or not LEFTOVER.search(step.index[1]):
            return []
        with suppress(psycopg.Error):
            oid = {"oid": step.relation_oid}
            builds = self.session.all("catalog/index_builds", oid)
            building = {int(b["index_relid"]) for b in builds if b["index_relid"]}
            return [
                (r["schema"], r["name"])
                for r in self.session.all("indexes/invalid", oid)
                if int(r["oid"]) not in building and left_by(step, r["name"])
            ]
        return []

    def _drop_stale(self, step: Step) -> list[str]:
        """Before a REINDEX CONCURRENTLY: drop the copies of the index an earlier rebuild left
        (cleanup's statement, one try each within REPAIR_BUDGET), rather than add one more
        (PostgreSQL would name the next `_ccnew1`, and so on). The names of those still left."""
        stale = self._stale(step)
        if not stale:
            return []
        deadline = time.monotonic() + REPAIR_BUDGET
        for schema, name in stale:
            drop = self.session.statement("indexes/drop", index=(schema, name))
            self._best_effort("repair", Statement(drop), deadline)
        return [name for _schema, name in self._stale(step)]

    def _left(self, step: Step, repairs: _Repairs) -> list[tuple[str, str]]:
        """The invalid indices a try of the step left (not invalid before it ran): its own
        index, or the copies a REINDEX CONCURRENTLY made, whatever PostgreSQL named them (a
        `_ccnew1` when `_ccnew` was taken, the old index as `_ccold` after the swap)."""
        if step.index is None:
            return []
        if step.relation_oid is None:  # only its own index can be told apart
            return [step.index] if self._index_valid(step) is False else []
        with suppress(psycopg.Error):
            rows = self.session.all("indexes/invalid", {"oid": step.relation_oid})
            return [
                (r["schema"], r["name"])
                for r in rows
                if int(r["oid"]) not in repairs.before and left_by(step, r["name"])
            ]
        return []

    def _repair(self, step: Step, repairs: _Repairs, deadline: float | None = None) -> list[str]:
        """Drop what a failed try left invalid: one try each, within the step's repair budget
        (REPAIR_BUDGET seconds; an interruption's deadline instead), never lock retries (a
        DROP INDEX CONCURRENTLY waits for the same older transactions the step gave up on).
        The step's own repair statements first, then any other index the try left (a REINDEX
        CONCURRENTLY's `_ccold`, a `_ccnew1`). The names of the indices still left."""
        left = self._left(step, repairs)
        if not left:
            return []
        by = repairs.by() if deadline is None else deadline
        for schema, name in left:
            if (schema, name) == step.index and step.repair:
                for st in step.repair:
                    self._best_effort("repair", st, by)
            else:
                drop = self.session.statement("indexes/drop", index=(schema, name))
                self._best_effort("repair", Statement(drop), by)
        return [name for _schema, name in self._left(step, repairs)]

    def _repair_or_stop(self, step: Step, repairs: _Repairs) -> None:
        """Between tries: repair, and stop retrying when a leftover is still there."""
        if self._repair(step, repairs):
            raise RepairFailed("what the try left cannot be dropped yet")

    def _undo(self, step: Step, deadline: float | None = None) -> None:
        """The step's on_failure statements (best effort)."""
        for st in step.on_failure:
            self._best_effort("on_failure", st, deadline)

    def _best_effort(self, kind: str, st: Statement, deadline: float | None = None) -> None:
        """One statement, logged each time it is sent: with two lock retries, or (a repair,
        or after an interruption) once within a deadline, under a lock_timeout no longer than
        database.lock_timeout; an error is swallowed (the caller reports)."""
        conn = self.session.conn
        text = as_text(conn, st.query, st.params)

        def send() -> None:
            self.log.append(Logged(kind, text))
            conn.execute(st.query, st.params)

        if deadline is not None:
            left = deadline - time.monotonic()
            if left < 0.1:
                return
            budget = timedelta(seconds=left)
            lock = min(budget, self.session.config.database.lock_timeout)
            with suppress(psycopg.Error), timeouts(self.session, lock, budget):
                send()
            return
        with suppress(LockNotGranted, psycopg.Error):
            retry_on_lock(self.session, send, relation_oid=None, retries=2)

    @contextmanager
    def _spanning(self, steps: Sequence[Step]) -> Iterator[None]:
        """One progress bar across `steps` (run_all's, run_task's) for a person at a terminal,
        when one of them draws a bar: each step's share of it weighted by its table's size."""
        from epstats_cli.progress import Span, weights

        watched = [s.progress is not None and s.skip is None and s.refused is None for s in steps]
        if self.console is None or self.dry_run or self._span is not None or not any(watched):
            yield
            return
        sizes = weights(self.session, [s.relation_oid for s in steps], watched)
        with Span(self.console, sizes) as span:
            self._span = (span, steps)
            try:
                yield
            finally:
                self._span = None

    @contextmanager
    def _watching(self, step: Step) -> Iterator[WaitWatch]:
        """A progress bar for a person at a terminal (the span's, when the step is one of
        its steps); for a CONCURRENTLY statement, whom it waits for (named when it gives up;
        said meanwhile to a person watching, or with -v)."""
        from epstats_cli.progress import watch

        label = f"{step.task} {step.target}"
        console = self.console if step.progress is not None else None
        span, steps = self._span or (None, ())
        index = next((i for i, s in enumerate(steps) if s is step), None)
        if index is None:
            span, index = None, 0
        with watch(self.session, step.progress, label, console, span, index):
            if step.mode is Mode.CONCURRENTLY:
                with watch_waits(self.session, label, self.note) as waits:
                    yield waits
            else:
                yield WaitWatch()

    def _recording(self) -> bool:
        """Whether results go to epstats.runs: `record` set, not a dry run, on a primary where
        init has run."""
        if not self.record or self.dry_run or self.session.server.in_recovery:
            return False
        if self._history is None:
            self._history = history.available(self.session)
        return self._history

    def _start(self, task: str, target: str, reason: str, text: str | None) -> int | None:
        recording = self._recording()
        return history.start(self.session, task, target, reason, text) if recording else None

    def _check_connection(self, result: TaskResult) -> None:
        """A connection the server closed (pg_terminate_backend, a restart) cannot record
        anything: say what the step met instead of hiding it behind "connection is closed"."""
        conn = self.session.conn
        if conn.closed or conn.broken:
            what = result.error or result.reason
            raise OperationFailed(
                f"{result.task} {result.target}: {what}; the connection to the server was lost, "
                "so nothing more ran and this was not recorded (`epstats maintain` cleans up "
                "what it left)"
            )

    def _finish(self, run_id: int | None, result: TaskResult) -> None:
        self._check_connection(result)
        if run_id is not None:
            history.finish(self.session, run_id, result)

    def _end(self, run_id: int | None, result: TaskResult) -> None:
        """Finish the step's row; a step that started none records its result now."""
        if run_id is None:
            self.record_result(result)
        else:
            self._finish(run_id, result)

    def record_interrupted(self, result: TaskResult) -> None:
        """Record a task a signal stopped outside a step (a runner's own, between its steps),
        on a connection that can run statements again; what cannot be recorded now (the
        connection lost) is left to the next run's cleanup, never hiding the interruption."""
        with suppress(psycopg.Error, OperationFailed):
            self._recover()
            self.record_result(result)

    def record_result(self, result: TaskResult) -> None:
        """Record a result decided without running a step (a refusal, a max-runtime skip, a
        skipped step), when recording."""
        self._check_connection(result)
        if self._recording():
            history.record(self.session, result)
