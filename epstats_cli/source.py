"""The source table as epstats reads it: its four columns' types, checked once per command,
and the time expressions that make a day, a bound or an instant of its timestamp column.

A `timestamp with time zone` column holds instants. A `timestamp without time zone` column
holds wall-clock time in `source.naive_timezone`: a row's day is computed through that zone,
and every instant compared with the column is converted on the value's side
(`%(bound)s::timestamptz AT TIME ZONE naive_tz`), so the timestamp index serves the
comparison. Nothing depends on the session's TimeZone or the client's clock.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from epstats_cli.catalog import source_oid
from epstats_cli.config import LOGICAL_COLUMNS, Config
from epstats_cli.db import Session
from epstats_cli.errors import ConfigError
from epstats_cli.schema import source_identifiers

NOW = sql.SQL("now()")

# The base types (pg_type.typname, under any domain) each column may have, and how to say so.
ACCEPTED: dict[str, tuple[frozenset[str], str]] = {
    "endpoint": (
        frozenset({"text", "varchar", "bpchar", "citext", "name"}),
        "a text type (text, varchar, char, citext, name)",
    ),
    "timestamp": (
        frozenset({"timestamptz", "timestamp"}),
        "timestamp with time zone or timestamp without time zone",
    ),
    "response_time": (
        frozenset({"int2", "int4", "int8", "numeric", "float4", "float8"}),
        "an integer, numeric or floating-point type",
    ),
    "status": (
        frozenset({"int2", "int4", "int8"}),
        "an integer type (smallint, integer, bigint)",
    ),
}


@dataclass(frozen=True)
class SourceColumns:
    """The source's four columns, checked: their declared types, and whether the timestamp
    is naive (`timestamp without time zone`)."""

    types: dict[str, str]  # logical name -> declared type
    naive: bool


def type_problems(config: Config, found: dict[str, tuple[str, str]]) -> list[str]:
    """What is wrong with the source's columns, given {physical name: (declared, base)}."""
    src = config.source
    problems = []
    for logical in LOGICAL_COLUMNS:
        physical = src.columns.physical(logical)
        accepted, described = ACCEPTED[logical]
        if physical not in found:
            problems.append(
                f"source.columns.{logical}: {src.table} has no column {physical!r} "
                "(check source.columns)"
            )
            continue
        declared, base = found[physical]
        if base not in accepted:
            problems.append(
                f"source.columns.{logical}: column {physical!r} of {src.table} is {declared}; "
                f"expected {described}"
            )
    return problems


def check_columns(session: Session, oid: int | None = None) -> SourceColumns:
    """The source's four columns; ConfigError (exit 3) naming every column that is missing or
    of a type epstats cannot read, with the types accepted."""
    oid = source_oid(session) if oid is None else oid
    found = {
        r["attname"]: (str(r["type"]), str(r["base"]))
        for r in session.all("catalog/column_type", {"oid": oid})
    }
    problems = type_problems(session.config, found)
    if problems:
        raise ConfigError(problems)
    cols = session.config.source.columns
    types = {logical: found[cols.physical(logical)][0] for logical in LOGICAL_COLUMNS}
    return SourceColumns(types, found[cols.timestamp][1] == "timestamp")


@dataclass(frozen=True)
class Basis:
    """How raw rows become days and errors: the zone of days, the zone a naive timestamp is
    wall-clock time in, the error threshold, whether the timestamp column is naive, and the
    accuracy of the latency histograms. From
    the configuration, or from the parameters a rollup was built with."""

    timezone: str
    naive_timezone: str
    error_status_min: int
    naive: bool
    latency_accuracy: float = 0.01  # of the latency histograms (epstats_cli.latency)

    @classmethod
    def of(cls, config: Config, columns: SourceColumns) -> Basis:
        src = config.source
        return cls(
            src.timezone,
            src.naive_timezone,
            src.error_status_min,
            columns.naive,
            config.view.latency_accuracy,
        )

    @classmethod
    def recorded(cls, params: dict[str, Any], config: Config, columns: SourceColumns) -> Basis:
        """The basis a rollup was built with (its recorded parameters; the configuration's
        for any it does not record)."""
        src = config.source
        return cls(
            str(params.get("timezone", src.timezone)),
            str(params.get("naive_timezone", src.naive_timezone)),
            int(params.get("error_status_min", src.error_status_min)),
            columns.naive,
            float(params.get("latency_accuracy", config.view.latency_accuracy)),
        )


def local(session: Session, instant: dt.datetime) -> dt.datetime:
    """An instant in source.timezone, as `status` and `check` print times (exact: zoneinfo)."""
    return instant.astimezone(zoneinfo.ZoneInfo(session.config.source.timezone))


def _ts(session: Session) -> str:
    return session.config.source.columns.timestamp


def day(session: Session, basis: Basis) -> sql.Composable:
    """The calendar day of a row in basis.timezone."""
    tz = sql.Literal(basis.timezone)
    if basis.naive:
        naive_tz = sql.Literal(basis.naive_timezone)
        return session.statement(
            "fragments/day_timestamp", timestamp=_ts(session), tz=tz, naive_tz=naive_tz
        )
    return session.statement("fragments/day_timestamptz", timestamp=_ts(session), tz=tz)


def bound(session: Session, basis: Basis, value: sql.Composable) -> sql.Composable:
    """An instant (a timestamptz expression) as a value the timestamp column is compared with."""
    if basis.naive:
        naive_tz = sql.Literal(basis.naive_timezone)
        return session.statement("fragments/bound_timestamp", value=value, naive_tz=naive_tz)
    return session.statement("fragments/bound_timestamptz", value=value)


