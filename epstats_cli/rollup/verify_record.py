"""What a run of the `verify` task records in epstats.runs, and reading it back: pure.

The summary is one line a person reads in the run history (`reason`), and the facts the next
run and `check`'s late_rows need are read back from it with the patterns beside the code that
writes them:

    checked 58 of 58 days (2026-09-10 .. 2026-09-28, 2026-08-02 .. 2026-09-09), last checked
    2026-09-09: repaired 2026-08-20 (+3,000 rows), 2026-08-21 (+12 rows); 3,012 rows arrived
    up to 40d 5h late: view.lookback 2d is too short for this API
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from epstats_cli.durations import format_duration, human_seconds

_LAST = re.compile(r"last checked (\d{4}-\d{2}-\d{2})")
_LATE = re.compile(r"([\d,]+) rows? arrived up to ([0-9dhms ]+?) late")
UNREPAIRED = "could not repair"


@dataclass(frozen=True)
class DayRepair:
    """One day that differed: how many more raw rows than the rollup counted it had (negative:
    fewer), in how many endpoints, and whether its repair succeeded."""

    day: dt.date
    rows: int
    endpoints: int
    repaired: bool = True
    error: str | None = None
    failure: str | None = None  # a failed repair's kind (history.LOCK_BUSY, ...), as recorded


@dataclass
class Outcome:
    """One run: the days it checked (in order), of how many, the days that differed."""

    checked: list[dt.date]
    total: int
    stopped: bool = False  # max_runtime ended it before every day was checked
    repairs: list[DayRepair] = field(default_factory=list)
    late_by_seconds: float | None = None  # how late the latest late rows were, at most
    lookback: dt.timedelta = dt.timedelta(days=2)

    @property
    def late_rows(self) -> int:
        """Rows the rollup lacked in days before the lookback window: they arrived late."""
        return sum(r.rows for r in self.repairs if r.rows > 0)

    @property
    def failed(self) -> list[DayRepair]:
        return [r for r in self.repairs if not r.repaired]


def ranges(days: Sequence[dt.date]) -> str:
    """Consecutive days as `first .. last` ranges, in the order given."""
    parts: list[list[dt.date]] = []
    for day in days:
        if parts and day == parts[-1][-1] + dt.timedelta(days=1):
            parts[-1].append(day)
        else:
            parts.append([day])
    return ", ".join(
        p[0].isoformat() if len(p) == 1 else f"{p[0].isoformat()} .. {p[-1].isoformat()}"
        for p in parts
    )


def _rows(n: int) -> str:
    return f"{n:+,} row" + ("" if abs(n) == 1 else "s")


def summary(outcome: Outcome) -> str:
    """The line the run history keeps (see the module docstring)."""
    o = outcome
    if not o.total:
        return "nothing to compare yet: no day before the lookback window has raw rows"
    if not o.checked:
        return f"checked 0 of {o.total} days"
    text = (
        f"checked {len(o.checked)} of {o.total} days ({ranges(o.checked)}), "
        f"last checked {o.checked[-1].isoformat()}"
    )
    if o.stopped:
        text += ", stopped by max_runtime"
    done = [r for r in o.repairs if r.repaired]
    outcome_parts = []
    if done:
        outcome_parts.append(
            "repaired " + ", ".join(f"{r.day.isoformat()} ({_rows(r.rows)})" for r in done)
        )
    if o.failed:
        outcome_parts.append(
            f"{UNREPAIRED} "
            + ", ".join(f"{r.day.isoformat()} ({_rows(r.rows)}): {r.error}" for r in o.failed)
        )
    if o.late_rows:
        late = o.late_rows
        up_to = human_seconds(o.late_by_seconds or 0)
        outcome_parts.append(
            f"{late:,} row{'' if late == 1 else 's'} arrived up to {up_to} late: "
            f"view.lookback {format_duration(o.lookback)} is too short for this API"
        )
    return f"{text}: " + ("; ".join(outcome_parts) if outcome_parts else "no differences")


@dataclass(frozen=True)
class Recorded:
    """What a recorded summary says, read back."""

    last_checked: dt.date | None
    late_rows: int
    late_by: str | None  # as written: "40d 5h"
    unrepaired: bool


def read(reason: str | None) -> Recorded:
    """The facts in a recorded summary (nothing for any other text)."""
    text = reason or ""
    last = _LAST.search(text)
    late = _LATE.search(text)
    return Recorded(
        dt.date.fromisoformat(last.group(1)) if last else None,
        int(late.group(1).replace(",", "")) if late else 0,
        late.group(2) if late else None,
        UNREPAIRED in text,
    )


def order(days: Sequence[dt.date], last_checked: dt.date | None) -> list[dt.date]:
    """The days in the order to check them, oldest check first: those after the one the last
    run checked last (never checked since it reached them), then from the first day on."""
    if last_checked is None:
        return list(days)
    return [d for d in days if d > last_checked] + [d for d in days if d <= last_checked]
