"""An independent rollup: the raw rows aggregated in Python, days from zoneinfo."""

from __future__ import annotations

import datetime as dt
import math
import zoneinfo
from dataclasses import dataclass
from typing import Any

import psycopg


@dataclass
class Agg:
    requests: int = 0
    errors: int = 0
    responses: int = 0
    total: float = 0.0
    min: float | None = None
    max: float | None = None

    def add(self, rt: float | None, status: int | None, error_min: int = 500) -> None:
        self.requests += 1
        if status is not None and status >= error_min:
            self.errors += 1
        if rt is not None:
            self.responses += 1
            self.total = math.fsum([self.total, rt])
            self.min = rt if self.min is None else min(self.min, rt)
            self.max = rt if self.max is None else max(self.max, rt)


def raw_rollup(
    conn: psycopg.Connection[Any],
    tz: str,
    table: str = "requests",
    until: dt.datetime | None = None,
) -> dict[tuple[str, dt.date], Agg]:
    zone = zoneinfo.ZoneInfo(tz)
    out: dict[tuple[str, dt.date], Agg] = {}
    rows = conn.execute(
        f"SELECT endpoint, timestamp, response_time, status FROM {table}"
    ).fetchall()
    for endpoint, ts, rt, status in rows:
        if until is not None and ts > until:
            continue
        key = (endpoint, ts.astimezone(zone).date())
        out.setdefault(key, Agg()).add(rt, status)
    return out


def close(a: float | None, b: float | None, rel: float = 1e-9) -> bool:
    if a is None or b is None:
        return a is b
    return abs(a - b) <= rel * max(abs(a), abs(b), 1e-300)


def compare_view(conn: psycopg.Connection[Any], view: str, expected: dict[Any, Agg]) -> list[str]:
    """Every difference between the rollup's data rows and the oracle, as readable lines (and
    a line unless the rollup has exactly one bookkeeping row, with an as-of and a snapshot)."""
    rows = conn.execute(
        "SELECT endpoint, day, request_count, error_count, min_response_time, max_response_time, "
        f"total_response_time, response_count, avg_response_time FROM {view} "
        "WHERE endpoint IS NOT NULL"
    ).fetchall()
    marks = conn.execute(
        f"SELECT as_of IS NOT NULL AND snapshot IS NOT NULL FROM {view} WHERE endpoint IS NULL"
    ).fetchall()
    problems = [] if marks == [(True,)] else [f"bookkeeping rows: {marks}"]
    seen = set()
    for ep, day, count, errors, mn, mx, total, responses, avg in rows:
        key = (ep, day)
        seen.add(key)
        e = expected.get(key)
        if e is None:
            problems.append(f"{key}: in view only")
            continue
        if (count, errors, responses, mn, mx) != (e.requests, e.errors, e.responses, e.min, e.max):
            problems.append(
                f"{key}: {(count, errors, responses, mn, mx)} != "
                f"{(e.requests, e.errors, e.responses, e.min, e.max)}"
            )
        if not close(total, e.total if e.responses else None):
            problems.append(f"{key}: total {total} != {e.total}")
        if e.responses and not close(avg, e.total / e.responses):
            problems.append(f"{key}: avg {avg} != {e.total / e.responses}")
    problems += [f"{k}: missing from view" for k in set(expected) - seen]
    return problems


# Reports' rows, computed in Python: the figures of an Agg, --sort/--asc/--min-requests, and
# --compare's previous window and changes.

SORT_KEYS = {
    "requests": ("requests",),
    "avg": ("avg_ms",),
    "max": ("max_ms",),
    "errors": ("errors",),
    "error_rate": ("error_rate", "errors"),
}


def figures(a: Agg | None) -> dict[str, Any]:
    """A report row's figures for the rows aggregated in `a` (all None: no rows)."""
    if a is None:
        return dict.fromkeys(("requests", "avg_ms", "min_ms", "max_ms", "errors", "error_rate"))
    return {
        "requests": a.requests,
        "avg_ms": a.total / a.responses if a.responses else None,
        "min_ms": a.min,
        "max_ms": a.max,
        "errors": a.errors,
        "error_rate": a.errors / a.requests if a.requests else None,
    }


