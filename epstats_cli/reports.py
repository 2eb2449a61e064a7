"""Top-N endpoints and one endpoint's days, from the rollup, the raw rows, or both at once.

Read-only: only SELECTs in one REPEATABLE READ, READ ONLY transaction, so reports work on a
hot standby and with a SELECT-only role, and the rollup, its as-of and the raw rows it has not
aggregated are read from one snapshot. view and auto read with the parameters the rollup was
built with (its time zone and error threshold), raw with the configuration's.

`top(compare=True)` reads the previous window (previous_window.sql: the current one moved back
by its number of days) with the same statement, source and snapshot as the current one, and
gives each row its figures there and the change.
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
from epstats_cli.endpoints import Normalization, only_view_normalizes
from epstats_cli.errors import OperationFailed
from epstats_cli.report_window import Previous, Window, previous_window, whole_days, window
from epstats_cli.schema import rollup_identifiers

__all__ = [  # window and Window stay here for their readers (view verify's window)
    "CHANGES",
    "FIGURES",
    "SORTS",
    "Previous",
    "Report",
    "Window",
    "endpoint_days",
    "order_by",
    "previous_window",
    "rollup_usable",
    "top",
    "window",
]

# The figures of a top row, in order (a new column is one more name here and in the SQL).
FIGURES = ("requests", "avg_ms", "min_ms", "max_ms", "errors", "error_rate")

# --sort: the figures it orders by, first to last (ties: the endpoint's name).
SORTS: dict[str, tuple[str, ...]] = {
    "requests": ("requests",),
    "avg": ("avg_ms",),
    "max": ("max_ms",),
    "errors": ("errors",),
    "error_rate": ("error_rate", "errors"),
}

# --compare: how each figure's change is stated: "ratio" (current / previous) or "points"
# (current - previous, in percentage points, for a rate).
CHANGES: dict[str, str] = {"requests": "ratio", "avg_ms": "ratio", "error_rate": "points"}

# The statement behind each source, by literal name (so every file's use can be found).
TOP = {"view": "reports/top_view", "raw": "reports/top_raw", "auto": "reports/top_auto"}
ENDPOINT = {
    "view": "reports/endpoint_view",
    "raw": "reports/endpoint_raw",
    "auto": "reports/endpoint_auto",
}


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
    previous: Previous | None = None  # --compare's window

    def document(self, source_label: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "source": source_label,
            "window": {"from": self.window.from_ts, "to": self.window.to_ts},
            "as_of": self.window.as_of,
        }
        if self.previous is not None:
            before = self.previous.window
            doc["previous_window"] = {"from": before.from_ts, "to": before.to_ts}
        doc["rows"] = self.rows
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


def _as_of(session: Session) -> object:
    """The rollup's as-of and snapshot (None without a readable rollup): what a refresh moves."""
    try:
        return session.one("view/as_of", **rollup_identifiers(session))
    except psycopg.Error:
        return None


def _reading(session: Session, wanted: str) -> _Reading:
    only_view_normalizes(wanted, Normalization.of(session.config))  # issue 18, phase 2a
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
    if info.parameters is not None:  # issue 18, phase 2a: what the rollup normalized
        only_view_normalizes(wanted, Normalization.recorded(info.parameters))
    unknown = [f"{info.mark_unreadable}; read with the configuration's"] if info.unknown else []
    return _Reading(wanted, basis, columns, info, unknown)


