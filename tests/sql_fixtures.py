"""Run every SQL file through a real server's parser and planner.

SELECT and DML are EXPLAINed; DDL runs inside a rolled-back transaction. Errors that only say
an object exists already, is missing, or cannot be changed inside a transaction block mean
the statement parsed and was analysed: those pass. Syntax, type and column errors fail.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import queries
from epstats_cli.db import Session
from epstats_cli.schema import source_identifiers

ACCEPTABLE = (
    psycopg.errors.DuplicateTable,
    psycopg.errors.DuplicateObject,
    psycopg.errors.UndefinedTable,
    psycopg.errors.UndefinedObject,
    psycopg.errors.WrongObjectType,
    psycopg.errors.ActiveSqlTransaction,
    psycopg.errors.ObjectNotInPrerequisiteState,
    psycopg.errors.FeatureNotSupported,
)


def identifiers(session: Session) -> dict[str, Any]:
    """A value for every placeholder any statement uses."""
    ids: dict[str, Any] = dict(source_identifiers(session))
    ids.update(
        view=("public", "endpoint_daily_stats"),
        index="sqltest_index",
        new_name="sqltest_new",
        database="sqltest_db",
        column="sqltest_column",
        type=sql.SQL("integer"),
        kind=sql.SQL("MATERIALIZED VIEW"),
        comment=sql.Literal("sqltest"),
        method=sql.SQL("btree"),
        columns=sql.SQL("{}").format(sql.Identifier("endpoint")),
        tz=sql.Literal("UTC"),
        options=sql.SQL("SKIP_LOCKED, ANALYZE"),
        order=sql.SQL("requests DESC, endpoint"),
        error_min=sql.Literal(500),
        day=sql.SQL("current_date"),
        where=sql.SQL(""),
        since=sql.SQL("true"),
        from_day=sql.Literal("2020-01-01"),
        definition=sql.SQL(
            "SELECT 'e'::text AS endpoint, current_date AS day, 1::bigint AS request_count, "
            "1.0::float8 AS avg_response_time, 1.0::float8 AS max_response_time, "
            "1.0::float8 AS min_response_time, 0::bigint AS error_count, "
            "1.0::float8 AS total_response_time, 1::bigint AS response_count, "
            "now() AS max_timestamp"
        ),
    )
    return ids


def check_statement(session: Session, name: str, version: int) -> None:
    """Parse and analyse one statement on this server."""
    text = queries.path_for(name, version).read_text()
    needed = set(re.findall(r"(?<!\{)\{(\w+)\}", text))
    all_ids = identifiers(session)
    missing = needed - set(all_ids)
    assert not missing, f"{name}: no test value for placeholders {missing}"
    query = queries.get(name, version, **{k: all_ids[k] for k in needed})
    params = {p: None for p in re.findall(r"%\((\w+)\)s", text)}
    conn = session.conn
    body = re.sub(r"--[^\n]*\n", "", text).lstrip()
    try:
        with conn.transaction(force_rollback=True):
            if re.match(r"(SELECT|WITH|INSERT|UPDATE|DELETE)\b", body, re.I):
                conn.execute(sql.SQL("EXPLAIN ") + query, params)
            else:
                conn.execute(query, params)
    except ACCEPTABLE:
        pass
    except psycopg.Error as exc:
        raise AssertionError(f"{name} failed on {version}: {exc}") from exc
