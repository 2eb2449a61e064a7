"""What a DSN and libpq's connection errors may show: `user@host:port/dbname` and a reason a
person can act on, never a password or a DSN fragment that could hold one."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from datetime import timedelta

import psycopg
from psycopg import conninfo

from epstats_cli.errors import first_line


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


def connect_reason(exc: BaseException, timeout: timedelta) -> str:
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


def safe_parse_error(exc: BaseException) -> str:
    """libpq's parse error without the DSN fragments it quotes (one could be a password),
    except option names, which are keys."""
    line = first_line(exc)
    keep = re.match(r'(invalid connection option|invalid URI query parameter:) "[A-Za-z_]+"', line)
    if keep:
        return keep.group(0)
    return re.sub(r'"[^"]*"', '"…"', line)
