"""`epstats init`: the tool's own schema and, on request, the guide's requests table."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from psycopg import sql

from epstats_cli.catalog import relation, relation_exists, schema_exists
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed
from epstats_cli.sqltext import as_text

if TYPE_CHECKING:  # imported where used: a report reads the schema's names, runs no step
    from epstats_cli.execute import Executor, Step


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
# adds them to older installations. rollup_state's relation_oid and parameters mark the rollup
# as epstats's (an earlier epstats kept that mark in the rollup's COMMENT; see rollup/inspect);
# retired_through is the retention horizon, retiring the day being retired (retention.py).
LATER_COLUMNS: dict[str, list[tuple[str, str]]] = {
    "rollup_state": [
        ("watermark", "timestamptz"),
        ("settled_through", "date"),
        ("relation_oid", "oid"),
        ("parameters", "jsonb"),
        ("retired_through", "date"),
        ("retiring", "jsonb"),
    ],
    "runs": [("failure", "text")],
}


def _upgrades(session: Session) -> list[tuple[str, bool, sql.Composed]]:
    steps = []
    if relation(session, "epstats", "runs") and not session.value("schema/runs_statuses_current"):
        upgrade = session.statement("schema/runs_statuses")
        steps.append(("status interrupted in epstats.runs", False, upgrade))
    for table, columns in LATER_COLUMNS.items():
        found = relation(session, "epstats", table)
        if found is None:
            continue  # created below with every column
        have = {r["attname"] for r in session.all("catalog/columns", {"oid": found[0]})}
        for column, type_ in columns:
            if column not in have:
                add = session.statement(
                    "schema/add_column",
                    table=("epstats", table),
                    column=column,
                    type=sql.SQL(type_),
                )
                steps.append((f"column epstats.{table}.{column}", False, add))
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
    steps: list[tuple[str, bool, sql.Composed]] = [
        (
            "schema epstats",
            schema_exists(session, "epstats"),
            session.statement("schema/create_schema"),
        ),
        (
            "table epstats.runs",
            relation_exists(session, "epstats", "runs"),
            session.statement("schema/create_runs"),
        ),
        (
            "index epstats.runs_task_started_at",
            relation_exists(session, "epstats", "runs_task_started_at"),
            session.statement("schema/create_runs_index"),
        ),
        (
            "table epstats.rollup_state",
            relation_exists(session, "epstats", "rollup_state"),
            session.statement("schema/create_rollup_state"),
        ),
        (
            "table epstats.endpoint_map",
            relation_exists(session, "epstats", "endpoint_map"),
            session.statement("schema/create_endpoint_map"),
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
                session.statement("schema/create_source_schema", **ids),
            )
        )
        steps.append(
            (
                f"table {table}",
                relation_exists(session, table.schema, table.name),
                session.statement("schema/create_requests", **ids),
            )
        )
    return [(InitStep(obj, present, as_text(session.conn, q)), q) for obj, present, q in steps]


def init_step(session: Session, with_requests_table: bool) -> tuple[list[InitStep], Step]:
    """What init finds, and the one step that creates what is missing (in one transaction;
    skipped when everything is present, so a second run writes nothing)."""
    from epstats_cli.execute import Mode, Statement, Step

    plan = plan_init(session, with_requests_table)
    missing = [Statement(q) for found, q in plan if not found.present]
    step = Step(
        "init",
        "epstats",
        f"create {len(missing)} missing object(s)",
        missing,
        Mode.TRANSACTION,
        skip=None if missing else "nothing to do: all present",
        retries=0,  # a lock not granted at once fails init, as a DDL error does
        raise_failure=True,  # the server's error is init's error (e.g. a read-only server)
    )
    return [found for found, _q in plan], step


def init(session: Session, with_requests_table: bool, executor: Executor) -> list[InitStep]:
    """Create what is missing, in one transaction; a second run changes nothing."""
    objects, step = init_step(session, with_requests_table)
    executor.run(step)
    return objects


def drop_demo(session: Session) -> None:
    """Remove what `epstats demo --dsn` made: its own schema, nothing else."""
    session.run("schema/drop_demo")