def _placeholders(session: Session, r: _Reading, **more: Any) -> dict[str, Any]:
    return dict(
        rollup_identifiers(session),
        day=source.day(session, r.basis),
        from_ts=source.param(session, r.basis, "from_ts"),
        to_ts=source.param(session, r.basis, "to_ts"),
        unaggregated=source.unaggregated(session, r.basis),
        since=source.since(session, r.basis, "tail_day"),  # top_auto's raw last day
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


def order_by(sort: str, ascending: bool = False) -> sql.Composable:
    """ORDER BY for --sort (and --asc): the sort's figures, nulls last either way, then the
    endpoint's name."""
    direction = sql.SQL("ASC" if ascending else "DESC")
    keys = [
        sql.SQL("{} {} NULLS LAST").format(sql.Identifier(key), direction) for key in SORTS[sort]
    ]
    return sql.SQL(", ").join([*keys, sql.Identifier("endpoint")])


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
    min_requests: int | None = None,
    ascending: bool = False,
    compare: bool = False,
) -> Report:
    """The top-N endpoints of a window (one REPEATABLE READ transaction); with `compare`, each
    row also carries its figures in the previous window and the change."""

    def read() -> Report:
        r = _reading(session, whole_days(source, since))
        win = window(session, days, since, until, r.basis.timezone)
        before = previous_window(session, win, r.basis.timezone) if compare else None
        if before is not None and before.in_progress and r.used == "view":
            raise OperationFailed(
                "--source view holds whole days: --compare of a window that ends now compares "
                "it with the same hours of the previous one, whose last day only the raw rows "
                "can cut; use --source auto (or raw), or past days (--since DATE --until DATE)"
            )
        count = limit or session.config.reports.limit
        params = _params(
            session,
            r,
            win,
            pattern=pattern,
            limit=count,
            min_requests=min_requests or None,
            only=None,
            exclude=None,
            tail_day=None,
        )
        ids = _placeholders(session, r, order=order_by(sort, ascending))
        start = time.perf_counter()
        rows = session.all(TOP[r.used], params, **ids)
        if before is not None:
            rows = _compared(session, r, rows, before, params, ids, count)
        seconds = time.perf_counter() - start
        report = Report(r.used, win, rows, seconds, previous=before)
        return _finish_report(session, report, r, params, ids)

    return consistent(session, read, lambda: _as_of(session))


def _compared(
    session: Session,
    r: _Reading,
    rows: list[dict[str, Any]],
    before: Previous,
    params: dict[str, Any],
    ids: dict[str, Any],
    count: int,
) -> list[dict[str, Any]]:
    """The current rows with their figures in the previous window and the change, then (while
    the limit leaves room and no --min-requests excludes them) the endpoints seen only in the
    previous window, in the same order of their previous figures. The previous window is read
    by the same statement as the current one: the rollup's days (the last one from the raw rows
    when it is cut at a time of day) and, for auto, the raw rows the rollup has not aggregated."""
    prev = before.window
    shown = [row["endpoint"] for row in rows]
    then = dict(
        params,
        from_day=prev.from_day,
        to_day=before.whole_to_day,
        from_ts=prev.from_ts,
        to_ts=prev.to_ts,
        tail_day=before.tail_day if r.used == "auto" else None,
        min_requests=None,
        limit=None,
    )
    found = {
        x["endpoint"]: x
        for x in (session.all(TOP[r.used], dict(then, only=shown), **ids) if shown else [])
    }
    out = [_with_previous(row, found.get(row["endpoint"])) for row in rows]
    if len(rows) < count and params["min_requests"] is None:
        # every endpoint of the current window is among `rows`: the rest were not seen in it
        gone = session.all(TOP[r.used], dict(then, exclude=shown, limit=count - len(rows)), **ids)
        out += [
            _with_previous({"endpoint": x["endpoint"]} | dict.fromkeys(FIGURES), x) for x in gone
        ]
    return out


def _with_previous(row: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """A row with `previous` (its figures in the previous window, all None when it was not
    seen there) and `change` (CHANGES' figures; None where either side has none)."""
    then = {key: previous[key] if previous else None for key in FIGURES}
    change: dict[str, float | None] = {}
    for key, how in CHANGES.items():
        now, old = row[key], then[key]
        if now is None or old is None:
            change[key] = None
        elif how == "points":
            change[key] = (float(now) - float(old)) * 100
        else:
            change[key] = float(now) / float(old) if old else None
    return dict(row, previous=then, change=change)


def endpoint_days(
    session: Session,
    name: str,
    *,
    days: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    source: str = "auto",
) -> Report:
    """One endpoint's days with totals, every day of the window (a quiet day with 0
    requests); OperationFailed (with close names) when it has none in the window."""

    def read() -> Report:
        r = _reading(session, whole_days(source, since))
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
        rows = [_finish(row) for row in _every_day(raw_rows, win.from_day, win.to_day)]
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


def _every_day(rows: list[dict[str, Any]], first: dt.date, last: dt.date) -> list[dict[str, Any]]:
    """The statement's rows (only days with requests) with a quiet row for every other day of
    the window: the window's days are calendar dates in its time zone, so date arithmetic
    walks them exactly, a 23- or 25-hour day being one date like any other."""
    found = {row["day"]: row for row in rows}
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    quiet = {"requests": 0, "total_ms": None, "responses": 0, "min_ms": None, "max_ms": None}
    return [found.get(day) or dict(quiet, day=day, errors=0) for day in sorted({*days, *found})]


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
