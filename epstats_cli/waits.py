"""Lock waits of the steps epstats runs: retries with backoff, who blocks us, and (for a person
watching) whom a long CONCURRENTLY statement is waiting for while it waits; and the work the
server skips with a WARNING instead of waiting or failing (SKIP_LOCKED, missing rights).

A lock wait ends at lock_timeout: `database.lock_timeout` for every statement, except the
CONCURRENTLY ones, whose waits (for older transactions) never block INSERTs and may last
`indexes.max_wait`. The executor (execute.py) decides which; this module only waits and names.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli.db import Session
from epstats_cli.durations import format_duration, human_seconds
from epstats_cli.errors import OperationFailed
from epstats_cli.polling import polling

Query = sql.Composed | sql.SQL

# Lock modes that conflict with SHARE UPDATE EXCLUSIVE (CREATE/DROP INDEX CONCURRENTLY,
# REINDEX CONCURRENTLY, VACUUM, ANALYZE, REFRESH MATERIALIZED VIEW CONCURRENTLY).
CONFLICTS_SHARE_UPDATE_EXCLUSIVE = (
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)


class LockNotGranted(OperationFailed):
    """lock_timeout expired on every try; the message names who held the lock (exit 1 when
    it ends a command)."""


class SkippedForLock(Exception):
    """A SKIP_LOCKED statement skipped its table: retried like a lock timeout."""


class SkippedByServer(OperationFailed):
    """The server skipped the work with a WARNING instead of an error (e.g. VACUUM of a table
    the role may not maintain): a failure with the server's words."""


# The WARNING with which VACUUM and ANALYZE skip a table the role may not maintain
# (PostgreSQL up to 15; 16 and later).
_PERMISSION_SKIP = re.compile(
    r"^skipping .* --- only .* can (vacuum|analyze) it$"
    r"|^permission denied to (vacuum|analyze) .*, skipping it$"
)


def execute_noting_skips(
    conn: psycopg.Connection[Any], query: Query, params: Mapping[str, Any] | None, skip_locked: bool
) -> None:
    """Execute a statement, watching its notices: a table the server skipped for want of a
    right raises SkippedByServer; one skipped for a lock (SKIP_LOCKED, when `skip_locked`)
    raises SkippedForLock, which retry_on_lock retries."""
    warnings: list[str] = []

    def on_notice(diag: psycopg.errors.Diagnostic) -> None:
        message = diag.message_primary or ""
        if diag.severity_nonlocalized == "WARNING" or "skipping" in message:
            warnings.append(message)

    conn.add_notice_handler(on_notice)
    try:
        conn.execute(query, params)
    finally:
        conn.remove_notice_handler(on_notice)
    denied = [w for w in warnings if _PERMISSION_SKIP.match(w)]
    if denied:
        raise SkippedByServer(f"the server skipped it: {denied[0]}")
    if skip_locked and any("skipping" in w and "lock" in w for w in warnings):
        raise SkippedForLock(warnings[0])


def ms(delta: timedelta) -> str:
    """A duration as a lock_timeout / statement_timeout setting."""
    return f"{max(1, round(delta.total_seconds() * 1000))}ms"


def _who(r: dict[str, Any]) -> str:
    """`pid 123 (ShareLock, idle in transaction since 12:00:01, open 41s: SELECT ...)`."""
    since = f" since {r['xact_start']:%H:%M:%S}" if r.get("xact_start") else ""
    age = f", open {human_seconds(r['age'])}" if r.get("age") is not None else ""
    query = f": {r['query']}" if r.get("query") else ""
    return f"pid {r['pid']} ({r['mode']}, {r['state'] or 'unknown state'}{since}{age}{query})"


def describe_blockers(session: Session, relation_oid: int | None, modes: Sequence[str]) -> str:
    """`blocked by pid 123 (ShareLock, idle in transaction since 12:00:01, ...)`: whoever
    holds a conflicting lock now, else the oldest open transaction (what CONCURRENTLY waits
    for)."""
    rows: list[dict[str, Any]] = []
    if relation_oid is not None:
        found = session.all("catalog/lock_holders", {"oid": relation_oid, "modes": list(modes)})
        rows = [r for r in found if r["granted"]]  # the holders, not the other waiters
    if not rows:
        # CONCURRENTLY builds also wait for older transactions to finish.
        rows = session.all("catalog/oldest_transaction")
    if not rows:
        return "no blocker visible any more"
    return "blocked by " + ", ".join(_who(r) for r in rows[:3])


