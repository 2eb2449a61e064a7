"""`view verify`: the rollup compared with a from-scratch aggregation of the raw rows.

`comparison` is the one statement that compares a range of days; `view verify` runs it over
its window, and the `verify` maintenance task (rollup/sweep.py) day by day.

A row rewritten since the refresh (an UPDATE, or pg_repack's copy) has a new xmin its snapshot
could not see: dated within view.commit_delay before the as-of, it looks like a late INSERT
the rollup lacks. `view verify` tells those endpoint-days apart (`rewritten`): the rollup
equals every raw row dated up to its as-of there, whatever its xmin, so it is right, and only
`--source auto` counts those rows twice until the next refresh.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from epstats_cli import source
from epstats_cli.db import Session, consistent
from epstats_cli.endpoints import Normalization
from epstats_cli.errors import OperationFailed
from epstats_cli.execute import Statement
from epstats_cli.rollup.aggregate import aggregate
from epstats_cli.rollup.inspect import facts, require_parameters
from epstats_cli.schema import rollup_identifiers, source_identifiers


@dataclass
class Verification:
    from_day: dt.date
    to_day: dt.date
    as_of: dt.datetime | None
    differences: list[dict[str, Any]]
    pending_rows: int
    # endpoint-days that differ only by rows rewritten since the refresh (not rollup errors)
    rewritten: list[dict[str, Any]] = field(default_factory=list)
    # the retention horizon: days up to it are the rollup's alone, never compared (from_day
    # is after it)
    retention_horizon: dt.date | None = None


def verify(session: Session, from_day: dt.date, to_day: dt.date) -> Verification:
    """Compare the rollup with the raw rows it aggregated, day by day, for [from_day, to_day]:
    those dated up to its as-of and seen by its refresh's snapshot. ConfigError when it was
    built with other parameters than the configuration's (a refresh cannot fix that). Days up to
    the retention horizon are not compared (their raw rows are retired)."""
    # its as-of and its rows from one snapshot
    return consistent(
        session,
        lambda: _verify(session, from_day, to_day),
        lambda: session.one("view/as_of", **rollup_identifiers(session)),
    )


def window(session: Session, basis: source.Basis) -> sql.Composed:
    """The condition on the raw rows the rollup aggregated for the days %(from_day)s to
    %(to_day)s (given %(as_of)s, %(snapshot)s and %(commit_delay)s): a timestamp range."""
    return session.statement(
        "fragments/verify_window",
        since=source.since(session, basis),
        before=source.before_next_day(session, basis),
        day=source.day(session, basis),
        timestamp=session.config.source.columns.timestamp,
        as_of=source.param(session, basis, "as_of"),
        unaggregated=source.unaggregated(session, basis),
    )


def _any_xmin(session: Session, basis: source.Basis) -> sql.Composed:
    """`window` without the snapshot: every raw row dated up to %(as_of)s."""
    return session.statement(
        "fragments/verify_window_rewritten",
        since=source.since(session, basis),
        before=source.before_next_day(session, basis),
        day=source.day(session, basis),
        timestamp=session.config.source.columns.timestamp,
        as_of=source.param(session, basis, "as_of"),
    )


def window_params(
    session: Session, from_day: dt.date, to_day: dt.date, as_of: Any, snapshot: Any
) -> dict[str, Any]:
    """The parameters of `window` (and of `comparison`)."""
    return {
        "from_day": from_day,
        "to_day": to_day,
        "as_of": as_of,
        "snapshot": snapshot,
        "commit_delay": session.config.view.commit_delay,
    }


def comparison(
    session: Session,
    basis: source.Basis,
    from_day: dt.date,
    to_day: dt.date,
    as_of: Any,
    snapshot: Any,
    *,
    any_xmin: bool = False,
    histograms: bool = True,
) -> Statement:
    """The statement listing every endpoint-day of [from_day, to_day] where the rollup differs
    from the raw rows it aggregated (as of `as_of`, seen by `snapshot`); with `any_xmin`, from
    every raw row dated up to `as_of`, seen by the snapshot or not. Its latency histograms are
    compared too (every bucket and count, exactly), unless it has none (`histograms` False:
    built before them)."""
    name = session.config.view_name
    where = _any_xmin(session, basis) if any_xmin else window(session, basis)
    view = sql.Identifier(name.schema, name.name)
    stored = view if histograms else session.statement("fragments/verify_no_latency", view=view)
    query = session.statement(
        "view/verify",
        stored=stored,
        definition=aggregate(session, basis, where, Normalization.of(session.config)),
    )
    params = window_params(session, from_day, to_day, as_of, snapshot)
    return Statement(query, {**params, "histograms": histograms})


def differences(session: Session, statement: Statement) -> list[dict[str, Any]]:
    """Run a comparison: the endpoint-days that differ, each saying whether its latency
    histogram does (`histogram_differs`; None when the rollup has none)."""
    with session.conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(statement.query, statement.params).fetchall()
    compared = bool((statement.params or {}).get("histograms"))
    for r in rows:
        r["histogram_differs"] = (
            (r["view_latency_buckets"], r["view_latency_counts"])
            != (r["raw_latency_buckets"], r["raw_latency_counts"])
            if compared
            else None
        )
    return rows


def _verify(session: Session, from_day: dt.date, to_day: dt.date) -> Verification:
    name = session.config.view_name
    columns = source.check_columns(session)
    info = facts(session, name, state=False, contents=False)
    if not info.exists:
        raise OperationFailed(f"{name} does not exist: build it with `epstats view build`")
    missing_cols = [x for x in info.lacks if x.startswith("column ")]
    if missing_cols:
        raise OperationFailed(f"{name} cannot be verified: it lacks {', '.join(missing_cols)}")
    if not info.populated:
        raise OperationFailed(f"{name} is not populated yet: run `epstats view refresh`")
    require_parameters(info, session.config)
    why = info.unreadable()
    if why is not None:
        raise OperationFailed(f"{name} cannot be verified: {why}")
    basis = source.Basis.of(session.config, columns)
    hist = info.histograms
    horizon = info.retired_through
    if horizon is not None and from_day <= horizon:  # retired: nothing left to compare with
        from_day = horizon + dt.timedelta(days=1)
    statement = comparison(
        session, basis, from_day, to_day, info.as_of, info.snapshot, histograms=hist
    )
    diffs = differences(session, statement)
    rewritten: list[dict[str, Any]] = []
    if diffs:  # the days that differ, again with every row dated up to the as-of
        days = [d["day"] for d in diffs]
        again = comparison(
            session,
            basis,
            min(days),
            max(days),
            info.as_of,
            info.snapshot,
            any_xmin=True,
            histograms=hist,
        )
        still = {(d["endpoint"], d["day"]) for d in differences(session, again)}
        rewritten = [d for d in diffs if (d["endpoint"], d["day"]) not in still]
        diffs = [d for d in diffs if (d["endpoint"], d["day"]) in still]
    count = session.value(
        "view/pending_rows",
        statement.params,
        **source_identifiers(session),
        unaggregated=source.unaggregated(session, basis),
        now=source.bound(session, basis, source.NOW),
    )
    return Verification(
        from_day, to_day, info.as_of, diffs, int(count or 0), rewritten, info.retired_through
    )
