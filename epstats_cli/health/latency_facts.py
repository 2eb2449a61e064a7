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


def measure(session: Session) -> LatencyFacts:
    """Every endpoint's p95 over the last check.latency_window (report --source auto)."""
    raise NotImplementedError  # wired to reports once percentiles land
