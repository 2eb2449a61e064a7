"""The judges of when raw rows are dated: `future_rows` (rows dated ahead of the server's
clock). Pure, like judges.py, beside which they sit to keep it short."""

from __future__ import annotations

import datetime as dt

from epstats_cli.config import Levels
from epstats_cli.durations import human_seconds
from epstats_cli.health.judges import CheckResult, State, Thresholds, level
from epstats_cli.source import FutureRows


def _when(instant: dt.datetime) -> str:
    return instant.isoformat(sep=" ", timespec="seconds")


def future_rows(rows: FutureRows, t: Thresholds, now: dt.datetime) -> CheckResult:
    """How far ahead of the server's now() the newest row is dated (clock skew, bad data)."""
    levels = t.check.future_rows
    warn, crit = levels.warning.total_seconds(), levels.critical.total_seconds()
    if rows.count == 0 or rows.latest is None:
        return CheckResult(
            "future_rows", State.OK, "no row is dated after the server's clock", 0, warn, crit
        )
    ahead = max(0.0, rows.ahead_seconds or 0.0)
    plural = "row is" if rows.count == 1 else "rows are"
    return CheckResult(
        "future_rows",
        level(ahead, Levels(warn, crit)),
        f"{rows.count:,} {plural} dated in the future, up to {_when(rows.latest)} "
        f"({human_seconds(ahead)} ahead of the server's clock: no report counts them yet)",
        round(ahead),
        warn,
        crit,
    )
