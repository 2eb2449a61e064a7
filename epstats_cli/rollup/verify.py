"""`view verify`: the rollup compared with a from-scratch aggregation of the raw rows."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed
from epstats_cli.rollup.aggregate import day_expression, definition, since_filter, timestamp_type
from epstats_cli.rollup.inspect import facts
from epstats_cli.schema import source_identifiers


@dataclass
class Verification:
    from_day: dt.date
    to_day: dt.date
    watermark: dt.datetime | None
    differences: list[dict[str, Any]]
    pending_rows: int


def verify(session: Session, from_day: dt.date, to_day: dt.date) -> Verification:
    """Compare the rollup with the raw rows, day by day, for [from_day, to_day]."""
    name = session.config.view_name
    info = facts(session, name, state=False)
    if not info.exists:
        raise OperationFailed(f"{name} does not exist: build it with `epstats view build`")
    missing_cols = [x for x in info.lacks if x.startswith("column ")]
    if missing_cols:
        raise OperationFailed(f"{name} cannot be verified: it lacks {', '.join(missing_cols)}")
    if not info.populated:
        raise OperationFailed(f"{name} is not populated yet: run `epstats view refresh`")
    ts_type = timestamp_type(session)
    where = session.statement(
        "fragments/verify_window",
        since=since_filter(session, ts_type),
        day=day_expression(session, ts_type),
        timestamp=session.config.source.columns.timestamp,
    )
    params = {"from_day": from_day, "to_day": to_day, "watermark": info.watermark}
    diffs = session.all(
        "view/verify",
        params,
        view=(name.schema, name.name),
        definition=definition(session, ts_type, where),
    )
    pending = 0
    if info.watermark is not None:
        count = session.value(
            "view/pending_rows", {"watermark": info.watermark}, **source_identifiers(session)
        )
        pending = int(count or 0)
    return Verification(from_day, to_day, info.watermark, diffs, pending)
