"""How far behind the raw rows the rollup is, for `check`'s view_staleness and `status`: the
oldest raw row it has not aggregated, and that row's age by the server's clock.

"Not aggregated" is what reports add to the rollup (source.unaggregated: dated after its
as-of, or shortly before it by a transaction its refresh could not see), on the parameters it
was built with, so a naive timestamp column is read in the zone it was built for. The query
is bounded by the timestamp index (from the as-of less view.commit_delay to now()); rows dated
after now() are in no window and are `future_rows`' business.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import psycopg

from epstats_cli import source
from epstats_cli.db import Session, consistent
from epstats_cli.rollup.inspect import facts
from epstats_cli.schema import rollup_identifiers, source_identifiers


@dataclass(frozen=True)
class Pending:
    """Whether reports can use the rollup and, if so, the oldest raw row it lacks."""

    why: str | None  # why reports cannot use the rollup (None: they can)
    oldest: dt.datetime | None = None  # None: it holds every row dated up to now
    age_seconds: float | None = None  # now() - oldest, by the server


def pending(session: Session) -> Pending:
    """The rollup's readability and its oldest unaggregated row, read in one snapshot;
    ConfigError (exit 3) when a source column has a type epstats cannot read."""

    def read() -> Pending:
        columns = source.check_columns(session)  # before anything reads the source
        info = facts(session, contents=False, state=False)
        why = info.unreadable()
        if why is not None:
            return Pending(why)
        basis = source.Basis.of(session.config, columns)
        if info.parameters is not None:
            basis = source.Basis.recorded(info.parameters, session.config, columns)
        row = session.one(
            "catalog/oldest_unaggregated",
            {
                "as_of": info.as_of,
                "snapshot": info.snapshot,
                "commit_delay": session.config.view.commit_delay,
            },
            **source_identifiers(session),
            instant=source.instant(session, basis),
            unaggregated=source.unaggregated(session, basis),
            now=source.bound(session, basis, source.NOW),
        )
        assert row is not None
        return Pending(None, row["oldest"], row["age_seconds"])

    return consistent(session, read, lambda: _as_of(session))


def _as_of(session: Session) -> object:
    """What a refresh moves (None without a readable rollup)."""
    try:
        return session.one("view/as_of", **rollup_identifiers(session))
    except psycopg.Error:
        return None
