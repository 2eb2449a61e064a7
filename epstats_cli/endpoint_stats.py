"""What `epstats endpoints` measures of the source's endpoint column: distinct endpoints in a
window and per day, as stored and normalized (epstats_cli.endpoints), and the busiest
normalized endpoints, from every row of the window or a bounded TABLESAMPLE sample of it."""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from epstats_cli import source
from epstats_cli.catalog import plan_rows, source_oid
from epstats_cli.db import Session, consistent
from epstats_cli.endpoints import Normalization, check_rules, expression
from epstats_cli.schema import source_identifiers

# `epstats endpoints` reads every row of a window up to about this many, else a sample.
SAMPLE_ROWS = 100_000


@dataclass(frozen=True)
class Cardinality:
    """Distinct values in the rows read: in the window, and per day (average, most)."""

    distinct: int
    per_day_avg: float | None
    per_day_max: int | None


@dataclass
class EndpointsReport:
    """The endpoint column of a window, raw and normalized, from every row or a sample."""

    from_day: dt.date
    to_day: dt.date
    from_ts: dt.datetime
    to_ts: dt.datetime
    as_of: dt.datetime
    timezone: str
    normalization: Normalization
    configured: bool  # False: normalization is off, and this is what `auto` would make
    estimated_rows: int | None  # the planner's estimate of the window's rows
    sample_percent: float | None  # None: every row of the window was read
    rows: int  # the requests read
    raw: Cardinality
    normalized: Cardinality
    days: list[dict[str, Any]] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)
    planner_distinct: float | None = None  # pg_stats, the whole table
    seconds: float = 0.0

    def document(self) -> dict[str, Any]:
        return {
            "window": {"from": self.from_ts, "to": self.to_ts},
            "as_of": self.as_of,
            "timezone": self.timezone,
            "normalization": {
                **self.normalization.parameters(),
                "configured": self.configured,
            },
            "sample": {
                "sampled": self.sample_percent is not None,
                "method": "TABLESAMPLE SYSTEM" if self.sample_percent is not None else None,
                "percent": self.sample_percent,
                "estimated_rows": self.estimated_rows,
            },
            "rows": self.rows,
            "cardinality": {
                "raw": _cardinality_doc(self.raw),
                "normalized": _cardinality_doc(self.normalized),
            },
            "planner_distinct": self.planner_distinct,
            "days": self.days,
            "endpoints": self.top,
            "query_seconds": round(self.seconds, 6),
        }


def _cardinality_doc(c: Cardinality) -> dict[str, Any]:
    return {"distinct": c.distinct, "per_day_avg": c.per_day_avg, "per_day_max": c.per_day_max}


def _cardinality(days: list[dict[str, Any]], total: int, key: str) -> Cardinality:
    values = [int(d[key]) for d in days]
    avg = sum(values) / len(values) if values else None
    return Cardinality(total, avg, max(values) if values else None)


def sample_percent(estimated_rows: int | None, sample_rows: int) -> float | None:
    """The TABLESAMPLE SYSTEM percentage that reads about `sample_rows` of the window's
    estimated rows; None when reading them all is within that bound."""
    if estimated_rows is None or estimated_rows <= sample_rows:
        return None
    return max(100.0 * sample_rows / estimated_rows, 1e-6)


def measure(
    session: Session,
    days: int | None = None,
    limit: int | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> EndpointsReport:
    """The endpoint column over the last `days` days (reports' window, in source.timezone):
    distinct raw and normalized endpoints, per day, and the busiest normalized endpoints.
    Read-only, one REPEATABLE READ snapshot."""
    config = session.config
    configured = Normalization.of(config)
    norm = configured if configured.active else Normalization("auto", configured.rules)
    check_rules(session, norm)
    columns = source.check_columns(session)
    basis = source.Basis.of(config, columns)
    oid = source_oid(session)

    def read() -> EndpointsReport:
        if not session.per_statement:  # inside read()'s transaction: SET LOCAL holds
            session.run("endpoints/serial")
        win = session.one(
            "reports/window",
            {
                "tz": basis.timezone,
                "days": days or config.reports.days,
                "from_day": None,
                "from_local": None,
                "hours": None,
                "to_local": None,
                "to_day": None,
            },
        )
        assert win is not None
        bounds = {"from_ts": win["from_ts"], "to_ts": win["to_ts"]}
        ids = dict(
            source_identifiers(session),
            from_ts=source.param(session, basis, "from_ts"),
            to_ts=source.param(session, basis, "to_ts"),
        )
        plan = session.value("endpoints/window_rows", bounds, **ids)
        estimated = plan_rows(plan)
        percent = sample_percent(estimated, sample_rows)
        sample = (
            session.statement("fragments/endpoint_sample") if percent is not None else sql.SQL("")
        )
        params = dict(bounds, percent=percent, limit=limit or config.reports.limit)
        reading = dict(
            ids,
            day=source.day(session, basis),
            sample=sample,
            normalized=expression(session, norm, sql.SQL("d.raw")),
        )
        start = time.perf_counter()
        rows = session.all("endpoints/days", params, **reading)
        top = session.all("endpoints/top", params, **reading)
        seconds = time.perf_counter() - start
        per_day = [
            {
                "day": r["day"],
                "requests": int(r["requests"]),
                "raw_endpoints": int(r["raw_endpoints"]),
                "endpoints": int(r["endpoints"]),
            }
            for r in rows
            if r["day"] is not None
        ]
        total = next((r for r in rows if r["day"] is None), None)
        requests = int(total["requests"]) if total else 0
        src = config.source
        distinct = session.value(
            "endpoints/planner_distinct",
            {
                "oid": oid,
                "schema": src.table.schema,
                "table": src.table.name,
                "column": src.columns.endpoint,
            },
        )
        return EndpointsReport(
            from_day=win["from_day"],
            to_day=win["to_day"],
            from_ts=win["from_ts"],
            to_ts=win["to_ts"],
            as_of=win["as_of"],
            timezone=basis.timezone,
            normalization=norm,
            configured=configured.active,
            estimated_rows=estimated,
            sample_percent=percent,
            rows=requests,
            raw=_cardinality(per_day, int(total["raw_endpoints"]) if total else 0, "raw_endpoints"),
            normalized=_cardinality(per_day, int(total["endpoints"]) if total else 0, "endpoints"),
            days=per_day,
            top=[
                {
                    "endpoint": r["endpoint"],
                    "requests": int(r["requests"]),
                    "share": int(r["requests"]) / requests if requests else None,
                    "raw_endpoints": int(r["raw_endpoints"]),
                    "example": r["example"],
                }
                for r in top
            ],
            planner_distinct=None if distinct is None else float(distinct),
            seconds=seconds,
        )

    return consistent(session, read, lambda: None)
