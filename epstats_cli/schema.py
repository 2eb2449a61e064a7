"""`epstats init`: the tool's own schema and, on request, the guide's requests table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from psycopg import sql

from epstats_cli import queries
from epstats_cli.catalog import relation, relation_exists, schema_exists
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed
from epstats_cli.sqltext import as_text


@dataclass(frozen=True)
class InitStep:
    object: str
    present: bool
    statement: str


def source_identifiers(session: Session) -> dict[str, Any]:
    """Placeholders for statements over the source table: {table}, {endpoint}, {timestamp}, ..."""
    src = session.config.source
    return {
        "table": (src.table.schema, src.table.name),
        "schema": src.table.schema,
        "endpoint": src.columns.endpoint,
        "timestamp": src.columns.timestamp,
        "response_time": src.columns.response_time,
        "status": src.columns.status,
    }


def rollup_identifiers(session: Session) -> dict[str, Any]:
    """source_identifiers plus {view}: for statements over the raw rows and the rollup."""
    view = session.config.view_name
    return {**source_identifiers(session), "view": (view.schema, view.name)}


# Columns added to epstats's own tables after their first release, with their types: `init`
# adds them to older installations.
LATER_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "rollup_state": [("watermark", "timestamptz"), ("settled_through", "date")],
}


def _upgrades(session: Session) -> list[tuple[str, bool, sql.Composed]]:
    v = session.server.version_num
    steps = []
    for table, columns in LATER_COLUMNS.items():
        found = relation(session, "epstats", table)
        if found is None:
            continue  # created below with every column
        have = {
            r[0]
            for r in session.conn.execute(
                queries.get("catalog/columns", v), {"oid": found[0]}
            ).fetchall()
        }
        for column, type_ in columns:
            if column not in have:
                steps.append(
                    (
                        f"column epstats.{table}.{column}",
                        False,
                        queries.get(
                            "schema/add_column",
                            v,
                            table=("epstats", table),
                            column=column,
                            type=sql.SQL(type_),
                        ),
                    )
                )
    return steps


def require_current(session: Session) -> None:
    """OperationFailed when epstats's own tables predate this version (init upgrades them)."""
    missing = [name for name, _present, _q in _upgrades(session)]
    if missing:
        raise OperationFailed(
            f"epstats's schema is older than this version (missing {', '.join(missing)}): "
            "run `epstats init` to upgrade it"
        )


def plan_init(session: Session, with_requests_table: bool) -> list[tuple[InitStep, sql.Composed]]:
    """Every statement init would run, each marked with whether its object already exists."""
    v = session.server.version_num
    has_schema = schema_exists(session, "epstats")
    steps: list[tuple[str, bool, sql.Composed]] = [
        ("schema epstats", has_schema, queries.get("schema/create_schema", v)),
        (
            "table epstats.runs",
            relation_exists(session, "epstats", "runs"),
            queries.get("schema/create_runs", v),
        ),
        (
            "index epstats.runs_task_started_at",
            relation_exists(session, "epstats", "runs_task_started_at"),
            queries.get("schema/create_runs_index", v),
        ),
        (
            "table epstats.rollup_state",
            relation_exists(session, "epstats", "rollup_state"),
            queries.get("schema/create_rollup_state", v),
        ),
    ]
    steps += _upgrades(session)
    if with_requests_table:
        ids = source_identifiers(session)
        table = session.config.source.table
        steps.append(
            (
                f"schema {table.schema}",
                schema_exists(session, table.schema),
                queries.get("schema/create_source_schema", v, **ids),
            )
        )
        steps.append(
            (
                f"table {table}",
                relation_exists(session, table.schema, table.name),
                queries.get("schema/create_requests", v, **ids),
            )
        )
    return [(InitStep(obj, present, as_text(session.conn, q)), q) for obj, present, q in steps]


def init(session: Session, with_requests_table: bool, dry_run: bool) -> list[InitStep]:
    """Create what is missing, in one transaction; a second run changes nothing."""
    plan = plan_init(session, with_requests_table)
    missing = [(step, q) for step, q in plan if not step.present]
    if not dry_run and missing:
        with session.conn.transaction():
            for _, q in missing:
                session.conn.execute(q)
    return [step for step, _ in plan]


def drop_demo(session: Session) -> None:
    """Remove what `epstats demo --dsn` made: its own schema, nothing else."""
    session.conn.execute(queries.get("schema/drop_demo", session.server.version_num))
