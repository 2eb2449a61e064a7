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
