"""Which days an incremental refresh recomputes: the pure function, without a database."""

from __future__ import annotations

import datetime as dt
import zoneinfo

import pytest

from epstats_cli.rollup.days import first_day_to_recompute, settled_through

UTC = dt.timezone.utc
NY = "America/New_York"
TOKYO = "Asia/Tokyo"
H = dt.timedelta(hours=1)
D = dt.timedelta(days=1)


def at(year: int, month: int, day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=UTC)


NOW = at(2026, 11, 27, 12, 0)

# fmt: off
CASES = [
    # (now, last refresh, lookback, zone, --since, --full) -> (first day, reason)
    pytest.param(
        NOW, NOW - 5 * H / 60, 2 * D, "UTC", None, False,
        dt.date(2026, 11, 25), "days from 2026-11-25 (lookback 2d)",
        id="routine",
    ),
    pytest.param(
        NOW, NOW - 7 * D, 2 * D, "UTC", None, False,
        dt.date(2026, 11, 18), "days from 2026-11-18 (lookback 2d)",
        id="a week without refresh is caught up",
    ),
    pytest.param(
        NOW, NOW + H, 2 * D, "UTC", None, False,
        dt.date(2026, 11, 25), "days from 2026-11-25 (lookback 2d)",
        id="a refresh recorded in the future counts from now",
    ),
    pytest.param(
        NOW, None, 2 * D, "UTC", None, False,
        None, "all days (no earlier refresh recorded)",
        id="never refreshed",
    ),
    pytest.param(
        NOW, NOW - H, 2 * D, "UTC", None, True,
        None, "all days",
        id="full",
    ),
    pytest.param(
        NOW, None, 2 * D, "UTC", dt.date(2026, 11, 26), True,
        None, "all days",
        id="full wins over since",
    ),
    pytest.param(
        NOW, NOW - H, 2 * D, "UTC", dt.date(2026, 10, 1), False,
        dt.date(2026, 10, 1), "days from 2026-10-01 (--since)",
        id="since earlier than the routine day",
    ),
    pytest.param(
        NOW, NOW - H, 2 * D, "UTC", dt.date(2026, 11, 27), False,
        dt.date(2026, 11, 25), "days from 2026-11-25 (--since)",
        id="since later than the routine day keeps the lookback",
    ),
    pytest.param(
        NOW, None, 2 * D, "UTC", dt.date(2026, 11, 27), False,
        dt.date(2026, 11, 27), "days from 2026-11-27 (--since)",
        id="since, never refreshed",
    ),
    # 03:00 UTC on the 27th is 22:00 on the 26th in New York: two days back is the 24th there
    pytest.param(
        at(2026, 11, 27, 3, 0), at(2026, 11, 27, 3, 0), 2 * D, NY, None, False,
        dt.date(2026, 11, 24), "days from 2026-11-24 (lookback 2d)",
        id="lookback in another zone",
    ),
    # 08:00 UTC is 03:00 in New York; six hours back crosses its midnight (not UTC's)
    pytest.param(
        at(2026, 11, 27, 8, 0), at(2026, 11, 27, 8, 0), 6 * H, NY, None, False,
        dt.date(2026, 11, 26), "days from 2026-11-26 (lookback 6h)",
        id="lookback crossing midnight in New York only",
    ),
    # 16:00 UTC is 01:00 on the 28th in Tokyo; two hours back is 23:00 on the 27th there
    pytest.param(
        at(2026, 11, 27, 16, 0), at(2026, 11, 27, 16, 0), 2 * H, TOKYO, None, False,
        dt.date(2026, 11, 27), "days from 2026-11-27 (lookback 2h)",
        id="lookback crossing midnight in Tokyo only",
    ),
    # DST ends in New York on 2026-11-01 (02:00 EDT -> 01:00 EST). 2d before 23:30 EST on the
    # 2nd is 48 hours earlier: 00:30 EDT on the 1st (wall-clock arithmetic would say the 31st).
    pytest.param(
        at(2026, 11, 3, 4, 30), at(2026, 11, 3, 4, 30), 2 * D, NY, None, False,
        dt.date(2026, 11, 1), "days from 2026-11-01 (lookback 2d)",
        id="lookback across the end of DST is elapsed time",
    ),
    # DST starts in New York on 2026-03-08 (02:00 EST -> 03:00 EDT). 48 hours before 00:30 EDT
    # on the 10th is 23:30 EST on the 7th.
    pytest.param(
        at(2026, 3, 10, 4, 30), at(2026, 3, 10, 4, 30), 2 * D, NY, None, False,
        dt.date(2026, 3, 7), "days from 2026-03-07 (lookback 2d)",
        id="lookback across the start of DST is elapsed time",
    ),
    # the day the clocks go back has 25 hours: 24 hours before its 23:00 EST is its midnight
    # (00:00 EDT), still the 1st (wall-clock arithmetic would say 23:00 on the 31st)
    pytest.param(
        at(2026, 11, 2, 4, 0), at(2026, 11, 2, 4, 0), D, NY, None, False,
        dt.date(2026, 11, 1), "days from 2026-11-01 (lookback 1d)",
        id="a one-day lookback on the 25-hour day",
    ),
]
# fmt: on


@pytest.mark.parametrize(
    ("now", "last", "lookback", "tz", "since", "full", "first", "reason"), CASES
)
def test_first_day_to_recompute(
    now: dt.datetime,
    last: dt.datetime | None,
    lookback: dt.timedelta,
    tz: str,
    since: dt.date | None,
    full: bool,
    first: dt.date | None,
    reason: str,
) -> None:
    assert first_day_to_recompute(now, last, lookback, tz, since, full) == (first, reason)


@pytest.mark.parametrize("session_zone", ["UTC", NY, TOKYO, "Europe/London"])
def test_the_session_zone_of_the_clock_does_not_matter(session_zone: str) -> None:
    zone = zoneinfo.ZoneInfo(session_zone)
    now = at(2026, 11, 3, 4, 30).astimezone(zone)  # psycopg hands out the session's zone
    last = at(2026, 11, 2, 4, 30).astimezone(zone)
    assert first_day_to_recompute(now, last, 2 * D, NY) == (
        dt.date(2026, 10, 31),
        "days from 2026-10-31 (lookback 2d)",
    )


def test_settled_through_is_the_day_before_the_next_routine_refresh() -> None:
    assert settled_through(NOW, 2 * D, "UTC") == dt.date(2026, 11, 24)
    assert settled_through(at(2026, 11, 27, 3, 0), 2 * D, NY) == dt.date(2026, 11, 23)