def retry_on_lock(
    session: Session,
    fn: Callable[[], object],
    *,
    relation_oid: int | None,
    modes: Sequence[str] = CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
    retries: int | None = None,
    after_timeout: Callable[[], None] | None = None,
    waited: str | None = None,
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run fn (a statement or a short transaction); when lock_timeout expires or a
    SKIP_LOCKED statement skips, retry with doubling backoff, then give up naming the blocker.

    `after_timeout` runs after each failed try (e.g. to drop an invalid half-built index);
    `waited` says how long one try waited when that is not database.lock_timeout.
    """
    tries = 1 + (session.config.maintenance.lock_retries if retries is None else retries)
    for attempt in range(tries):
        try:
            fn()
            return
        except (psycopg.errors.LockNotAvailable, SkippedForLock) as exc:
            who = describe_blockers(session, relation_oid, modes)
            stuck = None
            if after_timeout is not None:
                try:
                    after_timeout()
                except RepairFailed as failed:
                    stuck = str(failed)
            if stuck is not None:
                # another try would trip over what is left ("already exists", a _ccnew1)
                limit = waited or (f"lock_timeout ({ms(session.config.database.lock_timeout)})")
                raise LockNotGranted(f"lock not granted within {limit}: {who}; {stuck}") from exc
            if attempt + 1 == tries:
                if isinstance(exc, SkippedForLock):
                    raise LockNotGranted(
                        f"lock not available (SKIP_LOCKED) after {tries} tries: {who}"
                    ) from exc
                limit = waited or (f"lock_timeout ({ms(session.config.database.lock_timeout)})")
                times = "" if tries == 1 else f" after {tries} tries"
                raise LockNotGranted(f"lock not granted within {limit}{times}: {who}") from exc
            sleep(backoff * (2**attempt))


class RepairFailed(Exception):
    """What a failed try left could not be removed: retrying would trip over it."""


@contextmanager
def timeouts(
    session: Session, lock: timedelta | None, statement: timedelta | None = None
) -> Iterator[None]:
    """Run the block with another lock_timeout (and statement_timeout), the configured ones
    restored after it however it ends (a failed restore does not hide the block's error)."""
    db = session.config.database
    changes = [
        (name, new, old)
        for name, new, old in (
            ("catalog/set_lock_timeout", lock, db.lock_timeout),
            ("catalog/set_statement_timeout", statement, db.statement_timeout),
        )
        if new is not None
    ]
    for name, new, _old in changes:
        session.run(name, {"timeout": ms(new)})

    def restore() -> None:
        for name, _new, old in changes:
            session.run(name, {"timeout": ms(old) if old else "0"})

    try:
        yield
    except BaseException:
        with suppress(psycopg.Error):
            restore()
        raise
    restore()


def max_wait_text(session: Session) -> str:
    """`indexes.max_wait (10m)`: the limit of a CONCURRENTLY statement's waits."""
    return f"indexes.max_wait ({format_duration(session.config.indexes.max_wait)})"


@contextmanager
def announce_waits(
    session: Session, what: str, note: Callable[[str], None] | None, interval: float = 0.5
) -> Iterator[None]:
    """While the block runs, poll (on a second connection) whether session's backend waits
    for a lock, and say once per blocker whom it waits for: pid, its transaction's age and
    state, its query's first line. Nothing without `note` (cron stays quiet)."""
    if note is None:
        yield
        return
    pid = session.pid
    query = session.statement("catalog/blocked_by")
    limit = max_wait_text(session)
    seen: set[int] = set()

    def tick(cur: psycopg.Cursor[dict[str, Any]]) -> None:
        for r in cur.execute(query, {"pid": pid}).fetchall():
            if r["pid"] not in seen:
                seen.add(r["pid"])
                note(
                    f"epstats: {what} is waiting for {_who(r)} to end its "
                    f"transaction; it waits up to {limit}"
                )

    with polling(session, "epstats-waits", interval, tick):
        yield
