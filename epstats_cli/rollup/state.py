"""Statements on epstats.rollup_state, the rollup's bookkeeping, for the steps that change it.

The row is written in the transaction that built or refreshed the rollup: that transaction's
start (`now()`) and duration come from the server, so the statement is known at plan time.
It is also epstats's mark on the rollup (rollup/inspect reads it): the relation's oid and the
parameters it was built with, so the rollup's COMMENT is left to its users.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from psycopg.types.json import Jsonb

from epstats_cli.config import QualifiedName
from epstats_cli.db import Session
from epstats_cli.execute import Statement
from epstats_cli.rollup import days


def put(
    session: Session,
    view: QualifiedName,
    strategy: str,
    now: dt.datetime,
    parameters: dict[str, Any] | None,
    retired_through: dt.date | None = None,
) -> Statement:
    """Record a build or refresh of `view` (the relation there now, built with `parameters`);
    settled_through (incremental only) from `now`; the retention horizon `retired_through`
    (a build --replace carries the old rollup's; None keeps the recorded one)."""
    cfg = session.config
    settled = None
    if strategy == "incremental":
        settled = days.settled_through(now, cfg.view.lookback, cfg.source.timezone)
    return Statement(
        session.statement("view/state_put", view=(view.schema, view.name)),
        {
            "view": str(view),
            "strategy": strategy,
            "timezone": cfg.source.timezone,
            "lookback": cfg.view.lookback,
            "settled_through": settled,
            "schema": view.schema,
            "name": view.name,
            "parameters": None if parameters is None else Jsonb(parameters),
            "retired_through": retired_through,
        },
    )


def move(session: Session, old: QualifiedName, new: QualifiedName) -> Statement:
    """The row of a relation renamed to `new` (replacing the row of the one dropped there)."""
    return Statement(
        session.statement("view/state_rename"), {"from_view": str(old), "view": str(new)}
    )


def delete(session: Session, view: QualifiedName) -> Statement:
    return Statement(session.statement("view/state_delete"), {"view": str(view)})


def retire(session: Session, view: QualifiedName, through: dt.date) -> Statement:
    """Record the retention horizon: days up to `through` are the rollup's alone from now on
    (it never moves earlier)."""
    return Statement(
        session.statement("view/state_retire"), {"view": str(view), "through": through}
    )
