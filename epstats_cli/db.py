"""Connections: autocommit, application_name, keepalives, timeouts from config, server facts."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import psycopg
from psycopg import conninfo, sql
from psycopg.rows import dict_row

from epstats_cli import permissions, queries
from epstats_cli.config import Config
from epstats_cli.errors import ConfigError, ConnectError, first_line

APPLICATION_NAME = "epstats"


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

    def another(self, application_name: str = APPLICATION_NAME) -> psycopg.Connection[Any]:
        """A second autocommit connection with the same target and credentials."""
        kwargs = {**self.connect_kwargs, "application_name": application_name}
        return psycopg.connect(self.dsn, **kwargs)

    @property
    def pid(self) -> int:
        return int(self.conn.info.backend_pid)

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


def target(dsn: str, env: Mapping[str, str] | None = None) -> str:
    """`user@host:port/dbname` for messages: never the password."""
    env = os.environ if env is None else env
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "(unparseable DSN)"
    host = str(params.get("host") or params.get("hostaddr") or env.get("PGHOST") or "localhost")
    port = str(params.get("port") or env.get("PGPORT") or "5432")
    user = str(params.get("user") or env.get("PGUSER") or _login())
    dbname = str(params.get("dbname") or env.get("PGDATABASE") or user)
    return f"{user}@{host}:{port}/{dbname}"


def _login() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "?"


def _reason(exc: BaseException, timeout: timedelta) -> str:
    text = str(exc)
    if "password authentication failed" in text:
        return "password authentication failed (check .pgpass, PGPASSWORD or database.password_env)"
    if "no password supplied" in text:
        return (
            "the server wants a password and none was given (.pgpass, PGPASSWORD or password_env)"
        )
    if "Connection refused" in text:
        return "connection refused (is the server running and listening on that host and port?)"
    if "timeout expired" in text:
        return f"no answer within connect_timeout ({_ms(timeout)}): check host, port and firewall"
    if "could not translate host name" in text or "Name or service not known" in text:
        return "unknown host name"
    if re.search(r'database ".*" does not exist', text):
        return "the database does not exist"
    if re.search(r'role ".*" does not exist', text):
        return "the role does not exist"
    if "No such file or directory" in text:
        return "no server socket there (is the server running? set host/port in the DSN)"
    line = first_line(exc)
    line = re.sub(r"^connection failed: ", "", line)
    line = re.sub(r"^connection to server (at|on) .*? failed: ", "", line)
    return re.sub(r"password=\S+", "password=***", line)


def _safe_parse_error(exc: BaseException) -> str:
    """libpq's parse error without the DSN fragments it quotes (one could be a password),
    except option names, which are keys."""
    line = first_line(exc)
    keep = re.match(r'(invalid connection option|invalid URI query parameter:) "[A-Za-z_]+"', line)
    if keep:
        return keep.group(0)
    return re.sub(r'"[^"]*"', '"…"', line)


def connect(config: Config, dsn: str) -> Session:
    """Open an autocommit session with our timeouts; ConnectError (exit 4) when that fails."""
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
        raise ConfigError(
            [f"invalid DSN: {_safe_parse_error(exc)} (see --dsn, $EPSTATS_DSN, database.dsn)"]
        ) from None
    except psycopg.OperationalError as exc:
        raise ConnectError(
            f"cannot connect to {where}: {_reason(exc, db.connect_timeout)}"
        ) from None
    try:
        row = conn.execute(
            queries.get("catalog/session_setup"),
            {"lock_timeout": _ms(db.lock_timeout), "statement_timeout": _ms(db.statement_timeout)},
        ).fetchone()
    except psycopg.Error as exc:
        conn.close()
        raise ConnectError(f"cannot set up the session on {where}: {first_line(exc)}") from None
    assert row is not None
    server = Server(
        version_num=row[2], version=row[3], in_recovery=row[4], database=row[5], user=row[6]
    )
    return Session(conn=conn, server=server, config=config, dsn=dsn, connect_kwargs=kwargs)


@contextmanager
def session(config: Config, dsn: str) -> Iterator[Session]:
    """A Session that is closed however the block ends."""
    s = connect(config, dsn)
    try:
        yield s
    finally:
        s.conn.close()


def now(session: Session) -> tuple[dt.datetime, dt.datetime]:
    """The server's clock: (now, the start of the current hour)."""
    row = session.conn.execute(session.statement("catalog/now")).fetchone()
    assert row is not None
    return row[0], row[1]
