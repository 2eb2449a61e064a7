"""The rollup's definition: the aggregate over the raw rows, composed for this source table.

Shared by build, refresh and verify (and the reports that group raw rows by day): the day of
a row in source.timezone, the "from this day on" filter, and the aggregate SELECT.
"""

from __future__ import annotations

from psycopg import sql

from epstats_cli.catalog import source_oid
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed
from epstats_cli.schema import source_identifiers

TIMESTAMPTZ = "timestamp with time zone"
TIMESTAMP = "timestamp without time zone"


def timestamp_type(session: Session, oid: int | None = None) -> str:
    """The type of the source's timestamp column; OperationFailed naming any missing column."""
    oid = source_oid(session) if oid is None else oid
    cols = {r["attname"]: r["type"] for r in session.all("catalog/column_type", {"oid": oid})}
    src = session.config.source
    missing = [
        f"{logical} -> {src.columns.physical(logical)}"
        for logical in ("endpoint", "timestamp", "response_time", "status")
        if src.columns.physical(logical) not in cols
    ]
    if missing:
        raise OperationFailed(
            f"source table {src.table} has no column for "
            + ", ".join(missing)
            + " (check source.columns)"
        )
    return str(cols[src.columns.timestamp])


def day_expression(session: Session, ts_type: str) -> sql.Composable:
    """The calendar day of a row in source.timezone, whatever the session's TimeZone."""
    ts = session.config.source.columns.timestamp
    if ts_type == TIMESTAMPTZ:
        tz = sql.Literal(session.config.source.timezone)
        return session.statement("fragments/day_timestamptz", timestamp=ts, tz=tz)
    if ts_type == TIMESTAMP:  # already wall-clock time
        return session.statement("fragments/day_timestamp", timestamp=ts)
    raise OperationFailed(
        f"column {session.config.source.columns.timestamp} is {ts_type}; "
        "expected timestamp with time zone"
    )


def since_filter(session: Session, ts_type: str, param: str = "from_day") -> sql.Composable:
    """WHERE timestamp >= local midnight of %(param)s: an index range scan on the timestamp."""
    ts = session.config.source.columns.timestamp
    placeholder = sql.Placeholder(param)
    if ts_type == TIMESTAMPTZ:
        tz = sql.Literal(session.config.source.timezone)
        return session.statement(
            "fragments/since_timestamptz", timestamp=ts, from_day=placeholder, tz=tz
        )
    return session.statement("fragments/since_timestamp", timestamp=ts, from_day=placeholder)


def definition(session: Session, ts_type: str, where: sql.Composable | None = None) -> sql.Composed:
    """The aggregate SELECT over the raw rows (optionally filtered)."""
    return session.statement(
        "view/aggregate",
        **source_identifiers(session),
        day=day_expression(session, ts_type),
        error_min=sql.Literal(session.config.source.error_status_min),
        where=sql.SQL("WHERE ") + where if where is not None else sql.SQL(""),
    )
