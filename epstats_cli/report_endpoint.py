"""`report endpoint NAME`: one endpoint's days, every day of the window, with totals.

Read as reports.py reads (one REPEATABLE READ, READ ONLY transaction, the same sources). An
endpoint without requests in the window shows its quiet days when it has requests at all
(`_seen`: the rollup, or an index on the endpoint, never a scan of the raw rows); only a name
never seen is an error, naming the closest names.

With normalization on, a name that normalization changes (`/users/48213`) is reported under
what it becomes (`/users/{id}`), saying so: the reading's normalization decides (the rollup's
for view and auto), as it named the rows. A name it leaves alone is reported as given.

Every day and the totals carry percentiles (reports.with_percentiles): each day's from its own
response times, the totals' from the whole window's (the statements' row whose day is NULL).
"""

from __future__ import annotations

import datetime as dt
import difflib
import time
from collections.abc import Iterable
from typing import Any

from epstats_cli import latency, replica
from epstats_cli.db import Session, consistent
from epstats_cli.endpoints import normalize
from epstats_cli.errors import OperationFailed
from epstats_cli.report_window import Window, served, window
from epstats_cli.reports import (
    STATUS_CLASSES,
    Reading,
    Report,
    as_of_and_snapshot,
    finish_report,
    params_for,
    placeholders,
    reading,
    told,
    with_percentiles,
    without_mix,
)

# The statement behind each source, by literal name (so every file's use can be found).
ENDPOINT = {
    "view": "reports/endpoint_view",
    "raw": "reports/endpoint_raw",
    "auto": "reports/endpoint_auto",
}


def endpoint_days(
    session: Session,
    name: str,
    *,
    days: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    source: str = "auto",
    hours: int | None = None,
    percentiles: tuple[float, ...] = (),
) -> Report:
    """One endpoint's days with totals, every day of the window (a quiet day with 0
    requests), also when it has none in the window but some outside it; OperationFailed (with
    close names) for an endpoint that has no requests at all. The report's `endpoint` is the
    one reported, `requested` the name as given. Days and totals carry p50_ms, p95_ms, p99_ms
    and a key for each of `percentiles`."""
    wanted = latency.percentiles(percentiles)

    def read() -> Report:
        where = replica.measure(session)  # first: the snapshot the report reads
        r = reading(session, source)
        endpoint = normalize(session, r.norm, [name])[0] if r.norm.active else name
        if endpoint != name:
            r.notes.insert(0, f"{name} is counted under {endpoint} (endpoint normalization)")
        win = window(session, days, since, until, r.basis.timezone, hours=hours)
        served(r.used, win)
        assert win.parts is not None
        params = params_for(session, r, win, wanted, endpoint=endpoint, **win.parts.params(r.used))
        ids = placeholders(session, r)
        start = time.perf_counter()
        read_rows = with_percentiles(r, session.all(ENDPOINT[r.used], params, **ids), wanted)
        seconds = time.perf_counter() - start
        raw_rows = [x for x in read_rows if x["day"] is not None and x["requests"]]
        keys = [latency.percentile_key(p) for p in wanted]
        whole = next((x for x in read_rows if x["day"] is None), {})
        if not raw_rows:
            seen = _seen(session, r, endpoint, win, params, ids)
            what = repr(endpoint) + ("" if endpoint == name else f" ({name} normalized)")
            if seen is False:
                every = dict(params, from_day=win.from_day)  # the window's days, not the rollup's
                names = [x for x in _names(session, r.used, every, ids) if x != endpoint]
                close = difflib.get_close_matches(endpoint, names, n=3, cutoff=0.5)
                hint = f"; closest: {', '.join(close)}" if close else ""
                raise OperationFailed(f"no requests for endpoint {what} at all{hint}")
            if seen is None:
                r.notes.append(
                    f"no requests for {what} in this window; whether it has any outside it "
                    "was not checked (that needs the rollup or an index on the endpoint)"
                )
        days_read = _every_day(raw_rows, win.from_day, win.to_day, keys)
        rows = [_finish(x, keys) for x in without_mix(r, days_read)]
        total = {
            "requests": sum(x["requests"] for x in raw_rows),
            "total_ms": sum((x["total_ms"] or 0.0) for x in raw_rows),
            "responses": sum(x["responses"] for x in raw_rows),
            "min_ms": min((x["min_ms"] for x in raw_rows if x["min_ms"] is not None), default=None),
            "max_ms": max((x["max_ms"] for x in raw_rows if x["max_ms"] is not None), default=None),
            "errors": sum(x["errors"] for x in raw_rows),
            **{c: _sum(x[c] for x in rows) for c in STATUS_CLASSES},
            **{k: whole.get(k) for k in keys},
        }
        totals = _finish(dict(total, day=None), keys)
        totals.pop("day")
        report = Report(r.used, win, rows, seconds, totals=totals)
        report.endpoint, report.requested = endpoint, name
        return told(finish_report(session, report, r, params, ids), where)

    return consistent(session, read, lambda: as_of_and_snapshot(session))


