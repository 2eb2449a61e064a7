"""A report's window, how `auto` reads it (whole local days from the rollup, the partial days
at its ends from the raw rows: `Parts`), and the one `report top --compare` compares it with,
all computed by the server in the zone of the report's days (exact across DST changes)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed, UsageLine

DAY = dt.timedelta(days=1)


@dataclass(frozen=True)
class Parts:
    """How a window is read by `auto`: its head (from_ts to head_to) and its tail (tail_from
    to to_ts), the partial days at its ends, from the raw rows (None: no such part), and the
    whole local days first_day..last_day between them from the rollup (none when first_day >
    last_day: a window inside one day reads only raw rows). A window that ends at now() has
    no tail: today is read as --days reads it (the rollup plus the rows it has not
    aggregated)."""

    from_ts: dt.datetime
    to_ts: dt.datetime
    head_to: dt.datetime | None
    tail_from: dt.datetime | None
    first_day: dt.date
    last_day: dt.date

    @property
    def partial(self) -> bool:
        """Whether the window does not cover whole days (the rollup alone cannot serve it)."""
        return self.head_to is not None or self.tail_from is not None

    def params(self, used: str) -> dict[str, Any]:
        """The statement parameters of the rollup's days (from_day, to_day) and of the raw
        partial days (head_to, tail_from: source.partial_days) for the source used (raw reads
        the whole window from the raw rows; view never has partial days, see `served`)."""
        if used == "raw":
            return {"head_to": None, "tail_from": None}
        return {
            "from_day": self.first_day,
            "to_day": self.last_day,
            "head_to": self.head_to,
            "tail_from": self.tail_from,
        }

    def described(self, used: str) -> list[dict[str, Any]]:
        """The parts, in time order, as JSON shows them: {"source": "raw"|"view", "from",
        "to"}, the rollup's with its "first_day" and "last_day"."""
        if used == "raw":
            return [{"source": "raw", "from": self.from_ts, "to": self.to_ts}]
        parts: list[dict[str, Any]] = []
        if self.head_to is not None:
            parts.append({"source": "raw", "from": self.from_ts, "to": self.head_to})
        if self.first_day <= self.last_day:
            view = {"source": "view", "from": self.head_to or self.from_ts}
            view["to"] = self.tail_from or self.to_ts
            parts.append(view | {"first_day": self.first_day, "last_day": self.last_day})
        if self.tail_from is not None:
            parts.append({"source": "raw", "from": self.tail_from, "to": self.to_ts})
        return parts


@dataclass
class Window:
    """A report's window: its first and last local days, the instants it spans (from_ts
    included, to_ts excluded), the server's now() it was computed at, whether --compare
    moves it back by its length (--hours, --until with a time) and how auto reads it."""

    from_day: dt.date
    to_day: dt.date
    from_ts: dt.datetime
    to_ts: dt.datetime
    as_of: dt.datetime
    by_length: bool = False
    parts: Parts | None = field(default=None, repr=False)


@dataclass
class Previous:
    """The window --compare compares with (its `parts` say how auto reads it)."""

    window: Window
    in_progress: bool  # the current window ends at now(): compared up to the same time of day


def window(
    session: Session,
    days: int | None,
    since: dt.date | None,
    until: dt.date | None,
    timezone: str | None = None,
    *,
    hours: float | None = None,
) -> Window:
    """The window in `timezone` (default source.timezone), computed by the server: local
    midnight of its first day, --since's local time of day, or now() less `hours`, to the
    server's now(), the end of --until's day or --until's local time (a datetime)."""
    tz = timezone or session.config.source.timezone
    start = since if isinstance(since, dt.datetime) else None
    first = since.date() if isinstance(since, dt.datetime) else since
    end = until if isinstance(until, dt.datetime) else None
    last = until.date() if isinstance(until, dt.datetime) else until
    if since is not None and until is not None:
        begins = start or dt.datetime.combine(first or since, dt.time())
        ends = end or dt.datetime.combine(until, dt.time()) + DAY
        if ends <= begins:
            raise OperationFailed(f"--until {until} is not after --since {since}")
    row = session.one(
        "reports/window",
        {
            "tz": tz,
            "days": days or session.config.reports.days,
            "hours": hours,
            "from_day": first,
            "from_local": start,
            "to_day": last,
            "to_local": end,
        },
    )
    assert row is not None
    if row["to_ts"] <= row["from_ts"]:  # local times an hour a DST change skips resolves
        why = (
            "--since is after now"
            if until is None
            else "a local time in the hour a DST change skips is read as the hour after it; "
            "give an --until after --since"
        )
        raise UsageLine(
            f"the window would be empty: it starts {_local(row['from_ts'], tz)} and ends "
            f"{_local(row['to_ts'], tz)} ({tz}): {why}"
        )
    win = Window(**row, by_length=hours is not None or end is not None)
    win.parts = parts(session, win, tz)
    return win


def _local(instant: dt.datetime, tz: str) -> str:
    """`2026-03-29 03:30 CEST`: an instant in the window's zone."""
    from zoneinfo import ZoneInfo

    return f"{instant.astimezone(ZoneInfo(tz)):%Y-%m-%d %H:%M %Z}"


def parts(session: Session, win: Window, timezone: str) -> Parts:
    """How auto reads `win` (window_parts.sql, by the server in `timezone`)."""
    row = session.one(
        "reports/window_parts",
        {"tz": timezone, "from_ts": win.from_ts, "to_ts": win.to_ts, "as_of": win.as_of},
    )
    assert row is not None
    head_to, tail_from = row["head_to"], row["tail_from"]
    return Parts(
        win.from_ts,
        win.to_ts,
        head_to,
        tail_from,
        win.from_day + DAY * (head_to is not None),
        win.to_day - DAY * (tail_from is not None),
    )


def previous_window(session: Session, current: Window, timezone: str) -> Previous:
    """The window --compare compares with: `current` moved back by its number of local days,
    or by its length when `current.by_length`, computed by the server (previous_window.sql)."""
    row = session.one(
        "reports/previous_window",
        {
            "tz": timezone,
            "from_day": current.from_day,
            "to_day": current.to_day,
            "from_ts": current.from_ts,
            "to_ts": current.to_ts,
            "by_length": current.by_length,
        },
    )
    assert row is not None
    in_progress = bool(row.pop("in_progress"))
    before = Window(**row, as_of=current.as_of, by_length=current.by_length)
    before.parts = parts(session, before, timezone)
    return Previous(before, in_progress)


def served(used: str, win: Window, previous: Previous | None = None) -> None:
    """The rollup holds whole days: --source view cannot serve a window (or a previous
    window) that starts or ends at a time of day (an option conflict: UsageLine, exit 2)."""
    if used != "view":
        return
    if win.parts is not None and win.parts.partial:
        raise UsageLine(
            "--source view holds whole days: a window that starts or ends at a time of day "
            "(--hours, or --since/--until with a time) needs --source auto (the rollup's whole "
            "days plus the raw rows of the partial ones) or raw"
        )
    if previous is not None and previous.window.parts and previous.window.parts.partial:
        raise UsageLine(
            "--compare --source view: a window that ends now is compared with the same "
            "hours of the previous one, which the rollup's whole days cannot cut; use "
            "--source auto (or raw), or a window of past days (--since DATE --until DATE)"
        )