def param(session: Session, basis: Basis, name: str) -> sql.Composable:
    """The timestamptz parameter %(name)s as a bound of the timestamp column."""
    return bound(session, basis, sql.Placeholder(name))


def instant(session: Session, basis: Basis) -> sql.Composable:
    """The timestamp column as an instant (timestamptz)."""
    if basis.naive:
        naive_tz = sql.Literal(basis.naive_timezone)
        return session.statement(
            "fragments/instant_timestamp", timestamp=_ts(session), naive_tz=naive_tz
        )
    return session.statement("fragments/instant_timestamptz", timestamp=_ts(session))


def since(session: Session, basis: Basis, name: str = "from_day") -> sql.Composable:
    """timestamp >= local midnight of the date %(name)s: an index range scan."""
    midnight = session.statement(
        "fragments/local_midnight", day=sql.Placeholder(name), tz=sql.Literal(basis.timezone)
    )
    return session.statement(
        "fragments/since", timestamp=_ts(session), from_ts=bound(session, basis, midnight)
    )


def first_day(session: Session, basis: Basis, from_day: dt.date) -> dt.date | None:
    """The local day of the oldest raw row dated from `from_day` on (None: no such row),
    looked for first in a window up to a day after the oldest value the column's statistics
    know: cheap with a BRIN alone on the timestamp, which finds no min()."""
    table = session.config.source.table
    hint = session.value(
        "source/oldest_hint",
        {"schema": table.schema, "name": table.name, "column": _ts(session)},
    )
    midnight = session.statement(
        "fragments/local_midnight", day=sql.Placeholder("from_day"), tz=sql.Literal(basis.timezone)
    )
    if hint is not None:
        midnight = sql.SQL("greatest({}, {})").format(sql.Placeholder("hint"), midnight)
    until = bound(session, basis, sql.SQL("({} + interval '1 day')").format(midnight))
    found: dt.date | None = session.value(
        "source/first_day",
        {"from_day": from_day, "hint": hint},
        **source_identifiers(session),
        day=day(session, basis),
        since=since(session, basis),
        to_ts=until,
    )
    return found


def before_next_day(session: Session, basis: Basis, name: str = "to_day") -> sql.Composable:
    """timestamp < local midnight of the day after the date %(name)s: with since(), a range of
    the timestamp index for whole days."""
    next_day = sql.SQL("(") + sql.Placeholder(name) + sql.SQL("::date + 1)")
    midnight = session.statement(
        "fragments/local_midnight", day=next_day, tz=sql.Literal(basis.timezone)
    )
    until_ts = bound(session, basis, midnight)
    return session.statement("fragments/before_next_day", timestamp=_ts(session), until_ts=until_ts)


def partial_days(session: Session, basis: Basis) -> sql.Composable:
    """A raw row of a window's partial days, which auto reads from the raw rows: from
    %(from_ts)s to %(head_to)s (its head) or from %(tail_from)s to %(to_ts)s (its tail), two
    ranges of the timestamp index; not true when both are NULL (report_window.Parts)."""
    return session.statement(
        "fragments/partial_days",
        timestamp=_ts(session),
        from_ts=param(session, basis, "from_ts"),
        head_to=param(session, basis, "head_to"),
        tail_from=param(session, basis, "tail_from"),
        to_ts=param(session, basis, "to_ts"),
    )


def up_to_now(session: Session, basis: Basis) -> sql.Composable:
    """timestamp <= now(): the rows a refresh aggregates (rows dated later are in no window)."""
    return session.statement(
        "fragments/up_to_now", timestamp=_ts(session), now=bound(session, basis, NOW)
    )


def unaggregated(session: Session, basis: Basis) -> sql.Composable:
    """The condition on a raw row that the rollup has not aggregated, given %(as_of)s,
    %(snapshot)s and %(commit_delay)s (the rollup's bookkeeping row and view.commit_delay)."""
    after = session.statement("fragments/as_of_less_delay")
    return session.statement(
        "fragments/unaggregated",
        endpoint=session.config.source.columns.endpoint,
        timestamp=_ts(session),
        after=bound(session, basis, after),
        as_of=param(session, basis, "as_of"),
        xid8=session.statement("fragments/xmin_xid8"),
    )


@dataclass(frozen=True)
class FutureRows:
    """Raw rows dated after the server's now(): how many, the newest, how far ahead it is."""

    count: int
    latest: dt.datetime | None
    ahead_seconds: float | None  # latest - now(), by the server


def future_extent(
    session: Session, columns: SourceColumns | None = None, basis: Basis | None = None
) -> FutureRows:
    """The raw rows dated after the server's now() (a range scan of the timestamp index, never
    a full scan). `basis` defaults to the configuration's."""
    if basis is None:
        basis = Basis.of(session.config, check_columns(session) if columns is None else columns)
    row = session.one(
        "source/future_rows",
        **source_identifiers(session),
        instant=instant(session, basis),
        now=bound(session, basis, NOW),
    )
    assert row is not None
    return FutureRows(int(row["count"]), row["latest"], row["ahead_seconds"])


def future_rows(
    session: Session, columns: SourceColumns | None = None, basis: Basis | None = None
) -> tuple[int, dt.datetime | None]:
    """How many raw rows are dated after the server's now(), and the newest of them."""
    found = future_extent(session, columns, basis)
    return found.count, found.latest
