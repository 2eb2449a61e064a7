"""What is due when: the schedule with an injected clock, no database."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from epstats_cli.config import MaintenanceConfig
from epstats_cli.schedule import SELF_LIMITED, Modified, Need, due_tasks, fits, parse_tasks

NOW = dt.datetime(2026, 11, 27, 12, 0, tzinfo=dt.timezone.utc)
CFG = MaintenanceConfig()
DAY = dt.timedelta(days=1)
SEC = dt.timedelta(seconds=1)


def decisions(
    last_ok: dict[str, dt.datetime],
    need: Need | None = None,
    now: dt.datetime = NOW,
    **kw: Any,
) -> dict[str, tuple[bool, str]]:
    return {d.task: (d.due, d.reason) for d in due_tasks(last_ok, CFG, now, need or Need(), **kw)}


def test_never_run_is_due_in_order() -> None:
    ds = due_tasks({}, CFG, NOW, Need())
    assert [d.task for d in ds] == [
        "cleanup", "partitions", "vacuum", "analyze", "reindex", "refresh", "retention", "verify",
    ]  # fmt: skip
    assert all(d.due and d.reason == "never run" for d in ds)


@pytest.mark.parametrize(
    ("task", "every"),
    [
        ("analyze", DAY),
        ("vacuum", 7 * DAY),
        ("reindex", 30 * DAY),
        ("refresh", dt.timedelta(hours=1)),
        ("cleanup", DAY),
        ("verify", DAY),
    ],
)
def test_due_exactly_at_the_interval(task: str, every: dt.timedelta) -> None:
    last = {t: NOW for t in ("cleanup", "vacuum", "analyze", "reindex", "refresh", "verify")}
    last[task] = NOW - every + SEC
    if task == "analyze":  # a VACUUM (ANALYZE) counts as an analyze: make it older
        last["vacuum"] = NOW - 3 * DAY
    assert decisions(last)[task][0] is False
    last[task] = NOW - every
    assert decisions(last)[task][0] is True
    last[task] = NOW - every - SEC
    assert decisions(last)[task][0] is True


def test_next_due_and_reason() -> None:
    d = {x.task: x for x in due_tasks({"analyze": NOW - dt.timedelta(hours=20)}, CFG, NOW, Need())}
    assert d["analyze"].next_due == NOW + dt.timedelta(hours=4)
    assert d["analyze"].reason == "next due in 4h 0m"


def test_vacuum_and_autoanalyze_count_as_analyze() -> None:
    assert decisions({"vacuum": NOW - dt.timedelta(hours=2)})["analyze"][0] is False
    need = Need(last_analyze=NOW - dt.timedelta(hours=2))
    assert decisions({}, need)["analyze"][0] is False
    need = Need(last_vacuum=NOW - DAY)
    assert decisions({}, need)["vacuum"][0] is False


def test_vacuum_early_on_dead_tuples() -> None:
    recent = {"vacuum": NOW - dt.timedelta(hours=1)}
    assert decisions(recent, Need(dead_tuples=19, live_tuples=81))["vacuum"][0] is False
    due, reason = decisions(recent, Need(dead_tuples=20, live_tuples=80))["vacuum"]
    assert due and "dead tuples 20.0%" in reason


def test_analyze_early_when_a_tenth_of_the_rows_changed() -> None:
    recent = {t: NOW - dt.timedelta(hours=1) for t in ("analyze", "vacuum")}
    below = Need(modified=(Modified("public.requests", 999, 10_000),))
    assert decisions(recent, below)["analyze"] == (False, "next due in 23h 0m")
    at = Need(modified=(Modified("public.requests", 1_000, 10_000),))
    due, reason = decisions(recent, at)["analyze"]
    assert due and reason == (
        "public.requests: 1,000 rows changed since its last analyze (10.0% of its 10,000 "
        "rows), past analyze_modified_ratio 10%"
    )
    # the rollup after a backfill: the same rule, and the reason names it
    rollup = Modified("public.endpoint_daily_stats", 300, 1_000)
    due, reason = decisions(recent, Need(modified=(below.modified[0], rollup)))["analyze"]
    assert due and reason.startswith("public.endpoint_daily_stats: 300 rows changed")
    assert "public.requests" not in reason
    # a truncated and reloaded table (reltuples unknown, counted from n_live_tup): due
    reloaded = Need(modified=(Modified("public.requests", 5_000, 5_000),))
    assert decisions(recent, reloaded)["analyze"][0] is True
    # rows into a table that had none
    assert decisions(recent, Need(modified=(Modified("public.requests", 1, 0),)))["analyze"][0]
    assert not decisions(recent, Need(modified=(Modified("public.requests", 0, 0),)))["analyze"][0]
    # by schedule, the reason stays the schedule's
    old = {**recent, "analyze": NOW - 2 * DAY, "vacuum": NOW - 2 * DAY}
    assert decisions(old, below)["analyze"] == (True, "last run 2d 0h ago (every 1d 0h)")


def test_analyze_modified_ratio_zero_is_off() -> None:
    recent = {t: NOW - dt.timedelta(hours=1) for t in ("analyze", "vacuum")}
    everything = Need(modified=(Modified("public.requests", 10_000, 10_000),))
    cfg = MaintenanceConfig(analyze_modified_ratio=0.0)
    ds = {d.task: d for d in due_tasks(recent, cfg, NOW, everything)}
    assert ds["analyze"].due is False


def test_freeze_near_wraparound() -> None:
    recent = {"vacuum": NOW - dt.timedelta(hours=1)}
    need = Need(xid_age=99_999_999, freeze_max_age=200_000_000)
    assert decisions(recent, need)["vacuum"][0] is False
    need = Need(xid_age=100_000_000, freeze_max_age=200_000_000)
    d = {x.task: x for x in due_tasks(recent, CFG, NOW, need)}
    assert d["vacuum"].due and d["vacuum"].freeze and "FREEZE" in d["vacuum"].reason


def test_retention_is_off_until_configured_unless_forced() -> None:
    off = {"retention": "off: source.retention is not set"}
    d = {x.task: x for x in due_tasks({}, CFG, NOW, Need(), off=off)}
    assert (d["retention"].due, d["retention"].reason) == (False, off["retention"])
    assert d["verify"].due
    forced = {x.task: x for x in due_tasks({}, CFG, NOW, Need(), off=off, force={"retention"})}
    assert forced["retention"].due


def test_a_leftover_makes_cleanup_due_at_once() -> None:
    tasks = (
        "cleanup",
        "partitions",
        "vacuum",
        "analyze",
        "reindex",
        "refresh",
        "retention",
        "verify",
    )
    recent = {t: NOW - SEC for t in tasks}
    assert decisions(recent)["cleanup"][0] is False
    left = ("public.idx_a_ccnew", "public.endpoint_daily_stats_epstats_new")
    due, reason = decisions(recent, Need(leftovers=left))["cleanup"]
    assert due and reason == (
        "2 leftover(s) of interrupted work: "
        "public.idx_a_ccnew, public.endpoint_daily_stats_epstats_new"
    )
    many = Need(leftovers=tuple(f"public.i{n}" for n in range(5)))
    assert decisions(recent, many)["cleanup"][1].endswith("public.i2 ...")
    assert decisions(recent, Need(leftovers=left), skip={"cleanup"})["cleanup"][0] is False
    assert all(
        not d[0] for t, d in decisions(recent, Need(leftovers=left)).items() if t != "cleanup"
    )


def test_a_build_or_swap_counts_as_a_refresh() -> None:
    hour = dt.timedelta(hours=1)
    for task in ("build", "swap"):
        assert decisions({task: NOW - hour + SEC})["refresh"][0] is False
        assert decisions({task: NOW - hour})["refresh"][0] is True
    assert decisions({"build": NOW - 2 * hour, "refresh": NOW - SEC})["refresh"][0] is False


def test_only_skip_force() -> None:
    recent = {t: NOW for t in ("cleanup", "vacuum", "analyze", "reindex", "refresh")}
    d = decisions(recent, force={"reindex"})
    assert d["reindex"] == (True, "forced") and not d["vacuum"][0]
    d = decisions({}, only={"vacuum"})
    assert d["vacuum"][0] and not d["analyze"][0] and d["analyze"][1] == "not selected"
    d = decisions({}, skip={"refresh"})
    assert not d["refresh"][0] and d["cleanup"][0]


def test_verify_is_daily_last_and_forceable() -> None:
    recent = {t: NOW for t in ("cleanup", "vacuum", "analyze", "reindex", "refresh", "verify")}
    assert decisions(recent)["verify"] == (False, "next due in 1d 0h")
    assert decisions(recent, force={"verify"})["verify"] == (True, "forced")
    assert decisions({**recent, "verify": NOW - DAY})["verify"][0] is True
    assert "verify" in SELF_LIMITED  # maintain starts it whenever time is left


def test_parse_tasks() -> None:
    assert parse_tasks("vacuum, analyze") == {"vacuum", "analyze"}
    assert parse_tasks(None) == set()
    assert parse_tasks("verify") == {"verify"}
    with pytest.raises(ValueError, match="unknown task vacum"):
        parse_tasks("vacum")


def test_fits() -> None:
    assert fits(None, 0, 60)
    assert fits(30, 30, 60)
    assert not fits(31, 30, 60)
    assert not fits(None, 60, 60)


def _analyze(last_ok: dict[str, dt.datetime], need: Need) -> Any:
    [d] = [d for d in due_tasks(last_ok, CFG, NOW, need) if d.task == "analyze"]
    return d


def test_an_early_stage_of_in_stages_is_no_analyze() -> None:
    """The statistics an early stage left (pg_stat's last_analyze, before the stage's row
    ended) do not count; a full ANALYZE after it does."""
    full = NOW - 2 * 3600 * SEC
    stage = NOW - 60 * SEC
    need = Need(last_analyze=stage - SEC, partial_analyze=stage)
    d = _analyze({"analyze": full}, need)
    assert d.due and "`analyze --in-stages` did not finish" in d.reason
    later = Need(last_analyze=stage + SEC, partial_analyze=stage)  # autoanalyze came after
    assert not _analyze({"analyze": full}, later).due
    assert not _analyze({"analyze": stage + SEC}, need).due  # a full run since


def test_analyze_by_the_ratio_names_only_the_relations_that_passed() -> None:
    need = Need(modified=(Modified("public.requests", 10, 1000), Modified("r.daily", 50, 100)))
    d = _analyze({"analyze": NOW - 3600 * SEC}, need)
    assert d.due and [t for t, _w in d.targets] == ["r.daily"]
    assert dict(d.targets)["r.daily"].startswith("r.daily: 50 rows changed")
    # due by the schedule too: every relation
    assert _analyze({"analyze": NOW - 2 * DAY}, need).targets == ()
