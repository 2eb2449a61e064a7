"""How many distinct endpoints a day brings: what `check endpoint_cardinality` judges, what
`status` shows and what `advise` compares with the raw rows. Each is a row of the rollup every
day, so an endpoint column of raw paths (`/users/48213`) makes a rollup as large as the table.

Read-only and bounded, since `check` runs every minute: the figure comes from the cheapest
source that tells it.
- `rollup`: the rollup's rows of yesterday and today (its day index), when epstats built it
  with this configuration's normalization and time zone and it holds all of yesterday: the
  distinct endpoints per day as normalized, which is what matters once normalization is on.
- `rows`: every raw row of yesterday and today (a range of the timestamp index), when the
  planner estimates at most EXACT_ROWS of them: exact.
- `newest rows`: else the newest SLICE_ROWS or so (a shorter range of the same index), and the
  day's distinct endpoints estimated from them by the Haas-Stokes estimator ANALYZE uses for
  n_distinct (`per_day`). A TABLESAMPLE of the table would read pages of every day to find a
  few of yesterday's, and pg_stats' n_distinct is of the whole table, not of a day.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any, Literal

from psycopg import sql

from epstats_cli import rollup, source
from epstats_cli.catalog import plan_rows
from epstats_cli.db import Session, consistent
from epstats_cli.endpoints import Normalization, check_rules, expression
from epstats_cli.schema import rollup_identifiers, source_identifiers

# Read every raw row of yesterday and today when the planner expects at most this many ...
EXACT_ROWS = 60_000
# ... else about this many of the newest (a time range the planner expects to hold them).
SLICE_ROWS = 30_000

Method = Literal["rollup", "rows", "newest rows"]


@dataclass(frozen=True)
class Cardinality:
    """Distinct endpoints per day (the busier of yesterday and today), and how it was told."""

    method: Method
    normalization: str  # Normalization.describe(): off, auto, 2 rules, ...
    normalized: bool  # normalization is on: `endpoints` counts normalized endpoints
    endpoints: int  # distinct endpoints per day (normalized when on): the figure judged
    raw: int | None  # distinct raw endpoints per day (None: not measured, the rollup's only)
    requests: int | None  # raw rows per day (estimated for a slice; None: the rollup's)
    day: dt.date | None  # the day counted (None: a day estimated from the newest rows)
    rows_read: int | None = None  # raw rows read (None: the rollup was read)
    span_seconds: float | None = None  # the time the newest rows read span
    raw_how: str | None = None  # where `raw` comes from, when not from where `endpoints` does

    def how(self) -> str:
        """Where the figure comes from, as `check` and `status` say it."""
        if self.method == "rollup":
            return f"the rollup's rows of {self.day}"
        if self.method == "rows":
            return (
                "no raw row yesterday or today" if self.day is None else f"raw rows of {self.day}"
            )
        span = dt.timedelta(seconds=round(self.span_seconds or 0))
        return f"estimated from the newest {self.rows_read or 0:,} raw rows ({span} of traffic)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "per_day": self.endpoints,
            "raw_per_day": self.raw,
            "normalized_per_day": self.endpoints if self.normalized else None,
            "normalization": self.normalization,
            "requests_per_day": self.requests,
            "method": self.method,
            "estimated": self.method == "newest rows",
            "day": self.day,
            "rows_read": self.rows_read,
            "from": self.how(),
            "raw_from": self.raw_how or self.how(),
        }


def per_day(distinct: int, once: int, read: int, day_rows: float) -> int:
    """A day's distinct values from a slice of its rows (Haas and Stokes' Duj1, as ANALYZE
    estimates n_distinct): n*d / (n - f1 + f1*n/N) for n rows read of the day's N, d distinct
    among them, f1 seen once; at least d, at most N."""
    if read <= 0 or distinct <= 0:
        return 0
    whole = max(day_rows, float(read))
    denominator = read - once + once * read / whole
    estimate = read * distinct / denominator if denominator > 0 else whole
    return round(min(max(estimate, float(distinct)), whole))


def measure(session: Session, raw_too: bool = False) -> Cardinality:
    """Distinct endpoints per day, from the rollup when it can tell, else the raw rows; with
    `raw_too` and normalization on, the raw endpoints per day beside it (from the raw rows),
    the judged figure staying the rollup's: `status` and `check` say the same."""
    config = session.config
    norm = Normalization.of(config)
    check_rules(session, norm)
    columns = source.check_columns(session)
    basis = source.Basis.of(config, columns)

    def read() -> Cardinality:
        if not session.per_statement:  # no parallel DISTINCT (endpoints/serial says why)
            session.run("endpoints/serial")
        days = session.one("health/endpoint_days", {"tz": basis.timezone})
        assert days is not None
        counted = _from_rollup(session, norm, basis, days)
        if counted is None:
            return _from_rows(session, norm, basis, days)
        if raw_too and norm.active:  # the rollup's figure (check's), the raw one beside it
            rows = _from_rows(session, norm, basis, days)
            return replace(counted, raw=rows.raw, requests=rows.requests, raw_how=rows.how())
        return counted

    return consistent(session, read, lambda: None)


