"""Which days an incremental refresh recomputes: pure functions of the clock and the config."""

from __future__ import annotations

import datetime as dt
import zoneinfo

from epstats_cli.durations import format_duration


def _local_day(instant: dt.datetime, tz: str) -> dt.date:
    return instant.astimezone(zoneinfo.ZoneInfo(tz)).date()


def first_day_to_recompute(
    now: dt.datetime,
    last_refresh: dt.datetime | None,
    lookback: dt.timedelta,
    tz: str,
    since: dt.date | None = None,
    full: bool = False,
) -> tuple[dt.date | None, str]:
    """The first day (in `tz`) an incremental refresh recomputes, None for every day, and why.

    Rows land at most `lookback` late, so every day that can have changed since the last
    refresh starts at (the earlier of now and the last refresh) minus lookback: a refresh that
    did not run for a week catches up on the whole week. The lookback is elapsed time (2d
    across a DST change is 48 hours), whatever zone `now` is expressed in. A backfill
    (`since`) never skips the days a routine refresh would recompute; `full` wins over both.
    """
    if full:
        return None, "all days"
    routine = None
    if last_refresh is not None:
        start = min(now, last_refresh).astimezone(dt.timezone.utc)
        routine = _local_day(start - lookback, tz)
    if since is not None:
        first = since if routine is None else min(since, routine)
        return first, f"days from {first.isoformat()} (--since)"
    if routine is None:
        return None, "all days (no earlier refresh recorded)"
    return routine, f"days from {routine.isoformat()} (lookback {format_duration(lookback)})"


def settled_through(now: dt.datetime, lookback: dt.timedelta, tz: str) -> dt.date:
    """The last day a routine refresh after `now` no longer recomputes (the day before its
    lookback window)."""
    first, _why = first_day_to_recompute(now, now, lookback, tz)
    assert first is not None
    return first - dt.timedelta(days=1)