def same_figures(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """Counts and extremes equal, averages and rates within float rounding."""
    exact = ("requests", "errors", "min_ms", "max_ms")
    return all(got[k] == want[k] for k in exact) and all(
        close(got[k], want[k]) for k in ("avg_ms", "error_rate")
    )


def ranked(
    per_endpoint: dict[str, Agg],
    sort: str,
    ascending: bool = False,
    min_requests: int | None = None,
    limit: int | None = None,
) -> list[str]:
    """The endpoints `report top` lists, in order: the sort's figures (nulls last either way),
    then the name (names of lowercase ASCII letters after a slash: one order in every
    collation)."""
    rows = {e: figures(a) for e, a in per_endpoint.items()}
    if min_requests:
        rows = {e: f for e, f in rows.items() if f["requests"] >= min_requests}

    def key(endpoint: str) -> tuple[Any, ...]:
        out: list[Any] = []
        for figure in SORT_KEYS[sort]:
            value = rows[endpoint][figure]
            out += [value is None, 0 if value is None else (value if ascending else -value)]
        return (*out, endpoint)

    return sorted(rows, key=key)[:limit]


def shifted(instant: dt.datetime, days: int, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """`instant` moved back `days` days on the local calendar of `zone`, keeping its local
    time of day (resolved as PostgreSQL resolves a wall-clock time)."""
    wall = instant.astimezone(zone).replace(tzinfo=None) - dt.timedelta(days=days)
    return pg_instant(wall, zone)


def pg_instant(naive: dt.datetime, zone: zoneinfo.ZoneInfo) -> dt.datetime:
    """A wall-clock time in `zone` as PostgreSQL reads it: a repeated (ambiguous) time as
    standard time, the later offset; a skipped time with the offset before the change."""
    first, second = naive.replace(tzinfo=zone, fold=0), naive.replace(tzinfo=zone, fold=1)
    if first.utcoffset() == second.utcoffset():
        return first
    round_trip = first.astimezone(dt.timezone.utc).astimezone(zone).replace(tzinfo=None)
    return second if round_trip == naive else first


def change(now: dict[str, Any], before: dict[str, Any]) -> dict[str, Any]:
    """--compare's change: ratios for requests, the average and the maximum, the difference
    for errors, points for the error rate."""

    def ratio(key: str) -> float | None:
        a, b = now[key], before[key]
        return None if a is None or b is None or b == 0 else a / b

    def difference(key: str, scale: float = 1) -> float | None:
        a, b = now[key], before[key]
        return None if a is None or b is None else (a - b) * scale

    return {
        "requests": ratio("requests"),
        "avg_ms": ratio("avg_ms"),
        "max_ms": ratio("max_ms"),
        "errors": difference("errors"),
        "error_rate": difference("error_rate", 100),
    }


def ranked_by_change(
    now: dict[str, Agg],
    before: dict[str, Agg],
    sort: str,
    ascending: bool = False,
    min_requests: int | None = None,
    limit: int | None = None,
) -> list[str]:
    """The endpoints `report top --compare` lists, in order: every endpoint of the current
    window (with at least min_requests there) and, without min_requests, those seen only in
    the previous one; by the change of the sort's first figure, biggest increase first
    (ascending: biggest decrease first), endpoints without that change last, ties by name."""
    names = {e for e, a in now.items() if not min_requests or a.requests >= min_requests}
    if not min_requests:
        names |= set(before)
    figure = SORT_KEYS[sort][0]

    def key(endpoint: str) -> tuple[Any, ...]:
        value = change(figures(now.get(endpoint)), figures(before.get(endpoint)))[figure]
        if value is None:
            return (True, 0.0, endpoint)
        return (False, value if ascending else -value, endpoint)

    return sorted(names, key=key)[:limit]
