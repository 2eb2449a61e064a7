"""Top-N endpoints and one endpoint's days, from the rollup, the raw rows, or both at once.

Read-only: only SELECTs, so reports work on a hot standby and with a SELECT-only role.
"""

from __future__ import annotations

import datetime as dt
import difflib
import time
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql
from psycopg.rows import dict_row

from epstats_cli import queries
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed
from epstats_cli.schema import rollup_identifiers

SORTS = {
    "requests": "requests DESC, endpoint",
    "avg": "avg_ms DESC NULLS LAST, endpoint",
    "max": "max_ms DESC NULLS LAST, endpoint",
    "errors": "errors DESC, endpoint",
    "error_rate": "error_rate DESC NULLS LAST, errors DESC, endpoint",
}
SOURCES = ("auto", "view", "raw")
ROLLUP_COLUMNS = {"total_response_time", "response_count", "max_timestamp", "day"}


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
    watermark: dt.datetime | None = None
    newer_rows: int | None = None
    notes: list[str] = field(default_factory=list)
    totals: dict[str, Any] | None = None

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
        doc["query_seconds"] = round(self.seconds, 6)
        doc["notes"] = self.notes
        return doc


def _v(session: Session) -> int:
    return session.server.version_num


def _ids(session: Session) -> dict[str, Any]:
    return rollup_identifiers(session)


def window(
    session: Session, days: int | None, since: dt.date | None, until: dt.date | None
) -> Window:
    if since is not None and until is not None and until < since:
        raise OperationFailed(f"--until {until} is before --since {since}")
    cur = session.conn.cursor(row_factory=dict_row)
    row = cur.execute(
        queries.get("reports/window", _v(session)),
        {
            "tz": session.config.source.timezone,
            "days": days or session.config.reports.days,
            "from_day": since,
            "to_day": until,
        },
    ).fetchone()
    assert row is not None
    return Window(**row)


def rollup_usable(session: Session) -> tuple[bool, str]:
    """Whether the rollup exists with the columns reports need (catalog only: read-only safe)."""
    name = session.config.view_name
    cur = session.conn.cursor(row_factory=dict_row)
    rows = cur.execute(
        queries.get("view/info", _v(session)), {"schema": name.schema, "name": name.name}
    ).fetchall()
    if not rows:
        return False, f"no rollup {name} (epstats view build creates it)"
    row = rows[0]
    if row["relkind"] == "m" and not row["populated"]:
        return False, f"the rollup {name} is not populated yet (epstats view refresh)"
    have = {c.partition(" ")[0] for c in row["columns"]}
    missing = ROLLUP_COLUMNS - have
    if missing:
        return False, (
            f"the rollup {name} lacks {', '.join(sorted(missing))} (epstats view build --replace)"
        )
    return True, ""


def _dicts(session: Session, query: sql.Composed, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = session.conn.cursor(row_factory=dict_row)
    return cur.execute(query, params).fetchall()


def _choose(session: Session, source: str) -> tuple[str, list[str]]:
    if source == "raw":
        return "raw", []
    usable, why = rollup_usable(session)
    if usable:
        return source, []
    if source == "view":
        raise OperationFailed(f"--source view: {why}; use --source raw or auto")
    return "raw", [f"{why}: reporting from the raw rows"]


def _freshness(session: Session, win: Window) -> tuple[dt.datetime | None, int]:
    rows = _dicts(
        session,
        queries.get("reports/freshness", _v(session), **_ids(session)),
        {"from_ts": win.from_ts, "to_ts": win.to_ts},
    )
    return rows[0]["watermark"], int(rows[0]["newer_rows"])


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
    """The top-N endpoints of a window."""
    win = window(session, days, since, until)
    used, notes = _choose(session, source)
    params = {
        "from_day": win.from_day,
        "to_day": win.to_day,
        "from_ts": win.from_ts,
        "to_ts": win.to_ts,
        "pattern": pattern,
        "limit": limit or session.config.reports.limit,
        "error_min": session.config.source.error_status_min,
    }
    query = queries.get(
        f"reports/top_{used}", _v(session), order=sql.SQL(SORTS[sort]), **_ids(session)
    )
    start = time.perf_counter()
    rows = _dicts(session, query, params)
    seconds = time.perf_counter() - start
    report = Report(used, win, rows, seconds, notes=notes)
    if used in ("view", "auto"):
        report.watermark, report.newer_rows = _freshness(session, win)
    return report


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
    win = window(session, days, since, until)
    used, notes = _choose(session, source)
    from epstats_cli.view import day_expression

    ts_type = _timestamp_type(session)
    ids = dict(_ids(session), day=day_expression(session, ts_type))
    params = {
        "endpoint": name,
        "from_day": win.from_day,
        "to_day": win.to_day,
        "from_ts": win.from_ts,
        "to_ts": win.to_ts,
        "error_min": session.config.source.error_status_min,
    }
    start = time.perf_counter()
    raw_rows = _dicts(session, queries.get(f"reports/endpoint_{used}", _v(session), **ids), params)
    seconds = time.perf_counter() - start
    if not raw_rows:
        names = _names(session, used, win)
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise OperationFailed(
            f"no requests for endpoint {name!r} from {win.from_day} to {win.to_day}{hint}"
        )
    rows = [_finish(r) for r in raw_rows]
    total = {
        "requests": sum(r["requests"] for r in raw_rows),
        "total_ms": sum((r["total_ms"] or 0.0) for r in raw_rows),
        "responses": sum(r["responses"] for r in raw_rows),
        "min_ms": min((r["min_ms"] for r in raw_rows if r["min_ms"] is not None), default=None),
        "max_ms": max((r["max_ms"] for r in raw_rows if r["max_ms"] is not None), default=None),
        "errors": sum(r["errors"] for r in raw_rows),
    }
    totals = _finish(dict(total, day=None))
    totals.pop("day")
    report = Report(used, win, rows, seconds, notes=notes, totals=totals)
    if used in ("view", "auto"):
        report.watermark, report.newer_rows = _freshness(session, win)
    return report


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


def _timestamp_type(session: Session) -> str:
    from epstats_cli.catalog import source_oid
    from epstats_cli.view import timestamp_type

    return timestamp_type(session, source_oid(session))


def _names(session: Session, used: str, win: Window) -> list[str]:
    name = "reports/endpoint_names_raw" if used == "raw" else "reports/endpoint_names_view"
    rows = session.conn.execute(
        queries.get(name, _v(session), **_ids(session)),
        {"from_day": win.from_day, "from_ts": win.from_ts, "to_ts": win.to_ts},
    ).fetchall()
    return [str(r[0]) for r in rows]
