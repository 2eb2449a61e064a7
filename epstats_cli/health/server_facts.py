"""The facts of the checks check_postgres and PgHero users expect: what holds back xmin, how
many connections are in use, replication lag, the sequences feeding the source table and its
newest row. Read-only, each one statement from sql/health/ (beside facts.py, which reads the
table's own upkeep, to keep each module short)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from psycopg import sql

from epstats_cli import catalog, source
from epstats_cli.db import Session
from epstats_cli.schema import source_identifiers

HolderKind = Literal[
    "transaction",
    "idle in transaction",
    "failed transaction",  # idle in transaction (aborted): waits for a ROLLBACK
    "prepared transaction",
    "replication slot",  # inactive
    "active replication slot",  # its xmin is its standby's oldest snapshot
]


@dataclass(frozen=True)
class Holder:
    """Something that holds back xmin: a session's open transaction, a prepared transaction,
    or a replication slot with an xmin; or a session idle in a failed transaction."""

    kind: HolderKind
    pid: int | None
    user: str | None
    application: str | None
    name: str | None  # a prepared transaction's gid, a slot's name
    # None: a slot inactive since a time the server does not record, or an active slot
    age_seconds: float | None
    xid_age: int | None = None  # transactions since its xmin


@dataclass(frozen=True)
class TransactionFacts:
    holders: tuple[Holder, ...]
    hidden: int = 0  # sessions of other roles in this database this role cannot see
    freeze_max_age: int = 200_000_000  # autovacuum_freeze_max_age
    role: str = "epstats"  # this role, quoted as SQL needs it


@dataclass(frozen=True)
class ConnectionFacts:
    used: int  # client connections to the whole server
    max_connections: int
    reserved: int  # superuser_reserved_connections (+ reserved_connections from 16 on)


@dataclass(frozen=True)
class StandbyLag:
    """One standby streaming from this primary."""

    name: str  # application_name, else its address
    state: str | None  # None: this role may not see the details
    lag_seconds: float | None  # replay_lag; None: caught up (or hidden)
    behind_bytes: int | None
    # what tells apart standbys of the same name (None: not known, or hidden)
    pid: int | None = None
    address: str | None = None
    port: int | None = None
    slot: str | None = None


@dataclass(frozen=True)
class ReplicationFacts:
    """A primary's standbys, or a standby's own replay."""

    in_recovery: bool
    standbys: tuple[StandbyLag, ...] = ()  # on a primary
    receiving: bool = False  # on a standby: a WAL receiver runs
    receiver_hidden: bool = False  # on a standby: this role may not see whether it streams
    role: str = "epstats"  # this role, quoted as SQL needs it
    behind: bool = False  # on a standby: received WAL waits to be replayed
    lag_seconds: float | None = None  # on a standby: now() - the last replayed commit
    behind_bytes: int | None = None


@dataclass(frozen=True)
class SequenceFacts:
    """A sequence feeding a column of the source table, and the limits that apply."""

    sequence: str
    column: str
    column_type: str
    type_min: int | None  # None: a column type without a limit epstats knows (numeric)
    type_max: int | None
    min_value: int
    max_value: int
    increment: int
    cycles: bool
    readable: bool
    last_value: int | None  # None: never used yet, or not readable


@dataclass(frozen=True)
class TableSequences:
    table: str
    sequences: tuple[SequenceFacts, ...]


@dataclass(frozen=True)
class IngestFacts:
    """The newest raw row dated up to now(), looked for within `window` before now()."""

    window: dt.timedelta
    newest: dt.datetime | None  # None: no row in the window (or the check is off)
    age_seconds: float | None


def _int(value: object) -> int | None:
    return None if value is None else int(value)  # type: ignore[call-overload]


def transactions(session: Session) -> TransactionFacts:
    """What holds back xmin in this database, oldest first."""
    rows = session.all("health/transactions")
    holders = tuple(
        Holder(
            r["kind"],
            r["pid"],
            r["usename"],
            r["application_name"],
            r["name"],
            r["age_seconds"],
            r["xid_age"],
        )
        for r in rows
        if r["kind"] is not None
    )
    first = rows[0]  # one row at least (the holders are LEFT JOINed)
    return TransactionFacts(holders, int(first["hidden"]), first["freeze_max_age"], first["role"])


def connections(session: Session) -> ConnectionFacts:
    row = session.one("health/connections")
    assert row is not None
    return ConnectionFacts(int(row["used"]), int(row["max_connections"]), int(row["reserved"]))


def replication(session: Session) -> ReplicationFacts:
    """A primary's standbys (pg_stat_replication) or a standby's own replay."""
    if session.server.in_recovery:
        row = session.one("health/replication_replay")
        assert row is not None
        return ReplicationFacts(
            True,
            receiving=bool(row["receiving"]),
            receiver_hidden=bool(row["receiver_hidden"]),
            role=row["role"],
            behind=bool(row["behind"]),
            lag_seconds=row["lag_seconds"],
            behind_bytes=_int(row["behind_bytes"]),
        )
    standbys = tuple(
        StandbyLag(
            r["name"],
            r["state"],
            r["lag_seconds"],
            _int(r["behind_bytes"]),
            r["pid"],
            r["client_addr"],
            r["client_port"],
            r["slot"],
        )
        for r in session.all("health/replication_standbys")
    )
    return ReplicationFacts(False, standbys)


def sequences(session: Session) -> TableSequences:
    """The sequences feeding the source table's columns."""
    rows = session.all("health/sequences", {"oid": catalog.source_oid(session)})
    return TableSequences(
        str(session.config.source.table),
        tuple(
            SequenceFacts(
                r["sequence"],
                r["column_name"],
                r["column_type"],
                _int(r["type_min"]),
                _int(r["type_max"]),
                int(r["min_value"]),
                int(r["max_value"]),
                int(r["increment"]),
                bool(r["cycles"]),
                bool(r["readable"]),
                _int(r["last_value"]),
            )
            for r in rows
        ),
    )


def ingest_window(levels: tuple[dt.timedelta, dt.timedelta]) -> dt.timedelta:
    """How far back `ingest_stalled` looks: its largest level that is on (0: the check is off)."""
    return max(levels)


def newest_row(session: Session) -> IngestFacts:
    """The newest raw row dated up to now(), within check.ingest_stalled's largest level."""
    levels = session.config.check.ingest_stalled
    window = ingest_window((levels.warning, levels.critical))
    if not window:
        return IngestFacts(window, None, None)
    basis = source.Basis.of(session.config, source.check_columns(session))
    since = sql.SQL("(now() - ") + sql.Placeholder("window") + sql.SQL("::interval)")
    row = session.one(
        "health/newest_row",
        {"window": window},
        **source_identifiers(session),
        instant=source.instant(session, basis),
        now=source.bound(session, basis, source.NOW),
        from_ts=source.bound(session, basis, since),
    )
    if row is None or row["newest"] is None:
        return IngestFacts(window, None, None)
    return IngestFacts(window, source.local(session, row["newest"]), row["age_seconds"])
