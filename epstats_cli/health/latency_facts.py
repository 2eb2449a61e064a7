"""What `check latency_p95` judges: each endpoint's p95 over the last check.latency_window,
read as `report top --source auto` reads it (the rollup's whole days and their latency
histograms, plus the raw rows of partial days and those the rollup has not aggregated).

Endpoints are those check.latency_p95 names (SQL LIKE patterns); the report reads them all
at once, and the judge (row_judges.latency_p95) applies the first rule each matches.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

from epstats_cli import reports
from epstats_cli.db import Session


@dataclass(frozen=True)
class EndpointLatency:
    endpoint: str
    p95_ms: float | None  # None: no response time in the window
    requests: int


@dataclass(frozen=True)
class LatencyFacts:
    window: dt.timedelta
    source: str  # what the report read: auto (rollup and raw rows) or raw
    endpoints: tuple[EndpointLatency, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)


def like(pattern: str, text: str) -> bool:
    """Whether `text` is LIKE `pattern` as PostgreSQL reads it (% any run, _ one character,
    backslash escapes the next character; case-sensitive)."""
    out = []
    chars = iter(pattern)
    for ch in chars:
        if ch == "\\":
            out.append(re.escape(next(chars, "\\")))
        elif ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.fullmatch("".join(out), text, flags=re.DOTALL) is not None


# Endpoints read at most (the report's LIMIT): far more than any API has that is worth judging.
MAX_ENDPOINTS = 100_000


def measure(session: Session) -> LatencyFacts:
    """Every endpoint's p95 over the last check.latency_window, read as `report top --source
    auto` reads it; from the raw rows alone (exact) when the rollup has no latency histograms
    (an earlier epstats built it) and the window reaches into its days."""
    window = session.config.check.latency_window
    hours = window.total_seconds() / 3600

    def read(source: str) -> reports.Report:
        return reports.top(session, hours=hours, limit=MAX_ENDPOINTS, source=source)

    report = read("auto")
    notes = tuple(report.notes)
    if report.source != "raw" and any("no latency histograms" in n for n in notes):
        report = read("raw")
        notes = (*notes, "read from the raw rows (the rollup has no latency histograms)")
    rows = tuple(
        EndpointLatency(
            str(row["endpoint"]),
            None if row["p95_ms"] is None else float(row["p95_ms"]),
            int(row["requests"]),
        )
        for row in report.rows
    )
    return LatencyFacts(window, report.source, rows, notes)
