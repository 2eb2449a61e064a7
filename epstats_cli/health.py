"""Read-only health facts: `status` now; the checks and their thresholds build on these."""

from __future__ import annotations

from typing import Any

from epstats_cli import queries
from epstats_cli.db import Session


def _one(session: Session, query: str, **params: Any) -> dict[str, Any] | None:
    cur = session.conn.cursor()
    cur.execute(queries.get(query, session.server.version_num), params)
    row = cur.fetchone()
    if row is None:
        return None
    assert cur.description is not None
    return {d.name: v for d, v in zip(cur.description, row, strict=True)}


def server_facts(session: Session) -> dict[str, Any]:
    """Version, database size, recovery state, connection and freeze limits."""
    facts = _one(session, "catalog/server")
    assert facts is not None
    return facts


def table_facts(session: Session) -> dict[str, Any] | None:
    """The source table's sizes, estimated rows and vacuum/analyze activity; None if missing."""
    table = session.config.source.table
    return _one(session, "catalog/table_stats", schema=table.schema, name=table.name)


def status(session: Session) -> dict[str, Any]:
    """Everything `epstats status` shows, as plain data."""
    table = session.config.source.table
    return {
        "server": server_facts(session),
        "table": {"name": str(table), "present": False}
        if (facts := table_facts(session)) is None
        else {"name": str(table), "present": True, **facts},
    }
