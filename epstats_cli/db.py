"""Connections: autocommit, application_name, keepalives, timeouts from config, server facts."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, ClassVar, TypeVar

import psycopg
from psycopg import sql
from psycopg.abc import Query
from psycopg.rows import dict_row

from epstats_cli import permissions, queries
from epstats_cli.config import Config
from epstats_cli.dsn import connect_reason, safe_parse_error, target
from epstats_cli.errors import ConfigError, ConnectError, OperationFailed, first_line
from epstats_cli.pooler import PoolerInfo, session_guarantee

T = TypeVar("T")

APPLICATION_NAME = "epstats"
# epstats never waits in an open transaction; a client stuck there (stopped, hung) must not
# hold its locks for long, whatever the role's own setting says.
IDLE_IN_TRANSACTION_TIMEOUT = timedelta(minutes=1)
SESSION_FIX = "connect to the server itself or to a session-mode pool"
# What a read-only session (report, check, status, ...) sets jit to. Their queries run in
# milliseconds once planned, yet a plan past jit_above_cost (a raw scan the planner thinks
# large) makes the server compile it first: on PostgreSQL 15, `report top --source auto` spent
# 43 of its 45 ms compiling (benchmarks/jit.py). None: the server's (or role's) own setting.
# Changing sessions keep the server's: a refresh or a build aggregates for minutes.
READ_ONLY_JIT: str | None = "off"


@dataclass(frozen=True)
class Server:
    """Facts about the connected server that queries and commands depend on."""

    version_num: int
    version: str
    in_recovery: bool
    database: str
    user: str


@dataclass
class Session:
    """An open connection plus what we learned about the server on connecting."""

    conn: psycopg.Connection[Any]
    server: Server
    config: Config
    dsn: str = ""
    connect_kwargs: dict[str, Any] = field(default_factory=dict, repr=False)
    # Where changing commands connect, when not `dsn` (database.maintenance_dsn).
    maintenance_dsn: str | None = None
    # The server process that ran our first statement (through a pooler: not the cancel key's).
    backend_pid: int = 0
    # True when statements may run on different server connections: settings travel with each.
    per_statement: bool = False
    # What the probe found, for changing sessions (read-only ones do not probe).
    pooler: PoolerInfo | None = None
    # Why a command that reads database.replica_dsn reads this (the primary) instead.
    replica_fallback: str | None = None

    def another(self, application_name: str = APPLICATION_NAME) -> psycopg.Connection[Any]:
        """A second autocommit connection with the same target and credentials."""
        kwargs = {**self.connect_kwargs, "application_name": application_name}
        return psycopg.connect(self.dsn, **kwargs)

    @property
    def pid(self) -> int:
        """The server process running our statements (behind a session pool too)."""
        return self.backend_pid or int(self.conn.info.backend_pid)

    def statement(self, name: str, **identifiers: Any) -> sql.Composed:
        """The statement `name` in the variant for this server, with identifiers filled."""
        return queries.get(name, self.server.version_num, **identifiers)

    @contextmanager
    def noting(self, query: sql.Composed) -> Iterator[sql.Composed]:
        """An error raised in the block carries `query`, the role and the server version
        (errors.RULES names the grant that is missing from them)."""
        try:
            yield query
        except psycopg.Error as exc:
            try:
                text: str | None = query.as_string(self.conn)
            except Exception:  # a broken connection cannot quote: the hint does without
                text = None
            permissions.note(exc, text, self.server.user, self.server.version_num)
            raise

    def all(
        self, name: str, params: Mapping[str, Any] | None = None, **identifiers: Any
    ) -> list[dict[str, Any]]:
        """Every row of statement `name`, as dicts."""
        cur = self.conn.cursor(row_factory=dict_row)
        try:
            with self.noting(self.statement(name, **identifiers)) as query:
                return cur.execute(query, params).fetchall()
        finally:
            cur.close()

    def one(
        self, name: str, params: Mapping[str, Any] | None = None, **identifiers: Any
    ) -> dict[str, Any] | None:
        """The first row of statement `name` as a dict, or None."""
        cur = self.conn.cursor(row_factory=dict_row)
        try:
            with self.noting(self.statement(name, **identifiers)) as query:
                return cur.execute(query, params).fetchone()
        finally:
            cur.close()

    def value(self, name: str, params: Mapping[str, Any] | None = None, **identifiers: Any) -> Any:
        """The first column of the first row of statement `name`, or None."""
        with self.noting(self.statement(name, **identifiers)) as query:
            row = self.conn.execute(query, params).fetchone()
        return None if row is None else row[0]

    def run(self, name: str, params: Mapping[str, Any] | None = None, **identifiers: Any) -> None:
        """Execute statement `name`, discarding any rows."""
        with self.noting(self.statement(name, **identifiers)) as query:
            self.conn.execute(query, params)


def _ms(delta: timedelta) -> str:
    return f"{round(delta.total_seconds() * 1000)}ms"


def own_settings(config: Config, changing: bool = False) -> dict[str, str | None]:
    """The values epstats sets for itself, whatever the role or database would impose (None:
    left as it is)."""
    db = config.database
    return {
        "statement_timeout": _ms(db.statement_timeout),  # 0: none
        "lock_timeout": _ms(db.lock_timeout),
        "idle_in_transaction_session_timeout": _ms(IDLE_IN_TRANSACTION_TIMEOUT),
        "transaction_timeout": "0",  # PostgreSQL 17+
        # how values come back: another client of a pool (or the role) may have changed them
        "IntervalStyle": "postgres",
        "DateStyle": "ISO, MDY",
        "extra_float_digits": "1",
        "jit": None if changing else READ_ONLY_JIT,
    }


class _SettingsCursor(psycopg.ClientCursor[Any]):
    """Sends `settings` (a `SELECT set_config(..., true)`) in front of every statement, as one
    simple query: the server runs the two in one implicit transaction, so the settings hold for
    that statement and end with it, on whichever server connection a pooler picked; a pooler
    in statement mode lets it through (it refuses only an explicit BEGIN)."""

    settings: ClassVar[bytes] = b""

    def execute(
        self,
        query: Query,
        params: Any = None,
        *,
        prepare: bool | None = None,
        binary: bool | None = None,
    ) -> _SettingsCursor:
        if isinstance(query, sql.Composable):
            text = query.as_bytes(self)
        elif isinstance(query, str):
            text = query.encode(self.connection.info.encoding)
        elif isinstance(query, bytes):
            text = query
        else:
            raise TypeError(f"cannot send {type(query).__name__} with per-statement settings")
        super().execute(self.settings + b";\n" + text, params, prepare=False, binary=binary)
        self.nextset()  # past the settings' own row, to the statement's result
        return self


def _carry_settings(
    conn: psycopg.Connection[Any], settings: sql.Composed, values: Mapping[str, Any]
) -> None:
    """Make every cursor of `conn` send `settings` with each statement (see _SettingsCursor)."""
    bound = psycopg.ClientCursor(conn).mogrify(settings, {**values, "local": True})
    text = bound.encode(conn.info.encoding)
    conn.cursor_factory = type("SettingsCursor", (_SettingsCursor,), {"settings": text})


def _require_session(
    conn: psycopg.Connection[Any],
    dsn: str,
    kwargs: dict[str, Any],
    where: str,
    fix: str,
    note: Callable[[str], None] | None,
) -> PoolerInfo:
    """What answers `conn`; ConfigError (exit 3) unless all its statements share one session."""
    info = session_guarantee(dsn, conn, **kwargs)
    if note is not None:
        note(f"connection to {where}: {info.kind} ({info.evidence})")
    if info.keeps_session:
        return info
    what = (
        "a connection pooler whose pool mode could not be proven"
        if info.kind == "unknown-pooler"
        else f"a connection pooler in {info.kind} mode"
    )
    raise ConfigError(
        [
            f"{where} goes through {what}; commands that change the database need one server "
            f"session for all their statements (settings, locks): {fix}"
        ]
    )


def connect(
    config: Config,
    dsn: str,
    *,
    changing: bool = False,
    fix: str = SESSION_FIX,
    note: Callable[[str], None] | None = None,
    named_by: str = "--dsn, $EPSTATS_DSN, database.dsn",
) -> Session:
    """Open an autocommit session with our own settings; ConnectError (exit 4) when that fails.

    A `changing` session must keep one server session (a direct connection or a session
    pool; else ConfigError naming `fix`) and may write (default_transaction_read_only off,
    else OperationFailed). Any other session works through any pooler: where its statements
    may land on different server connections, our settings travel with each statement and
    nothing is prepared. `note` receives what the pooler probe found. `named_by`: where the
    DSN came from, for the error an unparseable one gets.
    """
    db = config.database
    kwargs: dict[str, Any] = {
        "autocommit": True,
        "application_name": APPLICATION_NAME,
        "connect_timeout": max(1, round(db.connect_timeout.total_seconds())),
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
    }
    if db.password_env:
        password = os.environ.get(db.password_env)
        if password is None:
            # Never echo the name: it may be the password itself, put there by mistake.
            raise ConnectError(
                "the environment variable that database.password_env names is not set "
                "(epstats config show shows its name)"
            )
        kwargs["password"] = password
    where = target(dsn)
    try:
        conn = psycopg.connect(dsn, **kwargs)
    except psycopg.ProgrammingError as exc:
        raise ConfigError([f"invalid DSN: {safe_parse_error(exc)} (see {named_by})"]) from None
    except psycopg.OperationalError as exc:
        raise ConnectError(
            f"cannot connect to {where}: {connect_reason(exc, db.connect_timeout)}"
        ) from None
    try:
        cur = conn.cursor(row_factory=dict_row)
        row = cur.execute(queries.get("catalog/session_setup"), prepare=False).fetchone()
        assert row is not None
        server = Server(
            row["version_num"], row["version"], row["in_recovery"], row["database"], row["user"]
        )
        pooled = int(row["backend_pid"]) != int(conn.info.backend_pid)
        if pooled:  # prepare nothing: even a session pool may not reset what we leave
            conn.prepare_threshold = None
        per_statement = pooled
        pooler = None
        if changing:
            pooler = _require_session(conn, dsn, kwargs, where, fix, note)
            if row["default_read_only"] and not server.in_recovery:
                raise OperationFailed(
                    f"role {server.user} is read-only by default in database {server.database} "
                    "(default_transaction_read_only = on, a safeguard epstats does not override): "
                    "run commands that change the database as a role that may write"
                )
            per_statement = False
        settings = queries.get("catalog/settings", server.version_num)
        values = own_settings(config, changing)
        if per_statement:
            _carry_settings(conn, settings, values)
        else:
            conn.execute(settings, {**values, "local": False}, prepare=False)
    except psycopg.Error as exc:
        conn.close()
        raise ConnectError(f"cannot set up the session on {where}: {first_line(exc)}") from None
    except BaseException:
        conn.close()
        raise
    return Session(
        conn=conn,
        server=server,
        config=config,
        dsn=dsn,
        connect_kwargs=kwargs,
        backend_pid=int(row["backend_pid"]),
        per_statement=per_statement,
        pooler=pooler,
    )


@contextmanager
def session(
    config: Config,
    dsn: str,
    *,
    changing: bool = False,
    fix: str = SESSION_FIX,
    note: Callable[[str], None] | None = None,
) -> Iterator[Session]:
    """A Session (see connect) that is closed however the block ends."""
    s = connect(config, dsn, changing=changing, fix=fix, note=note)
    with closing(s):
        yield s


@contextmanager
def closing(s: Session) -> Iterator[Session]:
    """`s`, closed however the block ends."""
    try:
        yield s
    finally:
        close(s)


def close(session: Session) -> None:
    """Close the connection; through a session pool, first leave nothing of ours on the server
    connection that the pool hands to its next client."""
    if session.pooler is not None and session.pooler.kind == "session" and not session.conn.closed:
        with suppress(psycopg.Error):
            session.conn.execute(queries.get("catalog/discard"), prepare=False)
    session.conn.close()


def now(session: Session) -> tuple[dt.datetime, dt.datetime]:
    """The server's clock: (now, the start of the current hour)."""
    row = session.conn.execute(session.statement("catalog/now")).fetchone()
    assert row is not None
    return row[0], row[1]


def consistent(session: Session, read: Callable[[], T], token: Callable[[], object]) -> T:
    """`read()` as if from one snapshot. Directly or through a session pool: one REPEATABLE
    READ transaction. Behind a transaction or statement pool (a statement pool refuses BEGIN)
    its statements run one by one, so it runs again while `token()` (e.g. the rollup's as-of)
    changed during it: a refresh committing between two statements is never half seen."""
    if not session.per_statement:
        with read_snapshot(session):
            return read()
    for _attempt in range(4):
        before = token()
        result = read()
        if token() == before:
            return result
    raise OperationFailed("the rollup kept changing while it was read (refreshes in a loop?)")


@contextmanager
def read_snapshot(session: Session) -> Iterator[None]:
    """One REPEATABLE READ, READ ONLY transaction: every statement in the block sees the same
    data and the same now() (a report's rollup, its as-of and the raw rows after it)."""
    conn = session.conn
    if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
        yield  # already inside a transaction: it decides
        return
    conn.isolation_level, conn.read_only = psycopg.IsolationLevel.REPEATABLE_READ, True
    try:
        with conn.transaction():
            yield
    finally:
        conn.isolation_level, conn.read_only = None, None
