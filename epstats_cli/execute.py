"""Running DDL and maintenance statements safely: lock_timeout, bounded retries, named blockers."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import queries
from epstats_cli.db import Session
from epstats_cli.errors import first_line

# Lock modes that conflict with SHARE UPDATE EXCLUSIVE (CREATE/DROP INDEX CONCURRENTLY,
# REINDEX CONCURRENTLY, VACUUM, ANALYZE, REFRESH MATERIALIZED VIEW CONCURRENTLY).
CONFLICTS_SHARE_UPDATE_EXCLUSIVE = (
    "ShareUpdateExclusiveLock",
    "ShareLock",
    "ShareRowExclusiveLock",
    "ExclusiveLock",
    "AccessExclusiveLock",
)
ALL_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    *CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
)


class LockNotGranted(Exception):
    """lock_timeout expired on every try; the message names who held the lock."""


def describe_blockers(session: Session, relation_oid: int | None, modes: Sequence[str]) -> str:
    """`pid 123 (ShareLock, idle in transaction since 12:00:01)` for whoever blocks us now."""
    conn = session.conn
    rows: list[tuple[Any, ...]] = []
    if relation_oid is not None:
        rows = conn.execute(
            queries.get("catalog/lock_holders", session.server.version_num),
            {"oid": relation_oid, "modes": list(modes)},
        ).fetchall()
        rows = [r for r in rows if r[2]]  # granted: the holders, not the other waiters
    if not rows:
        # CONCURRENTLY builds also wait for older transactions to finish.
        rows = conn.execute(
            queries.get("catalog/oldest_transaction", session.server.version_num)
        ).fetchall()
    if not rows:
        return "no blocker visible any more"
    parts = []
    for pid, mode, _granted, state, xact_start, _query in rows[:3]:
        since = f" since {xact_start:%H:%M:%S}" if xact_start else ""
        parts.append(f"pid {pid} ({mode}, {state or 'unknown state'}{since})")
    return "blocked by " + ", ".join(parts)


def run_with_retries(
    session: Session,
    query: sql.Composed | sql.SQL,
    params: Mapping[str, Any] | None = None,
    *,
    relation_oid: int | None,
    modes: Sequence[str] = CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
    retries: int | None = None,
    after_timeout: Callable[[], None] | None = None,
) -> None:
    """Run one statement under lock_timeout, retried with backoff (see retry_on_lock)."""

    def run() -> None:
        session.conn.execute(query, params)

    retry_on_lock(
        session,
        run,
        relation_oid=relation_oid,
        modes=modes,
        retries=retries,
        after_timeout=after_timeout,
    )


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
    """Run a unit of work (a statement or a short transaction); when lock_timeout expires,
    retry with doubling backoff, then give up naming the blocker.

    `after_timeout` runs after each failed try (e.g. to drop an invalid half-built index).
    """
    tries = 1 + (session.config.maintenance.lock_retries if retries is None else retries)
    for attempt in range(tries):
        try:
            fn()
            return
        except psycopg.errors.LockNotAvailable as exc:
            who = describe_blockers(session, relation_oid, modes)
            if after_timeout is not None:
                after_timeout()
            if attempt + 1 == tries:
                ms = round(session.config.database.lock_timeout.total_seconds() * 1000)
                raise LockNotGranted(
                    f"lock not granted within lock_timeout ({ms}ms) after {tries} tries: {who}"
                ) from exc
            sleep(backoff * (2**attempt))


def timed(fn: Callable[[], None]) -> tuple[float, BaseException | None]:
    """Run fn; return (seconds, the expected exception or None)."""
    start = time.monotonic()
    try:
        fn()
    except (LockNotGranted, psycopg.Error) as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def error_text(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, LockNotGranted) else first_line(exc)