def _from_rollup(
    session: Session, norm: Normalization, basis: source.Basis, days: dict[str, Any]
) -> Cardinality | None:
    """The rollup's rows per day, when it holds all of yesterday as this configuration would
    (None: it cannot tell)."""
    info = rollup.facts(session, contents=False, state=False)
    params = info.parameters
    if info.unreadable() is not None or not info.ours or params is None:
        return None
    if Normalization.recorded(params) != norm or params.get("timezone") != basis.timezone:
        return None
    if info.as_of is None or info.as_of < days["today_ts"]:
        return None  # yesterday is not all in it
    rows = session.all(
        "health/endpoint_rollup_days",
        {"from_day": days["from_day"], "to_day": days["to_day"]},
        **rollup_identifiers(session),
    )
    busiest = max(rows, key=lambda r: int(r["endpoints"]), default=None)
    count = 0 if busiest is None else int(busiest["endpoints"])
    day = days["from_day"] if busiest is None else busiest["day"]
    raw = None if norm.active else count
    return Cardinality("rollup", norm.describe(), norm.active, count, raw, None, day)


def _from_rows(
    session: Session, norm: Normalization, basis: source.Basis, days: dict[str, Any]
) -> Cardinality:
    """Every raw row of yesterday and today, or the newest of them."""
    ids = dict(
        source_identifiers(session),
        from_ts=source.param(session, basis, "from_ts"),
        to_ts=source.param(session, basis, "to_ts"),
    )
    bounds = {"from_ts": days["from_ts"], "to_ts": days["as_of"]}
    expected = plan_rows(session.value("endpoints/window_rows", bounds, **ids))
    normalized = expression(session, norm, sql.SQL("d.raw"))
    if expected is None or expected <= EXACT_ROWS:
        rows = session.all(
            "health/endpoint_rows",
            bounds,
            **ids,
            day=source.day(session, basis),
            normalized=normalized,
        )
        busiest = max(rows, key=lambda r: int(r["endpoints"]), default=None)
        if busiest is None:
            return Cardinality("rows", norm.describe(), norm.active, 0, 0, 0, None, 0)
        return Cardinality(
            "rows",
            norm.describe(),
            norm.active,
            int(busiest["endpoints"]),
            int(busiest["raw"]),
            int(busiest["requests"]),
            busiest["day"],
            sum(int(r["requests"]) for r in rows),
        )
    window = (days["as_of"] - days["from_ts"]).total_seconds()
    span = max(60.0, window * SLICE_ROWS / expected)
    day_rows = expected * 86400.0 / max(window, 1.0)  # the window's rate, over a day
    start = days["as_of"] - dt.timedelta(seconds=span)
    row = session.one(
        "health/endpoint_rows",
        {"from_ts": start, "to_ts": days["as_of"]},
        **ids,
        day=sql.SQL("NULL::date"),
        normalized=normalized,
    )
    if row is None:
        return Cardinality("newest rows", norm.describe(), norm.active, 0, 0, 0, None, 0, span)
    read = int(row["requests"])
    endpoints = per_day(int(row["endpoints"]), int(row["endpoints_once"]), read, day_rows)
    raw = per_day(int(row["raw"]), int(row["raw_once"]), read, day_rows)
    return Cardinality(
        "newest rows",
        norm.describe(),
        norm.active,
        endpoints,
        raw,
        round(day_rows),
        None,
        read,
        span,
    )
