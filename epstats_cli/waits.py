"""Lock waits of the steps epstats runs: retries with backoff, who blocks us, and (for a person
watching) whom a long CONCURRENTLY statement is waiting for while it waits; and the work the
server skips with a WARNING instead of waiting or failing (SKIP_LOCKED, missing rights).

A lock wait ends at lock_timeout: `database.lock_timeout` for every statement, except the
CONCURRENTLY ones, whose waits (for older transactions) never block INSERTs and may last
`indexes.max_wait`. The executor (execute.py) decides which; this module only waits and names.
epstats's own CONCURRENTLY work on a table runs one process at a time (`one_at_a_time`).
"""

from __future__ import annotations

import datetime as dt
import re
import time
import zoneinfo
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


def _clock(session: Session, instant: dt.datetime) -> str:
    """A time of day in source.timezone, with the zone's abbreviation: `08:01:52 EST`."""
    with suppress(zoneinfo.ZoneInfoNotFoundError, ValueError):
        instant = instant.astimezone(zoneinfo.ZoneInfo(session.config.source.timezone))
    return f"{instant:%H:%M:%S %Z}".strip()


def _about(session: Session, r: Mapping[str, Any]) -> str:
    """`holds ShareLock on requests, idle in transaction since 08:01:52 EST, open 41s,
    user bob, application psql: SELECT ...`; for another role's session that this role may
    not see (no pg_read_all_stats): `user bob, application psql: <insufficient privilege>`."""
    parts = []
    if not r.get("hidden"):
        since = f" since {_clock(session, r['xact_start'])}" if r.get("xact_start") else ""
        parts.append(f"{r.get('state') or 'unknown state'}{since}")
        if r.get("age") is not None:
            parts.append(f"open {human_seconds(r['age'])}")
    if r.get("usename"):
        parts.append(f"user {r['usename']}")
    if r.get("application_name"):
        parts.append(f"application {r['application_name']}")
    query = "<insufficient privilege>" if r.get("hidden") else r.get("query")
    text = ", ".join(parts) + (f": {query}" if query else "")
    # (no "; " in it: a task's errors are joined with "; ", and `check` reads each part)
    return f"holds {r['holds']}, {text}" if r.get("holds") else text


def _who(session: Session, r: Mapping[str, Any]) -> str:
    """`pid 123 (idle in transaction since 08:01:52 EST, open 41s, ...)`."""
    return f"pid {r['pid']} ({_about(session, r)})"


def _awaited(session: Session, r: Mapping[str, Any]) -> str:
    """What epstats waits for: `pid 123 to finish its transaction (holds AccessShareLock on
    requests, idle in transaction since 08:01:52 EST, ...)` (a lock it holds is
    released, and an older transaction a CONCURRENTLY statement waits out ends, with it)."""
    return f"pid {r['pid']} to finish its transaction ({_about(session, r)})"


def describe_blockers(
    session: Session,
    relation_oid: int | None,
    modes: Sequence[str],
    seen: Sequence[Mapping[str, Any]] = (),
) -> str:
    """`it waited for pid 123 to finish its transaction (holds ShareLock on requests, idle in
    transaction since 12:00:01 UTC, ...)`: whom the statement was seen waiting for
    (`seen`: pg_blocking_pids() while it waited, see WaitWatch), else whoever holds a
    conflicting lock now, else the open transactions with the oldest snapshots (what
    CONCURRENTLY waits out)."""
    rows: Sequence[Mapping[str, Any]] = seen
    if not rows and relation_oid is not None:
        found = session.all("catalog/lock_holders", {"oid": relation_oid, "modes": list(modes)})
        rows = [r for r in found if r["granted"]]  # the holders, not the other waiters
    if not rows:
        # CONCURRENTLY statements also wait for older transactions to finish.
        rows = session.all("catalog/old_transactions")
    if not rows:
        return "no blocker visible any more"
    return "it waited for " + ", ".join(_awaited(session, r) for r in rows[:3])


