"""The source table's time partitions: what exists (`partitions`: each with its bounds as
instants and the local days it spans in source.timezone, which retention reads), the bounds
of the partitions an interval makes (local midnights: a day, a week from Monday, a month) and
their names. The conversion is in partition_convert.py, the premaking in partition_ahead.py.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from psycopg import sql

from epstats_cli import source
from epstats_cli.catalog import source_oid
from epstats_cli.db import Session

INTERVALS = ("day", "week", "month")
STEP = {"day": "1 day", "week": "7 days", "month": "1 month"}
NAMEDATALEN = 64


@dataclass(frozen=True)
class Partition:
    """One partition of the source table. `lower`/`upper` are instants (None: MINVALUE,
    MAXVALUE or the DEFAULT partition); `first_day`..`last_day` (inclusive) the local days in
    source.timezone it holds rows of; `whole_days`: both bounds are local midnights, so
    dropping it retires whole days."""

    oid: int
    schema: str
    name: str
    bound: str  # as the server prints it: FOR VALUES FROM (...) TO (...), or DEFAULT
    default: bool
    lower: dt.datetime | None
    upper: dt.datetime | None
    first_day: dt.date | None
    last_day: dt.date | None
    whole_days: bool
    leaf: bool  # a table (relkind r), not a sub-partitioned one
    rows: int = 0  # estimated (reltuples)

    @property
    def qualified(self) -> tuple[str, str]:
        return (self.schema, self.name)


def _bound_text(session: Session, text: str, naive: bool) -> sql.Composable:
    column = sql.Identifier(text)
    if naive:
        return session.statement(
            "fragments/partition_bound_timestamp",
            text=column,
            naive_tz=sql.Literal(session.config.source.naive_timezone),
        )
    return session.statement("fragments/partition_bound_timestamptz", text=column)


def partitions_of(session: Session, oid: int, naive: bool) -> list[Partition]:
    """The partitions directly under relation `oid` (none: it is not partitioned), the
    DEFAULT partition last."""
    rows = session.all(
        "partition/list",
        {"oid": oid, "tz": session.config.source.timezone},
        lower=_bound_text(session, "lower_text", naive),
        upper=_bound_text(session, "upper_text", naive),
    )
    return [
        Partition(
            int(r["oid"]),
            r["schema"],
            r["name"],
            r["bound"],
            bool(r["is_default"]),
            r["lower_ts"],
            r["upper_ts"],
            r["first_day"],
            r["last_day"],
            bool(r["whole_days"]),
            r["relkind"] == "r",
            int(r["rows"]),
        )
        for r in rows
    ]


def partitions(session: Session) -> list[Partition]:
    """The source table's partitions with their local-day bounds, ordered by time, the
    DEFAULT partition (if any) last; [] for a plain table."""
    oid = source_oid(session)
    naive = source.check_columns(session, oid).naive
    return partitions_of(session, oid, naive)


@dataclass(frozen=True)
class Bounds:
    """One partition to be: its local days [first_day, end_day) and its bounds, as instants
    and as the text the timestamp column's type reads (for FOR VALUES)."""

    first_day: dt.date
    end_day: dt.date
    lower: dt.datetime
    upper: dt.datetime
    lower_value: str
    upper_value: str


def _value(session: Session, local: sql.Composable, naive: bool) -> sql.Composable:
    tz = sql.Literal(session.config.source.timezone)
    if naive:
        naive_tz = sql.Literal(session.config.source.naive_timezone)
        return session.statement(
            "fragments/partition_value_timestamp", local=local, tz=tz, naive_tz=naive_tz
        )
    return session.statement("fragments/partition_value_timestamptz", local=local, tz=tz)


def bounds(
    session: Session, interval: str, first: dt.date, last: dt.date, naive: bool
) -> list[Bounds]:
    """The partitions of `interval` covering local days `first` through `last`, aligned
    (a week starts on Monday, a month on its first), computed by the server in
    source.timezone (exact across DST changes)."""
    step = STEP[interval]
    start = sql.SQL("start")
    upper = sql.SQL("(start + {}::interval)").format(sql.Literal(step))
    rows = session.all(
        "partition/bounds",
        {
            "first": first,
            "last": last,
            "unit": interval,
            "step": step,
            "tz": session.config.source.timezone,
        },
        lower_value=_value(session, start, naive),
        upper_value=_value(session, upper, naive),
    )
    return [
        Bounds(
            r["first_day"],
            r["end_day"],
            r["lower_ts"],
            r["upper_ts"],
            r["lower_value"],
            r["upper_value"],
        )
        for r in rows
    ]


def partition_name(table: str, interval: str, first_day: dt.date) -> str:
    """`requests_p20250101` (a day or a week, by its first day) or `requests_p202501` (a
    month), the table's name cut so that the whole fits NAMEDATALEN."""
    suffix = "_p" + first_day.strftime("%Y%m" if interval == "month" else "%Y%m%d")
    room = NAMEDATALEN - 1 - len(suffix)
    return table.encode()[:room].decode(errors="ignore") + suffix


def interval_of(parts: list[Partition]) -> str | None:
    """The interval of existing whole-day partitions (from their widths), None if unknown."""
    widths = {
        (p.last_day - p.first_day).days + 1
        for p in parts
        if p.whole_days and p.first_day is not None and p.last_day is not None
    }
    if not widths:
        return None
    if widths == {1}:
        return "day"
    if widths == {7}:
        return "week"
    if widths <= {28, 29, 30, 31}:
        return "month"
    return None
