"""A report's window and the one `report top --compare` compares it with, computed by the
server in the zone of the report's days (exact across DST changes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed, UsageLine


@dataclass
class Window:
    """A report's window: its first and last local days, the instants it spans (from_ts
    included, to_ts excluded) and the server's now() it was computed at."""

    from_day: dt.date
    to_day: dt.date
    from_ts: dt.datetime
    to_ts: dt.datetime
    as_of: dt.datetime


@dataclass
class Previous:
    """The window --compare compares with, and how it is read: `whole_to_day` is the last day
    the rollup serves (the day before `window.to_day` when that day is cut at a time of day,
    which is then read from the raw rows)."""

    window: Window
    in_progress: bool  # the current window ends at now(): compared up to the same time of day

    @property
    def tail_day(self) -> dt.date | None:
        return self.window.to_day if self.in_progress else None

    @property
    def whole_to_day(self) -> dt.date:
        return self.window.to_day - dt.timedelta(days=1 if self.in_progress else 0)


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


def previous_window(session: Session, current: Window, timezone: str) -> Previous:
    """The window --compare compares with: `current` moved back by its number of local days,
    computed by the server (previous_window.sql)."""
    row = session.one(
        "reports/previous_window",
        {
            "tz": timezone,
            "from_day": current.from_day,
            "to_day": current.to_day,
            "from_ts": current.from_ts,
            "to_ts": current.to_ts,
        },
    )
    assert row is not None
    in_progress = bool(row.pop("in_progress"))
    return Previous(Window(**row, as_of=current.as_of), in_progress)


def whole_days(source: str, since: dt.date | None) -> str:
    """The rollup holds whole days: a window that starts at a time of day reads the raw rows
    (auto), and --source view cannot serve it (an option conflict: UsageLine)."""
    if not isinstance(since, dt.datetime):
        return source
    if source == "view":
        raise UsageLine(
            "--source view holds whole days: a --since with a time of day needs "
            "--source raw (or auto, which then reads the raw rows)"
        )
    return "raw"