def retry_on_lock(
    session: Session,
    fn: Callable[[], object],
    *,
    relation_oid: int | None,
    modes: Sequence[str] = CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
    retries: int | None = None,
    between_tries: Callable[[], None] | None = None,
    waited: str | None = None,
    seen: Callable[[], Sequence[Mapping[str, Any]]] = lambda: (),
    backoff: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run fn (a statement or a short transaction); when lock_timeout expires or a
    SKIP_LOCKED statement skips, retry with doubling backoff, then give up naming the blocker
    (`seen()`: whom it was seen waiting for, if anyone; see describe_blockers).

    `between_tries` runs after a failed try that another try follows (e.g. to drop an invalid
    half-built index; RepairFailed from it ends the tries); `waited` says how long one try
    waited when that is not database.lock_timeout.
    """
    tries = 1 + (session.config.maintenance.lock_retries if retries is None else retries)
    limit = waited or f"lock_timeout ({ms(session.config.database.lock_timeout)})"
    for attempt in range(tries):
        try:
            fn()
            return
        except (psycopg.errors.LockNotAvailable, SkippedForLock) as exc:
            who = describe_blockers(session, relation_oid, modes, seen())
            last = attempt + 1 == tries
            if not last and between_tries is not None:
                try:
                    between_tries()
                except RepairFailed:
                    # another try would trip over what is left ("already exists", a _ccnew1)
                    last = True
            if last:
                times = "" if attempt == 0 else f" after {attempt + 1} tries"
                if isinstance(exc, SkippedForLock):
                    raise LockNotGranted(f"lock not available (SKIP_LOCKED){times}: {who}") from exc
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


class WaitWatch:
    """Whom a statement was last seen waiting for (pg_blocking_pids() of its backend, polled
    from a second connection): named when it gives up, as the wait itself ends there."""

    def __init__(self) -> None:
        self.blockers: list[dict[str, Any]] = []

    def seen(self) -> list[dict[str, Any]]:
        return list(self.blockers)


@contextmanager
def watch_waits(
    session: Session, what: str, note: Callable[[str], None] | None, interval: float = 0.25
) -> Iterator[WaitWatch]:
    """While the block runs, poll (on a second connection) whom session's backend waits for,
    keeping the last blockers seen, and (with `note`: a person watching, or -v) say once per
    blocker whom it waits for: pid, role, application, its transaction's age and state, its
    query's first line. Cron (no `note`) hears nothing."""
    watch = WaitWatch()
    pid = session.pid
    query = session.statement("catalog/blocked_by")
    limit = max_wait_text(session)
    told: set[int] = set()

    def tick(cur: psycopg.Cursor[dict[str, Any]]) -> None:
        rows = cur.execute(query, {"pid": pid}).fetchall()
        if rows:
            watch.blockers = rows
        for r in rows:
            if note is not None and r["pid"] not in told:
                told.add(r["pid"])
                note(
                    f"epstats: {what} is waiting for {_awaited(session, r)}; it waits up to {limit}"
                )

    with polling(session, "epstats-waits", interval, tick):
        yield watch


# The advisory-lock namespace of epstats ("epst", as maintain's lock).
LOCK_CLASS = 0x65707374


@contextmanager
def one_at_a_time(
    session: Session,
    relation_oid: int,
    what: str,
    note: Callable[[str], None] | None,
    interval: float = 0.2,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[timedelta]:
    """epstats's CONCURRENTLY work on one table, one process at a time: two at once deadlock
    (each waits out the other's transaction). Wait for the turn under indexes.max_wait, saying
    (with `note`) which epstats process has it; yield what is left of indexes.max_wait, and
    give the turn back however the block ends. LockNotGranted, naming that process, when the
    turn does not come within indexes.max_wait.

    The turn is tried, not waited for in a statement: a session waiting for a lock is in a
    transaction whose snapshot the holder's CONCURRENTLY statement would wait out."""
    key = {"k1": LOCK_CLASS, "oid": relation_oid}
    max_wait = session.config.indexes.max_wait
    start = time.monotonic()
    told: set[int] = set()
    while not session.value("indexes/turn_try", key):
        holder = session.one("indexes/turn_holder", key)
        if holder is not None and note is not None and holder["pid"] not in told:
            told.add(holder["pid"])
            other = _who(session, holder)
            note(
                f"epstats: {what} is waiting for its turn: another epstats ({other}) is "
                f"working on the indices of {holder['relation']}; it waits up to "
                f"{max_wait_text(session)}"
            )
        waited = time.monotonic() - start
        if waited >= max_wait.total_seconds():
            table = "this table" if holder is None else holder["relation"]
            who = "it finished just now" if holder is None else _who(session, holder)
            raise LockNotGranted(
                f"lock not granted within {max_wait_text(session)}: another epstats is working "
                f"on the indices of {table} ({who}); a later run tries again"
            )
        sleep(min(interval, max_wait.total_seconds() - waited))
    try:
        left = max_wait - timedelta(seconds=time.monotonic() - start)
        yield max(left, min(max_wait, timedelta(seconds=1)))
    finally:
        with suppress(psycopg.Error):
            session.run("indexes/turn_unlock", key)
