"""What the server's catalog says: server and table facts, relation lookups, column types.

Read-only and privilege-light (catalog and statistics views, never a count(*)), so `status`,
`check`, `advise` and `maintain`'s schedule can all ask it, on a hot standby too.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, NamedTuple

from epstats_cli.config import QualifiedName
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed

if TYPE_CHECKING:  # imported where used: a report reads the catalog, not the schedule
    from epstats_cli import schedule


@dataclass(frozen=True)
class ServerFacts:
    """Version, database size, recovery state, connection and freeze limits, the clock."""

    server_version: str
    database: str
    database_bytes: int
    in_recovery: bool
    started_at: dt.datetime
    max_connections: int
    autovacuum_freeze_max_age: int
    now: dt.datetime


@dataclass(frozen=True)
class TableFacts:
    """The source table's sizes, estimated rows and vacuum/analyze activity.

    The pg_stat_all_tables counters are None when the statistics collector has no row yet.
    """

    heap_bytes: int
    index_bytes: int
    toast_bytes: int
    total_bytes: int
    estimated_rows: int | None  # reltuples; None before the first VACUUM or ANALYZE
    live_tuples: int | None
    dead_tuples: int | None
    modified_since_analyze: int | None
    last_vacuum: dt.datetime | None
    last_autovacuum: dt.datetime | None
    last_analyze: dt.datetime | None
    last_autoanalyze: dt.datetime | None
    seq_scan: int | None
    idx_scan: int | None
    inserted: int | None
    updated_or_deleted: int | None
    xid_age: int | None  # age(relfrozenxid)

    @property
    def last_vacuumed(self) -> dt.datetime | None:
        """The latest VACUUM, manual or automatic."""
        from epstats_cli import schedule

        return schedule.latest(self.last_vacuum, self.last_autovacuum)

    @property
    def last_analyzed(self) -> dt.datetime | None:
        """The latest ANALYZE, manual or automatic."""
        from epstats_cli import schedule

        return schedule.latest(self.last_analyze, self.last_autoanalyze)


class Relation(NamedTuple):
    """A relation found by exact name (a tuple, so `found[0]` is its oid)."""

    oid: int
    relkind: str  # pg_class.relkind: r table, p partitioned table, m materialized view, ...
    owner: str = ""  # the owning role


def server_facts(session: Session) -> ServerFacts:
    """Version, database size, recovery state, connection and freeze limits."""
    row = session.one("catalog/server")
    assert row is not None
    return ServerFacts(**row)


def table_facts(session: Session) -> TableFacts | None:
    """The source table's sizes, estimated rows and vacuum/analyze activity; None if missing."""
    table = session.config.source.table
    row = session.one("catalog/table_stats", {"schema": table.schema, "name": table.name})
    return None if row is None else TableFacts(**row)


def need_from(
    table: TableFacts | None, server: ServerFacts, left: tuple[str, ...] = ()
) -> schedule.Need:
    """What can make maintenance due early, from facts already read (a missing table: none)."""
    from epstats_cli import schedule

    if table is None:
        return schedule.Need(freeze_max_age=server.autovacuum_freeze_max_age, leftovers=left)
    return schedule.Need(
        leftovers=left,
        dead_tuples=table.dead_tuples or 0,
        live_tuples=table.live_tuples or 0,
        xid_age=table.xid_age or 0,
        freeze_max_age=server.autovacuum_freeze_max_age,
        last_vacuum=table.last_vacuumed,
        last_analyze=table.last_analyzed,
    )


def leftovers(session: Session, spare: QualifiedName | None = None) -> tuple[str, ...]:
    """Invalid indices (no build filling them now) on the source table and the rollup, the
    relation `spare` if it exists, and runs left `running` by a process that is gone: what
    interrupted work left behind (epstats.runs must exist)."""
    return _leftovers(session, spare)[0]


def _leftovers(
    session: Session, spare: QualifiedName | None
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """`leftovers`, and the invalid indices a build is still running on (named with it)."""
    from epstats_cli.index_switch import switch_names

    cfg = session.config
    tables = (cfg.source.table, cfg.view_name)
    params = {
        "schemas": [t.schema for t in tables],
        "names": [t.name for t in tables],
        "spare_schema": spare.schema if spare else None,
        "spare_name": spare.name if spare else None,
        # an interrupted switch of method's old index beside the new one (index_switch)
        "switch_of": [s.name for s in cfg.indexes.recommended],
        "switch_old": [switch_names(s.name)[1] for s in cfg.indexes.recommended],
    }
    rows = session.all("catalog/leftovers", params)
    left = tuple(r["name"] for r in rows if r["kind"] == "leftover")
    return left, tuple(r["name"] for r in rows if r["kind"] == "building")


def modified_since_analyze(session: Session) -> tuple[schedule.Modified, ...]:
    """Rows changed since the last ANALYZE of the source table and of the rollup (each one's
    partitions summed), against their rows."""
    cfg = session.config
    tables = (cfg.source.table, cfg.view_name)
    params = {"schemas": [t.schema for t in tables], "names": [t.name for t in tables]}
    from epstats_cli import schedule

    return tuple(
        schedule.Modified(
            str(QualifiedName(r["schema"], r["name"])), int(r["modified"]), int(r["rows"])
        )
        for r in session.all("maintenance/analyze_need", params)
    )


def need(session: Session, spare: QualifiedName | None = None) -> schedule.Need:
    """Dead tuples, transaction-ID age, the last (auto)vacuum/analyze, the rows changed since
    the last ANALYZE and the leftovers of interrupted work (see `leftovers`), for the
    schedule."""
    left, building = _leftovers(session, spare)
    found = need_from(table_facts(session), server_facts(session), left)
    return replace(found, building=building, modified=modified_since_analyze(session))


# --- relations ---------------------------------------------------------------------------------


def relation(session: Session, schema: str, name: str) -> Relation | None:
    """(oid, relkind) of schema.name, matched exactly (no case folding, no search_path)."""
    row = session.one("catalog/relation", {"schema": schema, "name": name})
    return None if row is None else Relation(int(row["oid"]), str(row["relkind"]), row["owner"])


def relation_exists(session: Session, schema: str, name: str) -> bool:
    """Whether schema.name exists, matched exactly."""
    return relation(session, schema, name) is not None


def schema_exists(session: Session, schema: str) -> bool:
    """Whether the schema exists, matched exactly."""
    return bool(session.value("catalog/schema_exists", {"schema": schema}))


def missing_source(session: Session) -> OperationFailed:
    """The error for a source table that does not exist, saying how to fix it."""
    return OperationFailed(
        f"source table {session.config.source.table} does not exist "
        "(check source.table, or create it: epstats init --with-requests-table)"
    )


def source_oid(session: Session) -> int:
    """The source table's oid; OperationFailed (exit 1) saying how to fix it when missing."""
    table = session.config.source.table
    found = relation(session, table.schema, table.name)
    if found is None:
        raise missing_source(session)
    return found.oid


def column_types(session: Session, oid: int) -> dict[str, str]:
    """Column name -> its SQL type (format_type) for the relation `oid`."""
    return {r["attname"]: r["type"] for r in session.all("catalog/column_type", {"oid": oid})}


def plan_rows(plan: Any) -> int | None:
    """`Plan Rows` of an EXPLAIN (FORMAT JSON) result."""
    try:
        doc = json.loads(plan) if isinstance(plan, str) else plan
        return int(doc[0]["Plan"]["Plan Rows"])
    except (TypeError, ValueError, KeyError, IndexError):
        return None