def _every_day(
    rows: list[dict[str, Any]], first: dt.date, last: dt.date, keys: list[str]
) -> list[dict[str, Any]]:
    """The statement's rows (only days with requests) with a quiet row for every other day of
    the window: the window's days are calendar dates in its time zone, so date arithmetic
    walks them exactly, a 23- or 25-hour day being one date like any other."""
    found = {row["day"]: row for row in rows}
    days = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
    quiet = {"requests": 0, "total_ms": None, "responses": 0, "min_ms": None, "max_ms": None}
    quiet |= dict.fromkeys(STATUS_CLASSES, 0) | dict.fromkeys(keys)
    return [found.get(day) or dict(quiet, day=day, errors=0) for day in sorted({*days, *found})]


def _sum(values: Iterable[int | None]) -> int | None:
    """The total of a status class (None when a day has none: a rollup without the mix)."""
    got = list(values)
    return None if any(v is None for v in got) else sum(v for v in got if v is not None)


def _finish(r: dict[str, Any], keys: list[str]) -> dict[str, Any]:
    """Per-day row in the report's shape: weighted average, error rate, the percentiles."""
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
        **{k: r[k] for k in keys},
        **{c: None if r[c] is None else int(r[c]) for c in STATUS_CLASSES},
    }


def _seen(
    session: Session,
    r: Reading,
    name: str,
    win: Window,
    params: dict[str, Any],
    ids: dict[str, Any],
) -> bool | None:
    """Whether an endpoint without requests in the window has any at all, read without a scan
    of the raw rows: from the rollup (any day) and the raw rows it has not aggregated (a range
    of the timestamp index), then from the raw rows when an index leads with the endpoint.
    None when neither can answer (no readable rollup, no such index)."""
    probe = r if r.used != "raw" else reading(session, "auto")
    if probe.info is not None:
        found = session.value(
            "reports/endpoint_seen_view",
            params_for(session, probe, win, endpoint=name),
            **placeholders(session, probe),
        )
        if found:
            return True
    if r.norm.active:  # an index on the raw endpoint cannot find a normalized one
        return False if probe.info is not None else None
    table = session.config.source.table
    indexed = session.value(
        "reports/endpoint_indexed",
        {
            "schema": table.schema,
            "name": table.name,
            "column": session.config.source.columns.endpoint,
        },
    )
    if indexed:
        return bool(session.value("reports/endpoint_seen_raw", params, **ids))
    return False if probe.info is not None else None


def _names(session: Session, used: str, params: dict[str, Any], ids: dict[str, Any]) -> list[str]:
    name = "reports/endpoint_names_raw" if used == "raw" else "reports/endpoint_names_view"
    rows = session.all(name, params, **ids)
    return [str(next(iter(r.values()))) for r in rows]
