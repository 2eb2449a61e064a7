"""The rollup's definition: the aggregate over the raw rows, composed for this source table.

Shared by build, refresh and verify. The data rows are the raw rows dated up to the
statement's now(), grouped by endpoint and day (epstats_cli.source makes the day and the
bounds); the same statement adds the bookkeeping row (as-of and snapshot), so the two can
never disagree, whoever runs the statement (a REFRESH by hand included).

Each data row names the endpoint as normalized (`source.endpoint_ids`, `source.endpoint_rules`:
epstats_cli.endpoints), read through `epstats.endpoint_map`, and counts each status class
(status_2xx ... status_5xx, status_other: they add up to request_count) and keeps its latency
histogram (epstats_cli.latency: latency_buckets, latency_counts).
"""

from __future__ import annotations

from collections.abc import Sequence

from psycopg import sql

from epstats_cli import source
from epstats_cli.db import Session
from epstats_cli.endpoints import Normalization, joined
from epstats_cli.endpoints import planner_settings as planner
from epstats_cli.latency import bucket_sql
from epstats_cli.schema import source_identifiers

TIMESTAMPTZ = "timestamp with time zone"
TIMESTAMP = "timestamp without time zone"


def timestamp_type(session: Session, oid: int | None = None) -> str:
    """The type of the source's timestamp column (TIMESTAMP or TIMESTAMPTZ), after checking
    all four columns (source.check_columns: ConfigError naming any missing or wrong one)."""
    return TIMESTAMP if source.check_columns(session, oid).naive else TIMESTAMPTZ


def aggregate(
    session: Session,
    basis: source.Basis,
    where: sql.Composable,
    norm: Normalization,
    inline: bool = False,
    table: sql.Composable | None = None,
) -> sql.Composed:
    """The data rows aggregated from the raw rows that satisfy `where`, their endpoints
    normalized by `norm` (through the map: endpoints.planner_settings first in the
    transaction; `inline`: by the expression on each row, no map); read from `table` (rows of
    the source's columns: a partition, or the rows a DELETE returned) instead of the source."""
    mapped = joined(session, norm, inline=inline)
    ids = source_identifiers(session)
    if table is not None:
        ids["table"] = table
    return session.statement(
        "view/aggregate",
        **ids,
        bucket=bucket_sql(session, sql.Identifier(ids["response_time"]), basis.latency_accuracy),
        normalized=mapped.endpoint,
        join=mapped.join,
        day=source.day(session, basis),
        instant=source.instant(session, basis),
        error_min=sql.Literal(basis.error_status_min),
        where=where,
    )


def planner_settings(session: Session, norm: Normalization) -> list[sql.Composed]:
    """What to run first in the transaction of a statement that aggregates (SET LOCAL): the
    groups hashed, never sorted (the planner counts as many latency buckets as rows), and
    with normalization through the map, no Memoize (endpoints.planner_settings)."""
    if norm.active:
        return planner(session)
    return [session.statement("endpoints/hash_aggregate")]


def definition(
    session: Session,
    basis: source.Basis,
    norm: Normalization,
    since: sql.Composable | None = None,
    inline: bool = False,
) -> sql.Composed:
    """The rollup's rows: every raw row dated up to now() (and from the `since` condition on,
    when given), aggregated, plus the bookkeeping row, in one statement."""
    where = source.up_to_now(session, basis)
    if since is not None:
        where = sql.SQL("{} AND {}").format(since, where)
    rows = aggregate(session, basis, where, norm, inline)
    return session.statement("view/definition", aggregate=rows)


def insert(
    session: Session, view: tuple[str, str], columns: Sequence[str], rows: sql.Composable
) -> sql.Composed:
    """INSERT of `rows` (the definition's columns) into the rollup `view`, filling the
    `columns` it has (RollupFacts.insert_columns: all of them but the latency histograms a
    rollup built before them lacks)."""
    names = sql.SQL(", ").join(sql.Identifier(c) for c in columns)
    return session.statement("view/insert_days", view=view, columns=names, definition=rows)
