"""Top-N endpoints and one endpoint's days, from the rollup, the raw rows, or both at once.

Read-only: only SELECTs in one REPEATABLE READ, READ ONLY transaction, so reports work on a
hot standby and with a SELECT-only role, and the rollup, its as-of and the raw rows it has not
aggregated are read from one snapshot. view and auto read with the parameters the rollup was
built with (its time zone and error threshold), raw with the configuration's.
"""

from __future__ import annotations

import datetime as dt
import difflib
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import rollup, source
from epstats_cli.db import Session, consistent
from epstats_cli.errors import OperationFailed
from epstats_cli.schema import rollup_identifiers

SORTS = {
    "requests": "requests DESC, endpoint",
    "avg": "avg_ms DESC NULLS LAST, endpoint",
    "max": "max_ms DESC NULLS LAST, endpoint",
    "errors": "errors DESC, endpoint",
    "error_rate": "error_rate DESC NULLS LAST, errors DESC, endpoint",
}

# The statement behind each source, by literal name (so every file's use can be found).
TOP = {"view": "reports/top_view", "raw": "reports/top_raw", "auto": "reports/top_auto"}
ENDPOINT = {
    "view": "reports/endpoint_view",
    "raw": "reports/endpoint_raw",
    "auto": "reports/endpoint_auto",
}


@dataclass
class Window:
    from_day: dt.date
    to_day: dt.date
    from_ts: dt.datetime
    to_ts: dt.datetime
    as_of: dt.datetime


@dataclass
class Report:
    source: str  # what was actually used: view | raw | auto
    window: Window
    rows: list[dict[str, Any]]
    seconds: float
    timezone: str = "UTC"  # the zone of the window's days
    watermark: dt.datetime | None = None  # the rollup's as-of: complete through this instant
    newer_rows: int | None = None  # raw rows of the window the rollup has not aggregated
    notes: list[str] = field(default_factory=list)
    totals: dict[str, Any] | None = None
    future_rows: tuple[int, dt.datetime | None] = (0, None)
    rollup_parameters: dict[str, Any] | None = None  # what the rollup was built with (used)
    configured_otherwise: list[str] = field(default_factory=list)  # "name built (configured)"

    def document(self, source_label: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "source": source_label,
            "window": {"from": self.window.from_ts, "to": self.window.to_ts},
            "as_of": self.window.as_of,
            "rows": self.rows,
        }
        if self.totals is not None:
            doc["totals"] = self.totals
        doc["watermark"] = self.watermark
        if self.newer_rows is not None:
            doc["rows_newer_than_watermark"] = self.newer_rows
        count, latest = self.future_rows
        doc["future_rows"] = {"count": count, "latest": latest}
        doc["rollup_parameters"] = self.rollup_parameters
        doc["query_seconds"] = round(self.seconds, 6)
        doc["notes"] = self.notes
        return doc


def window(
    session: Session,
    days: int | None,
    since: dt.date | None,
    until: dt.date | None,
    timezone: str | None = None,
) -> Window:
    """The window in `timezone` (default source.timezone): local midnight of its first day (or
    --since's local time of day) to the server's now() (or the end of --until's day), computed
    by the server."""
    start = since if isinstance(since, dt.datetime) else None
    first = since.date() if isinstance(since, dt.datetime) else since
    if first is not None and until is not None and until < first:
        raise OperationFailed(f"--until {until} is before --since {first}")
    row = session.one(
        "reports/window",
        {
            "tz": timezone or session.config.source.timezone,
            "days": days or session.config.reports.days,
            "from_day": first,
            "from_local": start,
            "to_day": until,
        },
    )
    assert row is not None
    return Window(**row)


def rollup_usable(session: Session) -> tuple[bool, str]:
    """Whether the rollup exists with the columns reports need (catalog only: read-only safe)."""
    why = rollup.facts(session, contents=False, state=False).unreadable()
    return why is None, why or ""


@dataclass
class _Reading:
    """What a report reads: the source used, its basis (the rollup's own parameters for view
    and auto), the rollup's facts, and notes for the footer."""

    used: str
    basis: source.Basis
    columns: source.SourceColumns
    info: rollup.RollupFacts | None = None
    notes: list[str] = field(default_factory=list)


def _whole_days(source: str, since: dt.date | None) -> str:
    """The rollup holds whole days: a window that starts at a time of day reads the raw rows
    (auto), and --source view cannot serve it."""
    if not isinstance(since, dt.datetime):
        return source
    if source == "view":
        raise OperationFailed(
            "--source view holds whole days: a --since with a time of day needs "
            "--source raw (or auto, which then reads the raw rows)"
        )
    return "raw"


def _as_of(session: Session) -> object:
    """The rollup's as-of and snapshot (None without a readable rollup): what a refresh moves."""
    try:
        return session.one("view/as_of", **rollup_identifiers(session))
    except psycopg.Error:
        return None


def _reading(session: Session, wanted: str) -> _Reading:
    columns = source.check_columns(session)
    configured = source.Basis.of(session.config, columns)
    if wanted == "raw":
        return _Reading("raw", configured, columns)
    info = rollup.facts(session, contents=False, state=False)
    why = info.unreadable()
    if why is not None:
        if wanted == "view":
            raise OperationFailed(f"--source view: {why}; use --source raw or auto")
        return _Reading("raw", configured, columns, notes=[f"{why}: reporting from the raw rows"])
    basis = configured
    if info.parameters is not None:
        basis = source.Basis.recorded(info.parameters, session.config, columns)
    unknown = [f"{info.mark_unreadable}; read with the configuration's"] if info.unknown else []
    return _Reading(wanted, basis, columns, info, unknown)


