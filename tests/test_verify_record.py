"""The verify task's summary in the run history, and reading it back (pure)."""

from __future__ import annotations

import datetime as dt

import pytest

from epstats_cli.rollup import verify_record
from epstats_cli.rollup.verify_record import DayRepair, Outcome, order, ranges, read, summary

D = dt.date(2026, 10, 1)


def day(n: int) -> dt.date:
    return D + dt.timedelta(days=n)


def test_ranges_keep_the_order_they_were_checked_in() -> None:
    assert ranges([]) == ""
    assert ranges([day(0)]) == "2026-10-01"
    assert ranges([day(5), day(6), day(7), day(0), day(1), day(3)]) == (
        "2026-10-06 .. 2026-10-08, 2026-10-01 .. 2026-10-02, 2026-10-04"
    )


def test_order_is_oldest_check_first() -> None:
    days = [day(i) for i in range(5)]
    assert order(days, None) == days  # never checked: from the oldest day
    assert order(days, day(1)) == [day(2), day(3), day(4), day(0), day(1)]
    assert order(days, day(4)) == days  # the last run got to the end: round again
    assert order(days, day(-3)) == days  # the day it stopped at is no longer compared
    assert order(days[2:], day(9)) == days[2:]


def test_a_clean_run() -> None:
    o = Outcome([day(i) for i in range(3)], 3)
    text = summary(o)
    assert text == (
        "checked 3 of 3 days (2026-10-01 .. 2026-10-03), last checked 2026-10-03: no differences"
    )
    assert read(text) == verify_record.Recorded(day(2), 0, None, False)


def test_a_run_that_repaired_late_rows_and_stopped() -> None:
    o = Outcome(
        [day(3), day(4), day(0)],
        10,
        stopped=True,
        repairs=[DayRepair(day(3), 3000, 2), DayRepair(day(4), 12, 1), DayRepair(day(0), -5, 1)],
        late_by_seconds=40 * 86400 + 5 * 3600 + 59,
        lookback=dt.timedelta(days=2),
    )
    text = summary(o)
    assert text == (
        "checked 3 of 10 days (2026-10-04 .. 2026-10-05, 2026-10-01), last checked 2026-10-01, "
        "stopped by max_runtime: repaired 2026-10-04 (+3,000 rows), 2026-10-05 (+12 rows), "
        "2026-10-01 (-5 rows); 3,012 rows arrived up to 40d 5h late: view.lookback 2d is too "
        "short for this API"
    )
    assert read("forced: " + text) == verify_record.Recorded(day(0), 3012, "40d 5h", False)


def test_a_day_that_could_not_be_repaired() -> None:
    o = Outcome(
        [day(0)],
        1,
        repairs=[DayRepair(day(0), 1, 1, repaired=False, error="lock not granted")],
        late_by_seconds=3 * 86400,
    )
    text = summary(o)
    assert text.endswith(
        ": could not repair 2026-10-01 (+1 row): lock not granted; 1 row arrived up to 3d 0h "
        "late: view.lookback 2d is too short for this API"
    )
    assert read(text) == verify_record.Recorded(day(0), 1, "3d 0h", True)


@pytest.mark.parametrize(
    ("outcome", "text"),
    [
        (Outcome([], 0), "nothing to compare yet: no day before the lookback window has raw rows"),
        (Outcome([], 4), "checked 0 of 4 days"),
    ],
)
def test_nothing_checked(outcome: Outcome, text: str) -> None:
    assert summary(outcome) == text
    assert read(text) == verify_record.Recorded(None, 0, None, False)


def test_other_text_reads_as_nothing() -> None:
    assert read(None) == verify_record.Recorded(None, 0, None, False)
    assert read("not due: next due in 3h 0m") == verify_record.Recorded(None, 0, None, False)
