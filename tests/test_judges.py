"""The health checks' judges at every threshold boundary, without a database.

Levels compare with `>=`: a value exactly at a threshold takes its state. Each check is
tried just below, at and just above its warning and its critical threshold, plus the paths
without data and the UNKNOWN ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import psycopg
import pytest

from epstats_cli import config, indexes
from epstats_cli.cardinality import Cardinality
from epstats_cli.catalog import ServerFacts, TableFacts
from epstats_cli.config import CheckConfig, IndexSpec, Levels, QualifiedName, Schedule
from epstats_cli.db import Server
from epstats_cli.errors import ConfigError, OperationFailed
from epstats_cli.health import checks, judges, row_judges
from epstats_cli.health.facts import (
    FinishedRun,
    IndexBloat,
    IndexFacts,
    LastRun,
    LateRowsFacts,
    MaintenanceFacts,
    PoolerFacts,
    RollupFreshness,
    RunStatus,
    SourceMissing,
    TableBloat,
    VerifyRun,
    index_facts,
)
from epstats_cli.health.judges import CheckResult, State, Thresholds
from epstats_cli.health.latency_facts import EndpointLatency, LatencyFacts, like
from epstats_cli.health.server_facts import (
    ConnectionFacts,
    IngestFacts,
    ReplicationFacts,
    TableSequences,
    TransactionFacts,
)
from epstats_cli.partition_runway import Runway
from epstats_cli.pooler import PoolerInfo
from epstats_cli.source import FutureRows

OK, WARNING, CRITICAL, UNKNOWN = State.OK, State.WARNING, State.CRITICAL, State.UNKNOWN
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
T = Thresholds(CheckConfig(), Schedule())  # the documented defaults
DAY, WEEK, HOUR = 86400, 7 * 86400, 3600
MIB = 1024 * 1024
MIN_SIZE = CheckConfig().bloat_min_size

TABLE = TableFacts(
    heap_bytes=100 * MIB,
    index_bytes=20 * MIB,
    toast_bytes=0,
    total_bytes=120 * MIB,
    estimated_rows=1_000_000,
    live_tuples=1_000_000,
    dead_tuples=0,
    modified_since_analyze=0,
    last_vacuum=None,
    last_autovacuum=None,
    last_analyze=None,
    last_autoanalyze=None,
    seq_scan=1,
    idx_scan=100,
    inserted=1_000_000,
    updated_or_deleted=0,
    xid_age=1000,
)
SERVER = ServerFacts(
    server_version="16.4",
    database="stats",
    database_bytes=200 * MIB,
    in_recovery=False,
    started_at=NOW - dt.timedelta(days=3),
    max_connections=100,
    autovacuum_freeze_max_age=200_000_000,
    now=NOW,
)


def ago(seconds: float) -> dt.datetime:
    return NOW - dt.timedelta(seconds=seconds)


def test_state_is_an_int_enum_with_nagios_codes() -> None:
    assert [int(s) for s in (OK, WARNING, CRITICAL, UNKNOWN)] == [0, 1, 2, 3]
    assert CheckResult("a", WARNING, "x").as_dict()["state"] == "WARNING"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, OK),
        (0.99, OK),
        (1, WARNING),
        (1.01, WARNING),
        (1.99, WARNING),
        (2, CRITICAL),
        (2.01, CRITICAL),
        (5, CRITICAL),
    ],
)
def test_level_is_inclusive_at_each_threshold(value: float, expected: State) -> None:
    assert judges.level(value, Levels(1, 2)) == expected


@pytest.mark.parametrize(
    ("states", "expected"),
    [
        ((), OK),
        ((OK, OK), OK),
        ((OK, UNKNOWN), UNKNOWN),
        ((WARNING, UNKNOWN), WARNING),
        ((CRITICAL, WARNING), CRITICAL),
        ((UNKNOWN, CRITICAL, OK), CRITICAL),
    ],
)
def test_overall_is_the_worst_with_unknown_below_warning(
    states: tuple[State, ...], expected: State
) -> None:
    assert judges.overall([CheckResult(f"c{i}", s, "") for i, s in enumerate(states)]) == expected


def test_nagios_line_lists_the_bad_worst_first_with_perfdata() -> None:
    mk = CheckResult
    line = judges.nagios_line([mk("a", WARNING, "slow", 2.5, 1, 2), mk("b", OK, "fine", 1234567)])
    assert line == "EPSTATS WARNING - a: slow | a=2.5;1;2 b=1234567;;"
    line = judges.nagios_line([mk("a", WARNING, "w"), mk("b", CRITICAL, "c"), mk("d", OK, "")])
    assert line == "EPSTATS CRITICAL - b: c; a: w"
    # the check(s) that set the state lead: an UNKNOWN never comes before a WARNING
    line = judges.nagios_line([mk("u", UNKNOWN, "?"), mk("w", WARNING, "w"), mk("c", OK, "")])
    assert line == "EPSTATS WARNING - w: w; u: ?"
    line = judges.nagios_line([mk("u", UNKNOWN, "?"), mk("w", WARNING, "w"), mk("c", CRITICAL, "")])
    assert line == "EPSTATS CRITICAL - c: ; w: w; u: ?"
    assert judges.nagios_line([mk("u", UNKNOWN, "?"), mk("o", OK, "")]) == "EPSTATS UNKNOWN - u: ?"
    assert judges.nagios_line([mk("a", OK, ""), mk("b", OK, "")]) == "EPSTATS OK - 2 checks OK"
    assert mk("x", OK, "", 0.00001234).perfdata() == "x=0.00001234;;"  # never an exponent


@pytest.mark.parametrize(
    ("setting", "expected"), [("ok", OK), ("warning", WARNING), ("critical", CRITICAL)]
)
def test_configured_severities(setting: str, expected: State) -> None:
    assert judges.severity(setting) == expected


@pytest.mark.parametrize(("standby", "role"), [(False, "primary"), (True, "standby")])
def test_connect(standby: bool, role: str) -> None:
    r = judges.connect("16.4", standby)
    assert (r.state, r.summary) == (OK, f"PostgreSQL 16.4 ({role})")


# --- analyze_age / vacuum_age: overdue 1.5 / 3.0 x the schedule (1d / 7d) ----------------------


def _overdue_cases(every: int) -> list[tuple[float, State]]:
    w, c = 1.5 * every, 3.0 * every
    return [
        (0, OK),
        (w - 1, OK),
        (w, WARNING),
        (w + 1, WARNING),
        (c - 1, WARNING),
        (c, CRITICAL),
        (c + 1, CRITICAL),
    ]


@pytest.mark.parametrize(("age", "expected"), _overdue_cases(DAY))
@pytest.mark.parametrize("column", ["last_analyze", "last_autoanalyze"])
def test_analyze_age(age: float, expected: State, column: str) -> None:
    last: dict[str, Any] = {column: ago(age)}
    r = judges.analyze_age(replace(TABLE, **last), T, NOW)
    assert (r.name, r.state) == ("analyze_age", expected)
    assert (r.value, r.warning, r.critical) == (round(age), 1.5 * DAY, 3.0 * DAY)
    assert r.summary.startswith("last analyzed ") and r.summary.endswith("(every 1d 0h)")


@pytest.mark.parametrize(("age", "expected"), _overdue_cases(WEEK))
@pytest.mark.parametrize("column", ["last_vacuum", "last_autovacuum"])
def test_vacuum_age(age: float, expected: State, column: str) -> None:
    last: dict[str, Any] = {column: ago(age)}
    r = judges.vacuum_age(replace(TABLE, **last), T, NOW)
    assert (r.name, r.state) == ("vacuum_age", expected)
    assert (r.value, r.warning, r.critical) == (round(age), 1.5 * WEEK, 3.0 * WEEK)


def test_age_takes_the_latest_of_manual_and_automatic() -> None:
    table = replace(TABLE, last_analyze=ago(10 * DAY), last_autoanalyze=ago(60))
    assert judges.analyze_age(table, T, NOW).state == OK
    table = replace(TABLE, last_vacuum=ago(60), last_autovacuum=ago(30 * DAY))
    assert judges.vacuum_age(table, T, NOW).state == OK


def test_age_follows_the_configured_schedule_and_levels() -> None:
    t = Thresholds(
        replace(CheckConfig(), overdue=Levels(1, 2)), Schedule(analyze=dt.timedelta(hours=1))
    )
    table = replace(TABLE, last_analyze=ago(HOUR))
    r = judges.analyze_age(table, t, NOW)
    assert (r.state, r.warning, r.critical) == (WARNING, HOUR, 2 * HOUR)


EMPTY = replace(TABLE, live_tuples=0, modified_since_analyze=0, estimated_rows=None)


@pytest.mark.parametrize(
    ("table", "expected", "summary"),
    [
        (EMPTY, OK, "never {what}, but there is nothing to {what} yet"),
        (replace(EMPTY, live_tuples=None, modified_since_analyze=None), OK, "never {what}, but"),
        (replace(EMPTY, live_tuples=1), WARNING, "never {what}"),
        (replace(EMPTY, modified_since_analyze=1), WARNING, "never {what}"),
        (replace(EMPTY, estimated_rows=1), WARNING, "never {what}"),
    ],
)
def test_never_maintained(table: TableFacts, expected: State, summary: str) -> None:
    for judge, what in ((judges.analyze_age, "analyzed"), (judges.vacuum_age, "vacuumed")):
        r = judge(table, T, NOW)
        assert r.state == expected
        assert r.summary.startswith(summary.format(what=what))
        assert r.value is None and r.perfdata() is None


# --- dead_tuples: 0.2 / 0.5 of all tuples ------------------------------------------------------


@pytest.mark.parametrize(
    ("dead", "live", "expected"),
    [
        (0, 0, OK),
        (None, None, OK),
        (0, 1000, OK),
        (199, 801, OK),
        (200, 800, WARNING),
        (201, 799, WARNING),
        (499, 501, WARNING),
        (500, 500, CRITICAL),
        (501, 499, CRITICAL),
        (1000, 0, CRITICAL),
    ],
)
def test_dead_tuples(dead: int | None, live: int | None, expected: State) -> None:
    r = judges.dead_tuples(replace(TABLE, dead_tuples=dead, live_tuples=live), T, NOW)
    assert (r.name, r.state) == ("dead_tuples", expected)
    total = (dead or 0) + (live or 0)
    ratio = (dead or 0) / total if total else 0.0
    assert (r.value, r.warning, r.critical) == (round(ratio, 4), 0.2, 0.5)
    assert r.summary == f"{ratio:.1%} dead tuples ({dead or 0:,} of {total:,})"


# --- xid_age: 0.8 / 1.2 of autovacuum_freeze_max_age -----------------------------------------


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (None, OK),
        (0, OK),
        (159_999_999, OK),
        (160_000_000, WARNING),
        (160_000_001, WARNING),
        (239_999_999, WARNING),
        (240_000_000, CRITICAL),
        (240_000_001, CRITICAL),
        (2_147_483_647, CRITICAL),
    ],
)
def test_xid_age(age: int | None, expected: State) -> None:
    r = judges.xid_age(replace(TABLE, xid_age=age), SERVER, T, NOW)
    assert (r.name, r.state) == ("xid_age", expected)
    assert (r.value, r.warning, r.critical) == (round((age or 0) / 200_000_000, 4), 0.8, 1.2)
    assert r.summary.startswith(f"transaction-ID age {age or 0:,} is ")


def test_xid_age_is_relative_to_the_servers_limit() -> None:
    server = replace(SERVER, autovacuum_freeze_max_age=100_000)
    assert judges.xid_age(replace(TABLE, xid_age=80_000), server, T, NOW).state == WARNING
    assert judges.xid_age(replace(TABLE, xid_age=79_999), server, T, NOW).state == OK


# --- table_bloat / index_bloat: 0.5 / 0.8, relations of bloat_min_size or more ------------------

BLOAT_CASES = [
    (0.0, OK),
    (0.499, OK),
    (0.5, WARNING),
    (0.501, WARNING),
    (0.799, WARNING),
    (0.8, CRITICAL),
    (0.801, CRITICAL),
    (1.0, CRITICAL),
]


@pytest.mark.parametrize(("ratio", "expected"), BLOAT_CASES)
def test_table_bloat(ratio: float, expected: State) -> None:
    r = judges.table_bloat(TableBloat(MIN_SIZE, ratio), T, NOW)
    assert (r.name, r.state, r.summary) == (
        "table_bloat",
        expected,
        f"estimated {ratio:.0%} of the table",
    )
    assert (r.value, r.warning, r.critical) == (round(ratio, 3), 0.5, 0.8)


@pytest.mark.parametrize(
    ("bloat", "expected", "summary"),
    [
        (None, OK, "no estimate yet (table not analyzed)"),
        (TableBloat(100 * MIB, None), OK, "no estimate yet (table not analyzed)"),
        (TableBloat(MIN_SIZE - 1, 0.9), OK, "estimated 90%, table too small to matter"),
        (TableBloat(MIN_SIZE, 0.9), CRITICAL, "estimated 90% of the table"),
    ],
)
def test_table_bloat_without_a_judgement(
    bloat: TableBloat | None, expected: State, summary: str
) -> None:
    r = judges.table_bloat(bloat, T, NOW)
    assert (r.state, r.summary) == (expected, summary)


@pytest.mark.parametrize(("ratio", "expected"), BLOAT_CASES)
def test_index_bloat(ratio: float, expected: State) -> None:
    bloats = (IndexBloat("small", MIN_SIZE, 0.0), IndexBloat("worst", MIN_SIZE, ratio))
    r = judges.index_bloat(bloats, T, NOW)
    assert (r.name, r.state) == ("index_bloat", expected)
    assert r.summary == f"worst {'worst' if ratio else 'small'}: estimated {ratio:.0%}"
    assert (r.value, r.warning, r.critical) == (round(ratio, 3), 0.5, 0.8)


@pytest.mark.parametrize(
    ("bloats", "expected", "summary"),
    [
        ((), OK, "no index large enough to judge"),
        ((IndexBloat("brin", 100 * MIB, None),), OK, "no index large enough to judge"),
        ((IndexBloat("tiny", MIN_SIZE - 1, 0.95),), OK, "no index large enough to judge"),
        ((IndexBloat("big", MIN_SIZE, 0.95),), CRITICAL, "worst big: estimated 95%"),
        (
            (IndexBloat("tiny", MIN_SIZE - 1, 0.95), IndexBloat("big", MIN_SIZE, 0.6)),
            WARNING,
            "worst big: estimated 60%",
        ),
    ],
)
def test_index_bloat_only_judges_large_estimated_indices(
    bloats: tuple[IndexBloat, ...], expected: State, summary: str
) -> None:
    r = judges.index_bloat(bloats, T, NOW)
    assert (r.state, r.summary) == (expected, summary)


def test_bloat_min_size_is_configurable() -> None:
    t = Thresholds(replace(CheckConfig(), bloat_min_size=0), Schedule())
    assert judges.table_bloat(TableBloat(0, 0.9), t, NOW).state == CRITICAL
    assert judges.index_bloat((IndexBloat("i", 0, 0.9),), t, NOW).state == CRITICAL


# --- view_staleness: overdue 1.5 / 3.0 x the refresh schedule (1h) -----------------------------


@pytest.mark.parametrize(("lag", "expected"), _overdue_cases(HOUR))
def test_view_staleness(lag: float, expected: State) -> None:
    r = judges.view_staleness(RollupFreshness(True, "", ago(lag)), T, NOW)
    assert (r.name, r.state) == ("view_staleness", expected)
    assert (r.value, r.warning, r.critical) == (round(lag), 1.5 * HOUR, 3.0 * HOUR)
    assert r.summary.endswith("old are not in the rollup (refresh every 1h 0m)")


@pytest.mark.parametrize(("lag", "expected"), _overdue_cases(HOUR))
def test_view_staleness_takes_the_servers_age(lag: float, expected: State) -> None:
    """The age the server computed decides, whatever the timestamp says about the client's
    clock (a naive column's value never meets the client's `now`)."""
    oldest = dt.datetime(2000, 1, 1)  # naive: subtracting it from NOW would raise
    r = judges.view_staleness(RollupFreshness(True, "", oldest, lag), T, NOW)
    assert (r.state, r.value) == (expected, round(lag))


@pytest.mark.parametrize(
    ("rollup", "expected", "summary", "value"),
    [
        (RollupFreshness(True, "", None), OK, "the rollup holds every row", 0),
        (RollupFreshness(True, "", NOW + dt.timedelta(hours=5)), OK, "rows up to 0s old", 0),
        (
            RollupFreshness(False, "no rollup public.endpoint_daily_stats"),
            WARNING,
            "no rollup public.endpoint_daily_stats; reports read the raw rows",
            None,
        ),
    ],
)
def test_view_staleness_without_lag(
    rollup: RollupFreshness, expected: State, summary: str, value: int | None
) -> None:
    r = judges.view_staleness(rollup, T, NOW)
    assert (r.state, r.value) == (expected, value)
    assert r.summary.startswith(summary)


# --- indices: any invalid / missing / redundant one, at the configured severity -----------------

NO_INDEX_PROBLEMS = IndexFacts((), (), {})


@pytest.mark.parametrize(
    ("facts", "setting", "expected", "summary"),
    [
        (NO_INDEX_PROBLEMS, "critical", OK, "no invalid indices"),
        (IndexFacts(("x",), (), {}), "critical", CRITICAL, "1 invalid: x"),
        (IndexFacts(("x", "y"), (), {}), "critical", CRITICAL, "2 invalid: x, y"),
        (IndexFacts(("x",), (), {}), "warning", WARNING, "1 invalid: x"),
        (IndexFacts(("x",), (), {}), "ok", OK, "1 invalid: x"),
    ],
)
def test_invalid_indexes(facts: IndexFacts, setting: str, expected: State, summary: str) -> None:
    t = Thresholds(replace(CheckConfig(), invalid_index=setting), Schedule())
    r = judges.invalid_indexes(facts, t, NOW)
    assert (r.state, r.value, r.warning, r.critical) == (expected, len(facts.invalid), None, 1)
    assert r.summary.startswith(summary)


@pytest.mark.parametrize(
    ("facts", "setting", "expected", "summary"),
    [
        (NO_INDEX_PROBLEMS, "warning", OK, "all recommended indices present"),
        (IndexFacts((), ("a",), {}), "warning", WARNING, "a missing (epstats indexes apply)"),
        (IndexFacts((), ("a", "b"), {}), "critical", CRITICAL, "a, b missing"),
        (IndexFacts((), ("a",), {}), "ok", OK, "a missing"),
    ],
)
def test_missing_indexes(facts: IndexFacts, setting: str, expected: State, summary: str) -> None:
    t = Thresholds(replace(CheckConfig(), missing_index=setting), Schedule())
    r = judges.missing_indexes(facts, t, NOW)
    assert (r.state, r.value, r.warning, r.critical) == (expected, len(facts.missing), 1, None)
    assert r.summary.startswith(summary)


@pytest.mark.parametrize(
    ("facts", "setting", "expected", "summary"),
    [
        (NO_INDEX_PROBLEMS, "warning", OK, "no redundant indices"),
        (
            IndexFacts((), (), {"e": "e_ts"}),
            "warning",
            WARNING,
            "e (covered by e_ts) (epstats indexes apply --prune-redundant)",
        ),
        (IndexFacts((), (), {"z": "y", "a": "b"}), "critical", CRITICAL, "a (covered by b), z "),
        (IndexFacts((), (), {"e": "e_ts"}), "ok", OK, "e (covered by e_ts)"),
    ],
)
def test_redundant_indexes(facts: IndexFacts, setting: str, expected: State, summary: str) -> None:
    t = Thresholds(replace(CheckConfig(), redundant_index=setting), Schedule())
    r = judges.redundant_indexes(facts, t, NOW)
    assert (r.state, r.value, r.warning, r.critical) == (expected, len(facts.redundant), 1, None)
    assert r.summary.startswith(summary)


def _index(name: str, oid: int, valid: bool) -> indexes.IndexInfo:
    return indexes.IndexInfo(
        name, oid, "btree", valid, valid, False, False, None, False, False, False,
        ("endpoint",), (), (), (), 8192, 0, f"CREATE INDEX {name} ...",
    )  # fmt: skip


def test_index_facts_from_a_plan() -> None:
    spec = IndexSpec("idx_ts", ("timestamp",))
    plan = indexes.Plan(
        table=QualifiedName("public", "requests"),
        table_oid=1,
        indexes=[_index("ok", 10, True), _index("leftover", 11, False), _index("new", 12, False)],
        recommendations=[
            indexes.Recommendation(spec, ("timestamp",), state)
            for state in ("present", "present_as", "missing", "invalid", "conflict", "building")
        ],
        redundant={"ok": "other"},
        unused=[],
        leftovers=[],
        builds=[{"index_relid": 12}, {"index_relid": None}],
        stats_reset=None,
    )
    facts = index_facts(plan)
    assert facts.invalid == ("leftover",)  # "new" is being built
    assert facts.missing == ("idx_ts",) * 3  # missing, invalid, conflict
    assert facts.redundant == {"ok": "other"}


# --- maintain_failed: a task whose latest runs failed ------------------------------------------


def _run(*outcomes: str) -> LastRun:
    """A task's history from its outcomes, newest first: ok, failed, busy (a lock was busy) or
    left (the failure left an invalid index behind); one hour apart."""
    recent = tuple(
        FinishedRun(
            o == "ok",
            ago(HOUR * (i + 1)),
            None if o == "ok" else f"{o} error",
            lock_busy=o == "busy",
            left_behind=o == "left",
        )
        for i, o in enumerate(outcomes)
    )
    last_ok = next((r.started_at for r in recent if r.ok), None)
    status: RunStatus = "ok" if not recent or recent[0].ok else "failed"
    return LastRun(last_ok, status, None if status == "ok" else "x", ago(HOUR), 1.0, recent)


def _history(**tasks: LastRun) -> MaintenanceFacts:
    return MaintenanceFacts(True, tasks)


@pytest.mark.parametrize(
    ("outcomes", "setting", "runs", "expected", "summary"),
    [
        # a task that failed and then succeeded is fine again
        (("ok",), "critical", 3, OK, "last runs OK (1 tasks recorded)"),
        (("ok", "busy", "busy"), "critical", 3, OK, "last runs OK"),
        (("ok", "failed"), "critical", 3, OK, "last runs OK"),
        # a busy lock is WARNING, up to one run short of maintain_failed_runs in a row
        (("busy",), "critical", 3, WARNING, "vacuum failed at 2024-05-01 11:00 UTC (a busy lock"),
        (("busy", "busy", "ok"), "critical", 3, WARNING, "vacuum failed at"),
        (("busy", "busy", "busy"), "critical", 3, CRITICAL, "vacuum failed 3 times in a row"),
        (("busy", "failed", "busy"), "critical", 3, CRITICAL, "vacuum failed 3 times in a row"),
        (("busy", "busy", "busy"), "critical", 4, WARNING, "vacuum failed at"),
        (("busy",), "critical", 1, CRITICAL, "vacuum failed at 2024-05-01 11:00 UTC: busy error"),
        # a busy lock is never worse than the configured severity of a real failure
        (("busy",), "ok", 3, OK, "last runs OK"),
        (("busy", "busy", "busy"), "ok", 3, CRITICAL, "vacuum failed 3 times in a row"),
        # any other single failure takes check.maintain_failed
        (("failed",), "critical", 3, CRITICAL, "vacuum failed at 2024-05-01 11:00 UTC: failed"),
        (("failed", "busy"), "warning", 3, WARNING, "vacuum failed at"),
        (("failed",), "ok", 3, OK, "last runs OK"),
        (("failed", "failed", "failed"), "warning", 3, CRITICAL, "vacuum failed 3 times"),
        # a failure that left an invalid index or leftover behind is CRITICAL at once
        (("left",), "warning", 3, CRITICAL, "vacuum failed at 2024-05-01 11:00 UTC and left an"),
    ],
)
def test_maintain_failed(
    outcomes: tuple[str, ...], setting: str, runs: int, expected: State, summary: str
) -> None:
    config = replace(CheckConfig(), maintain_failed=setting, maintain_failed_runs=runs)
    r = judges.maintain_failed(
        _history(vacuum=_run(*outcomes)), Thresholds(config, Schedule()), NOW
    )
    assert (r.state, r.value) == (expected, 0 if expected == OK else 1), r.summary
    assert r.summary.startswith(summary), r.summary


@pytest.mark.parametrize(
    ("history", "expected", "summary", "value"),
    [
        (MaintenanceFacts(False, {}), UNKNOWN, "no run history (run epstats init)", None),
        (_history(), OK, "no maintenance recorded yet", 0),
        (_history(vacuum=_run("ok"), analyze=_run()), OK, "last runs OK (2 tasks recorded)", 0),
        (  # every failing task is named, the worst first
            _history(vacuum=_run("busy"), reindex=_run("failed"), refresh=_run("ok")),
            CRITICAL,
            "reindex failed at 2024-05-01 11:00 UTC: failed error; vacuum failed at 2024-05-01 "
            "11:00 UTC (a busy lock: WARNING until 3 failures in a row): busy error",
            2,
        ),
    ],
)
def test_maintain_failed_over_tasks(
    history: MaintenanceFacts, expected: State, summary: str, value: int | None
) -> None:
    r = judges.maintain_failed(history, T, NOW)
    assert (r.state, r.value, r.summary) == (expected, value, summary)


@pytest.mark.parametrize(
    ("kind", "reads", "separate", "expected", "summary"),
    [
        ("direct", False, False, OK, "changing commands connect directly (the DSN)"),
        (
            "session",
            True,
            False,
            OK,
            "changing commands connect through a session-mode pool (the DSN); "
            "reads go through a pooler",
        ),
        (
            "direct",
            True,
            True,
            OK,
            "changing commands connect directly (database.maintenance_dsn); "
            "reads go through a pooler",
        ),
        (
            "transaction",
            True,
            False,
            WARNING,
            "the DSN goes through a pooler in transaction mode: maintain and the other changing "
            "commands refuse to run through it (set database.maintenance_dsn to the server "
            "itself or a session-mode pool)",
        ),
        (
            "statement",
            False,
            True,
            WARNING,
            "database.maintenance_dsn goes through a pooler in statement mode: maintain and the "
            "other changing commands refuse to run through it (point database.maintenance_dsn "
            "at the server itself or a session-mode pool)",
        ),
        (
            "unknown-pooler",
            True,
            False,
            WARNING,
            "the DSN goes through a pooler whose mode is not proven: ",
        ),
    ],
)
def test_pooler(kind: Any, reads: bool, separate: bool, expected: State, summary: str) -> None:
    facts = PoolerFacts(reads, separate, PoolerInfo(kind, "why"))
    r = judges.pooler(facts, T, NOW)
    assert (r.name, r.state) == ("pooler", expected)
    assert r.summary.startswith(summary)
    assert r.details == ([] if expected == OK else ["why"])


@pytest.mark.parametrize(("setting", "expected"), [("ok", OK), ("critical", CRITICAL)])
def test_pooler_severity_is_configurable(setting: str, expected: State) -> None:
    t = Thresholds(replace(CheckConfig(), pooler=setting), Schedule())
    facts = PoolerFacts(True, False, PoolerInfo("transaction", "why"))
    assert judges.pooler(facts, t, NOW).state == expected
    direct = PoolerFacts(False, False, PoolerInfo("direct", "why"))
    assert judges.pooler(direct, t, NOW).state == OK


# --- evaluate: gather failures become UNKNOWN, never an error ----------------------------------


class Facts:
    """A FactSource from plain values; a value that is an exception is raised when read."""

    def __init__(self, table: TableFacts | Exception = TABLE) -> None:
        self._table = table
        self.reads: list[str] = []

    def connection(self) -> Server:
        return Server(160004, "16.4", False, "stats", "dba")

    def table(self) -> TableFacts:
        self.reads.append("table")
        if isinstance(self._table, Exception):
            raise self._table
        return self._table

    def server(self) -> ServerFacts:
        return SERVER

    def indexes(self) -> IndexFacts:
        return NO_INDEX_PROBLEMS

    def rollup(self) -> RollupFreshness:
        return RollupFreshness(True, "", None)

    def maintenance(self) -> MaintenanceFacts:
        return MaintenanceFacts(True, {})

    def future_rows(self) -> FutureRows:
        return FutureRows(0, None, None)

    def late_rows(self) -> LateRowsFacts:
        return LateRowsFacts(True, dt.timedelta(days=2))

    def table_bloat(self) -> TableBloat | None:
        return None

    def index_bloat(self) -> tuple[IndexBloat, ...]:
        raise psycopg.errors.InsufficientPrivilege("permission denied for table requests\nDETAIL")

    def pooler(self) -> PoolerFacts:
        return PoolerFacts(False, False, PoolerInfo("direct", "the server itself answers"))

    def transactions(self) -> TransactionFacts:
        return TransactionFacts(())

    def newest_row(self) -> IngestFacts:
        return IngestFacts(dt.timedelta(hours=1), NOW - dt.timedelta(seconds=5), 5.0)

    def connections(self) -> ConnectionFacts:
        return ConnectionFacts(10, 200, 3)

    def replication(self) -> ReplicationFacts:
        return ReplicationFacts(False)

    def sequences(self) -> TableSequences:
        return TableSequences("public.requests", ())

    def endpoint_cardinality(self) -> Cardinality:
        return Cardinality("rows", "off", False, 40, 40, 1000, NOW.date(), 1000)

    def latency(self) -> LatencyFacts:
        return LatencyFacts(dt.timedelta(hours=1), "auto")

    def partition_runway(self) -> Runway:
        return Runway(False)


TABLE_CHECKS = ["analyze_age", "vacuum_age", "dead_tuples", "xid_age"]


DENIED = "permission denied for table requests"


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (OperationFailed(DENIED), DENIED),
        (psycopg.OperationalError("connection lost\nunexpectedly"), "connection lost"),
        (psycopg.Error(""), "Error"),  # an empty message must not raise IndexError
    ],
)
def test_a_gatherer_that_fails_makes_its_checks_unknown(error: Exception, message: str) -> None:
    results = checks.evaluate(Facts(table=error), (), T, NOW)
    assert [r.name for r in results] == list(checks.CHECKS)
    by_name = {r.name: r for r in results}
    for name in TABLE_CHECKS:
        assert (by_name[name].state, by_name[name].summary) == (UNKNOWN, f"cannot check: {message}")
    assert by_name["index_bloat"].summary == "cannot check: permission denied for table requests"
    others = set(checks.CHECKS) - {*TABLE_CHECKS, "index_bloat"}
    assert all(by_name[n].state == OK for n in others)
    assert judges.overall(results) == UNKNOWN


MISSING = SourceMissing(QualifiedName("public", "requests"))


@pytest.mark.parametrize("only", [(), ("view_staleness",), ("connect", "table_bloat", "xid_age")])
def test_a_missing_source_table_is_one_critical_result(only: tuple[str, ...]) -> None:
    results = checks.evaluate(Facts(table=MISSING), only, T, NOW)
    server_checks = [n for n in checks.CHECKS if n in checks.WITHOUT_SOURCE]
    assert [r.name for r in results] == [
        n for n in server_checks if n in (only or server_checks)
    ] + ["source_table"]
    missing = results[-1]
    assert missing.state == CRITICAL
    assert missing.summary == (
        "public.requests does not exist (epstats init --with-requests-table creates it; "
        "or set source.table)"
    )
    line = judges.nagios_line(results).split(" | ")[0]
    assert line == f"EPSTATS CRITICAL - source_table: {missing.summary}"


@pytest.mark.parametrize(
    "name", ["connect", "long_transactions", "connections", "replication_lag", "database_size"]
)
def test_the_server_checks_need_no_source_table(name: str) -> None:
    facts = Facts(table=MISSING)
    assert [r.state for r in checks.evaluate(facts, [name], T, NOW)] == [OK]
    assert facts.reads == []


def test_evaluate_runs_only_the_wanted_checks_in_order() -> None:
    facts = Facts()
    results = checks.evaluate(facts, ["xid_age", "connect"], T, NOW)
    assert [r.name for r in results] == ["connect", "xid_age"]
    assert set(facts.reads) == {"table"}
    assert checks.evaluate(Facts(), ["connect"], T, NOW)[0].summary == "PostgreSQL 16.4 (primary)"


# --- future_rows: how far ahead of the server's clock the newest row is (5m / 1d) ---------------

MIN = 60
LATEST = dt.datetime(2024, 5, 2, 8, 30, tzinfo=dt.timezone(dt.timedelta(hours=-4)))


@pytest.mark.parametrize(
    ("ahead", "expected"),
    [
        (0, OK),
        (5 * MIN - 1, OK),
        (5 * MIN, WARNING),
        (5 * MIN + 1, WARNING),
        (DAY - 1, WARNING),
        (DAY, CRITICAL),
        (DAY + 1, CRITICAL),
        (-3.0, OK),  # dated after now() when counted, and now() moved on: not ahead any more
    ],
)
def test_future_rows(ahead: float, expected: State) -> None:
    r = row_judges.future_rows(FutureRows(12, LATEST, ahead), T, NOW)
    assert (r.name, r.state) == ("future_rows", expected)
    assert (r.value, r.warning, r.critical) == (round(max(ahead, 0)), 5 * MIN, DAY)
    assert r.summary.startswith("12 rows are dated in the future, up to 2024-05-02 08:30:00-04:00")
    assert r.perfdata() == f"future_rows={round(max(ahead, 0))};300;86400"


def test_future_rows_none_and_one() -> None:
    r = row_judges.future_rows(FutureRows(0, None, None), T, NOW)
    assert (r.state, r.summary, r.value) == (OK, "no row is dated after the server's clock", 0)
    r = row_judges.future_rows(FutureRows(1, LATEST, 7200), T, NOW)
    assert r.state == WARNING and r.summary.startswith("1 row is dated in the future")
    assert "(2h 0m ahead of the server's clock" in r.summary


def test_future_rows_levels_are_configurable() -> None:
    levels = config.DurationLevels(dt.timedelta(hours=1), dt.timedelta(hours=2))
    t = Thresholds(replace(CheckConfig(), future_rows=levels), Schedule())
    judged = [row_judges.future_rows(FutureRows(1, LATEST, s), t, NOW) for s in (3599, 3600, 7200)]
    states = [r.state for r in judged]
    assert states == [OK, WARNING, CRITICAL]


# --- late_rows: what the verify runs of the last check.late_rows (7d) found -----------------------


def _verify(late: int = 0, by: str | None = None, unrepaired: bool = False) -> VerifyRun:
    status: RunStatus = "failed" if unrepaired else "ok"
    return VerifyRun(ago(HOUR), status, late, by, unrepaired)


LOOKBACK = dt.timedelta(days=2)


@pytest.mark.parametrize(
    ("runs", "expected", "summary", "value"),
    [
        ((), OK, "no verify run in the last 1w", 0),
        ((_verify(),), OK, "no rows later than view.lookback 2d found by verify in the last 1w", 0),
        (
            (_verify(3000, "40d 5h"),),
            WARNING,
            "3,000 rows arrived up to 40d 5h late (found by verify at 2024-05-01 11:00:00+00:00):"
            " the rollup is repaired, but view.lookback 2d is too short for this API",
            3000,
        ),
        ((_verify(1, "3d 1h"),), WARNING, "1 row arrived up to 3d 1h late", 1),
        # two runs found some: counted together, how late from the newest
        (
            (_verify(), _verify(12, "3d 0h"), _verify(5, "9d 0h")),
            WARNING,
            "17 rows arrived up to 3d 0h",
            17,
        ),
        (
            (_verify(3000, "40d 5h", unrepaired=True),),
            CRITICAL,
            "the verify run of 2024-05-01 11:00:00+00:00 found days where the rollup differs",
            3000,
        ),
        # repaired by a later run: no longer critical
        (
            (_verify(), _verify(8, "5d 0h", unrepaired=True)),
            WARNING,
            "8 rows arrived up to 5d 0h",
            8,
        ),
    ],
)
def test_late_rows(runs: tuple[VerifyRun, ...], expected: State, summary: str, value: int) -> None:
    r = row_judges.late_rows(LateRowsFacts(True, LOOKBACK, runs), T, NOW)
    assert (r.name, r.state, r.value) == ("late_rows", expected, value)
    assert r.summary.startswith(summary), r.summary
    assert r.perfdata() == f"late_rows={value};1;"


def test_late_rows_without_history_is_unknown() -> None:
    r = row_judges.late_rows(LateRowsFacts(False, LOOKBACK), T, NOW)
    assert (r.state, r.summary) == (UNKNOWN, "no run history (run epstats init)")


# --- latency_p95: each endpoint's p95 against the first rule it matches (off by default) --------


def _latency_thresholds(rules: list[dict[str, object]]) -> Thresholds:
    return Thresholds.of(config.build({"check": {"latency_p95": rules}}))


LATENCY_RULES = [
    {"endpoint": "/api/slow%", "warning": 2000, "critical": 5000},
    {"endpoint": "/api/%", "warning": 500, "critical": 2000},
    {"endpoint": "/health", "warning": 0, "critical": 100},
]


def _latency(*rows: tuple[str, float | None]) -> LatencyFacts:
    return LatencyFacts(
        dt.timedelta(hours=1), "auto", tuple(EndpointLatency(e, p, 10) for e, p in rows)
    )


def test_latency_p95_is_off_without_a_rule() -> None:
    results = checks.evaluate(Facts(), ["latency_p95"], T, NOW)
    assert [(r.state, r.summary) for r in results] == [(OK, "off (check.latency_p95 has no rule)")]


@pytest.mark.parametrize(
    ("rows", "state", "value"),
    [
        ((("/api/users", 499.0),), OK, 0.499),
        ((("/api/users", 500.0),), WARNING, 0.5),
        ((("/api/users", 2000.0),), CRITICAL, 2.0),
        # the first rule that matches judges: /api/slow% before /api/%
        ((("/api/slow/report", 1999.0),), OK, 1.999),
        ((("/api/slow/report", 4000.0), ("/api/users", 600.0)), WARNING, 4.0),
        ((("/health", 150.0), ("/api/users", 600.0)), CRITICAL, 0.15),
        # no response time in the window, or no rule for the endpoint: not judged
        ((("/api/users", None), ("/other", 99999.0)), OK, None),
    ],
)
def test_latency_p95_judges_each_endpoint_by_its_first_rule(
    rows: tuple[tuple[str, float | None], ...], state: State, value: float | None
) -> None:
    t = _latency_thresholds(LATENCY_RULES)
    r = row_judges.latency_p95(_latency(*rows), t, NOW)
    assert (r.name, r.state, r.value) == ("latency_p95", state, value)


def test_latency_p95_perfdata_has_every_endpoint_past_its_level_and_small_thresholds() -> None:
    t = _latency_thresholds([{"endpoint": "/api/%", "warning": 0.001, "critical": 0}])
    facts = _latency(*((f"/api/{i}", 30.0 + i) for i in range(8)))
    r = row_judges.latency_p95(facts, t, NOW)
    assert r.state == WARNING
    assert r.summary.startswith("p95 over the last 1h: /api/7 37 ms (warning from 0.001), ")
    assert r.summary.endswith(" and 3 more; 0 of 8 endpoints within their thresholds")
    assert len(r.extra) == 8  # the line names 5; the perfdata has them all
    assert r.extra[0].nagios() == "latency_p95_endpoint[/api/7]=0.037;0.000001;"


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_latency_p95_of_nan_or_infinite_response_times_is_critical_with_valid_perfdata(
    bad: float,
) -> None:
    """Bad data (NaN or infinite response times) gives a NaN or infinite p95: judged past
    every threshold, never "within", and its perfdata value is U (undetermined), which
    Nagios reads, never `nan` or `inf`."""
    t = _latency_thresholds(LATENCY_RULES)
    r = row_judges.latency_p95(_latency(("/api/bad", bad), ("/api/ok", 20.0)), t, NOW)
    assert r.state == CRITICAL
    assert "/api/bad" in r.summary and "1 of 2 endpoints within" in r.summary
    assert [p.nagios() for p in r.extra] == ["latency_p95_endpoint[/api/bad]=U;0.5;2"]
    assert r.perfdata() == "latency_p95=U;0.5;2 latency_p95_endpoint[/api/bad]=U;0.5;2"


def test_latency_p95_names_every_endpoint_past_its_threshold() -> None:
    t = _latency_thresholds(LATENCY_RULES)
    facts = _latency(("/api/a", 2500.0), ("/api/b", 700.0), ("/api/c", 20.0), ("/health", 5.0))
    r = row_judges.latency_p95(facts, t, NOW)
    assert r.state == CRITICAL
    assert r.summary == (
        "p95 over the last 1h: /api/a 2,500 ms (critical from 2,000), "
        "/api/b 700 ms (warning from 500); 2 of 4 endpoints within their thresholds"
    )
    assert (r.value, r.warning, r.critical, r.unit) == (2.5, 0.5, 2.0, "seconds")
    assert [p.nagios() for p in r.extra] == [
        "latency_p95_endpoint[/api/a]=2.5;0.5;2",
        "latency_p95_endpoint[/api/b]=0.7;0.5;2",
    ]
    ok = row_judges.latency_p95(_latency(("/api/c", 20.0)), t, NOW)
    assert ok.summary == (
        "p95 over the last 1h: 1 endpoint(s) within their thresholds "
        "(nearest: /api/c 20 ms (warning from 500))"
    )
    quiet = row_judges.latency_p95(_latency(), t, NOW)
    assert quiet.summary == (
        "no endpoint like /api/slow%, /api/%, /health had a response time in the last 1h"
    )


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        ("/api/%", "/api/users", True),
        ("/api/%", "/apix", False),
        ("/api/_", "/api/1", True),
        ("/api/_", "/api/12", False),
        ("100\\%", "100%", True),
        ("100\\%", "1000", False),
        ("a.b", "axb", False),
        ("%", "", True),
    ],
)
def test_like_reads_patterns_as_postgresql_does(pattern: str, text: str, matches: bool) -> None:
    assert like(pattern, text) is matches


def test_latency_p95_rules_are_validated() -> None:
    with pytest.raises(ConfigError) as exc:
        config.build(
            {"check": {"latency_p95": [{"endpoint": "/a", "warning": 900, "critical": 10}]}}
        )
    assert "check.latency_p95[0].critical: 10 ms is below warning 900 ms" in str(exc.value)