def _placeholders(session: Session, r: _Reading, **more: Any) -> dict[str, Any]:
    return dict(
        rollup_identifiers(session),
        day=source.day(session, r.basis),
        from_ts=source.param(session, r.basis, "from_ts"),
        to_ts=source.param(session, r.basis, "to_ts"),
        unaggregated=source.unaggregated(session, r.basis),
        **more,
    )


def _params(session: Session, r: _Reading, win: Window, **more: Any) -> dict[str, Any]:
    info = r.info
    return {
        "from_day": win.from_day,
        "to_day": win.to_day,
        "from_ts": win.from_ts,
        "to_ts": win.to_ts,
        "error_min": r.basis.error_status_min,
        "as_of": info.as_of if info else None,
        "snapshot": info.snapshot if info else None,
        "commit_delay": session.config.view.commit_delay,
        **more,
    }


def _finish_report(
    session: Session, report: Report, r: _Reading, params: dict[str, Any], ids: dict[str, Any]
) -> Report:
    """The footer's facts: future rows, and for view/auto the rollup's as-of, the rows it has
    not aggregated and the parameters it was built with."""
    report.timezone = r.basis.timezone
    report.notes += r.notes
    report.future_rows = source.future_rows(session, r.columns, r.basis)
    if r.info is not None:
        report.watermark = r.info.as_of
        report.newer_rows = int(session.value("reports/freshness", params, **ids) or 0)
        report.rollup_parameters = r.info.parameters
        report.configured_otherwise = [
            f"{name} {built} (configured {configured})"
            for _key, name, built, configured in rollup.differences(r.info, session.config)
        ]
    return report


def top(
    session: Session,
    *,
    days: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    limit: int | None = None,
    sort: str = "requests",
    pattern: str | None = None,
    source: str = "auto",
) -> Report:
    """The top-N endpoints of a window (one REPEATABLE READ transaction)."""

    def read() -> Report:
        r = _reading(session, _whole_days(source, since))
        win = window(session, days, since, until, r.basis.timezone)
        params = _params(
            session, r, win, pattern=pattern, limit=limit or session.config.reports.limit
        )
        ids = _placeholders(session, r, order=sql.SQL(SORTS[sort]))
        start = time.perf_counter()
        rows = session.all(TOP[r.used], params, **ids)
        seconds = time.perf_counter() - start
        return _finish_report(session, Report(r.used, win, rows, seconds), r, params, ids)

    return consistent(session, read, lambda: _as_of(session))


def endpoint_days(
    session: Session,
    name: str,
    *,
    days: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    source: str = "auto",
) -> Report:
    """One endpoint's days with totals; OperationFailed (with close names) when it has none."""

    def read() -> Report:
        r = _reading(session, _whole_days(source, since))
        win = window(session, days, since, until, r.basis.timezone)
        params = _params(session, r, win, endpoint=name)
        ids = _placeholders(session, r)
        start = time.perf_counter()
        raw_rows = session.all(ENDPOINT[r.used], params, **ids)
        seconds = time.perf_counter() - start
        if not raw_rows:
            names = _names(session, r.used, params, ids)
            close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
            hint = f"; closest: {', '.join(close)}" if close else ""
            raise OperationFailed(
                f"no requests for endpoint {name!r} from {win.from_day} to {win.to_day}{hint}"
            )
        rows = [_finish(row) for row in raw_rows]
        total = {
            "requests": sum(x["requests"] for x in raw_rows),
            "total_ms": sum((x["total_ms"] or 0.0) for x in raw_rows),
            "responses": sum(x["responses"] for x in raw_rows),
            "min_ms": min((x["min_ms"] for x in raw_rows if x["min_ms"] is not None), default=None),
            "max_ms": max((x["max_ms"] for x in raw_rows if x["max_ms"] is not None), default=None),
            "errors": sum(x["errors"] for x in raw_rows),
        }
        totals = _finish(dict(total, day=None))
        totals.pop("day")
        report = Report(r.used, win, rows, seconds, totals=totals)
        return _finish_report(session, report, r, params, ids)

    return consistent(session, read, lambda: _as_of(session))


def _finish(r: dict[str, Any]) -> dict[str, Any]:
    """Per-day row in the report's shape: weighted average, error rate."""
    responses = int(r["responses"] or 0)
    requests = int(r["requests"])
    return {
        "day": r["day"],
        "requests": requests,
        "avg_ms": (float(r["total_ms"]) / responses) if responses else None,
        "min_ms": r["min_ms"],
        "max_ms": r["max_ms"],
        "errors": int(r["errors"]),
        "error_rate": int(r["errors"]) / requests if requests else None,
    }


def _names(session: Session, used: str, params: dict[str, Any], ids: dict[str, Any]) -> list[str]:
    name = "reports/endpoint_names_raw" if used == "raw" else "reports/endpoint_names_view"
    rows = session.all(name, params, **ids)
    return [str(next(iter(r.values()))) for r in rows]
