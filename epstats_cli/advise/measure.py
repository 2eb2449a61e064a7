"""What `advise` measures: size, growth, traffic, read/write mix and connection limits."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import cardinality, catalog, indexes, reports, rights, rollup, source
from epstats_cli.advise.rules import Measured, Strategy, TrafficSource
from epstats_cli.advise.server_settings import SETTINGS, ServerSetting
from epstats_cli.db import Session
from epstats_cli.endpoints import Normalization
from epstats_cli.errors import EpstatsError, OperationFailed
from epstats_cli.schema import rollup_identifiers

WINDOW_SECONDS = 7 * 86400.0  # the traffic queries look back 7 days


def owners(session: Session) -> tuple[tuple[str, str, bool], ...]:
    """The source table's and the rollup's owners (Measured.owners)."""
    out = []
    for name in (session.config.source.table, session.config.view_name):
        row = rights.relation_rights(session, name)
        if row is not None:
            kind = rights.DDL_KIND.get(row["relkind"], "TABLE")
            out.append((f"{kind} {row['relation']}", row["owner"], bool(row["owner_is_superuser"])))
    return tuple(out)


def measure(session: Session) -> Measured:
    """Read the measurements advise.rules needs (read-only)."""
    src = session.config.source
    table = catalog.table_facts(session)
    if table is None:
        raise OperationFailed(f"source table {src.table} does not exist")
    server = catalog.server_facts(session)
    ids = rollup_identifiers(session)
    basis = source.Basis.of(session.config, source.check_columns(session))
    raw = session.one(
        "advise/traffic_raw",
        **ids,
        instant=source.instant(session, basis),
        week_ago=source.bound(session, basis, sql.SQL("(now() - interval '7 days')")),
        now=source.bound(session, basis, sql.SQL("now()")),
    )
    assert raw is not None
    seconds = WINDOW_SECONDS
    if raw["first_seen"] is not None:  # younger than the window: average over its real age
        seconds = min(seconds, max(3600.0, (server.now - raw["first_seen"]).total_seconds()))
    avg_rps = raw["requests"] / seconds
    traffic_source: TrafficSource = "raw rows"
    strategy: Strategy | None = None
    refresh_seconds: float | None = None
    rollup_bytes: int | None = None
    rollup_rows: dict[str, Any] = {}
    usable, _why = reports.rollup_usable(session)
    if usable:
        row = session.one("advise/traffic_view", {"tz": src.timezone}, **ids)
        if row and row["days"]:
            avg_rps = row["requests"] / (row["days"] * 86400.0)
            traffic_source = "rollup"
            if row["requests"]:
                rollup_rows = {
                    "rollup_rows_per_day": row["rollup_rows"] / row["days"],
                    "rollup_raw_rows_per_day": row["requests"] / row["days"],
                    "rollup_rows_source": "rollup",
                }
        info = rollup.facts(session)
        strategy = "incremental" if info.strategy == "incremental" else "materialized"
        rollup_bytes = info.size_bytes
        if info.size_bytes and info.estimated_rows and info.estimated_rows > 0:
            rollup_rows["rollup_row_bytes"] = info.size_bytes / info.estimated_rows
        refresh_seconds = info.refresh_seconds
    if not rollup_rows:
        rollup_rows = _projected(session)
    activity = session.one("advise/activity")
    conns = session.one("advise/connections")
    assert activity is not None and conns is not None
    plan = indexes.make_plan(session)
    settings = tuple(
        ServerSetting(r["name"], r["value"], r["unit"], r["source"], r["context"])
        for r in session.all("advise/settings", {"names": list(SETTINGS)})
    )
    return Measured(
        owners=owners(session),
        database_bytes=server.database_bytes,
        table_bytes=table.total_bytes,
        table_rows=int(table.estimated_rows or table.live_tuples or 0),
        rows_per_day=avg_rps * 86400,
        avg_rps=avg_rps,
        peak_rps=raw["peak_hour_requests"] / 3600.0,
        reads=int(activity["reads"] or 0),
        writes=int(activity["writes"] or 0),
        max_connections=int(conns["max_connections"]),
        reserved_connections=int(conns["reserved_connections"]),
        rollup_bytes=rollup_bytes,
        rollup_strategy=strategy,
        refresh_seconds=refresh_seconds,
        redundant_indexes=tuple(sorted(plan.redundant)),
        traffic_source=traffic_source,
        **rollup_rows,
        normalization=Normalization.of(session.config).describe(),
        server_version_num=session.server.version_num,
        database=server.database,
        settings=settings,
    )


def _projected(session: Session) -> dict[str, Any]:
    """The rows a day would add to a rollup (its distinct endpoints, normalized when on) for
    the raw rows it brings, from yesterday's and today's rows (nothing: none, or unreadable)."""
    try:
        found = cardinality.measure(session)
    except (psycopg.Error, EpstatsError):
        return {}
    if not found.requests:
        return {}
    return {
        "rollup_rows_per_day": float(found.endpoints),
        "rollup_raw_rows_per_day": float(found.requests),
        "rollup_rows_source": "projected",
        "rollup_rows_how": found.how(),
    }
