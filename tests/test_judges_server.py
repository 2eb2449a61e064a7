"""The judges of long_transactions, ingest_stalled, connections, replication_lag, database_size
and sequence_exhaustion at every threshold boundary, without a database (their gatherers run
against real servers in tests/test_check_server.py)."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import pytest

from epstats_cli import config
from epstats_cli.advise import rules
from epstats_cli.config import CheckConfig, Schedule
from epstats_cli.errors import ConfigError
from epstats_cli.health import replication_judges, row_judges, server_judges
from epstats_cli.health.result import CheckResult, Perf, State, Thresholds, nagios_line
from epstats_cli.health.server_facts import (
    ConnectionFacts,
    Holder,
    HolderKind,
    IngestFacts,
    ReplicationFacts,
    SequenceFacts,
    StandbyLag,
    TableSequences,
    TransactionFacts,
    ingest_window,
)
from tests.test_judges import SERVER

OK, WARNING, CRITICAL, UNKNOWN = State.OK, State.WARNING, State.CRITICAL, State.UNKNOWN
NOW = dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
T = Thresholds(CheckConfig(), Schedule())
MIN, HOUR = 60, 3600
GIB = rules.GIB


def _with(**check: object) -> Thresholds:
    return Thresholds(replace(CheckConfig(), **check), Schedule())  # type: ignore[arg-type]


# --- long_transactions: 15m / 1h -------------------------------------------------------------


def _session(age: float, idle: bool = True, pid: int = 42) -> Holder:
    kind: HolderKind = "idle in transaction" if idle else "transaction"
    return Holder(kind, pid, "alice", "psql", None, age, 7)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (0, OK),
        (15 * MIN - 1, OK),
        (15 * MIN, WARNING),
        (HOUR - 1, WARNING),
        (HOUR, CRITICAL),
        (HOUR + 1, CRITICAL),
    ],
)
def test_long_transactions(age: float, expected: State) -> None:
    r = server_judges.long_transactions(TransactionFacts((_session(age),)), T, NOW)
    assert (r.name, r.state, r.value, r.unit) == ("long_transactions", expected, age, "seconds")
    assert r.summary.startswith("oldest: pid 42 (alice, application 'psql') has been idle in")
    assert r.perfdata() == f"long_transactions={age};900;3600"


def test_long_transactions_none() -> None:
    r = server_judges.long_transactions(TransactionFacts(()), T, NOW)
    assert (r.state, r.value) == (OK, 0)
    assert r.summary == "no open transaction, prepared transaction or inactive slot holds back xmin"
    r = server_judges.long_transactions(TransactionFacts((), hidden=2, role="mon"), T, NOW)
    said = "2 session(s) of other roles could not be seen (GRANT pg_read_all_stats TO mon)"
    assert r.state == OK and r.summary.endswith(f"; {said}")
    assert r.caveat == said
    assert nagios_line([r]) == (
        f"EPSTATS OK - 1 checks OK; long_transactions: {said} | long_transactions=0;900;3600"
    )


def test_long_transactions_counts_a_session_idle_in_a_failed_transaction() -> None:
    failed = Holder("failed transaction", 9, "carol", "etl", None, 20 * MIN, None)
    r = server_judges.long_transactions(TransactionFacts((failed,)), T, NOW)
    assert (r.state, r.value) == (WARNING, 20 * MIN)
    assert r.summary == (
        "oldest: pid 9 (carol, application 'etl') has been idle in a failed transaction for "
        "20m 0s (since its error; it waits for a ROLLBACK)"
    )


@pytest.mark.parametrize(
    ("xid_age", "expected"),
    [(5, OK), (160_000_000 - 1, OK), (160_000_000, WARNING), (240_000_000, CRITICAL)],
)
def test_long_transactions_active_slot_by_xid_age(xid_age: int, expected: State) -> None:
    """An active slot's age in time is not known: its xmin is judged in transactions, against
    check.xid_age_ratio (0.8 / 1.2) x autovacuum_freeze_max_age (200M here)."""
    slot = Holder("active replication slot", 77, None, None, "s1", None, xid_age)
    r = server_judges.long_transactions(TransactionFacts((slot,)), T, NOW)
    assert (r.state, r.value) == (expected, 0)
    assert r.summary == (
        "no open transaction, prepared transaction or inactive slot holds back xmin; active "
        f"replication slot s1 (pid 77) holds back xmin by {xid_age:,} transactions "
        "(hot_standby_feedback: the oldest snapshot on its standby)"
    )
    assert r.extra == [
        Perf(
            "long_transactions_slot_xmin_age", xid_age, 160_000_000, 240_000_000,
            labels=(("slot", "s1"),),
        )
    ]  # fmt: skip


def test_long_transactions_names_the_oldest_and_counts_the_rest() -> None:
    prepared = Holder("prepared transaction", None, "bob", None, "tx-1", 2 * HOUR, 99)
    facts = TransactionFacts((_session(20 * MIN, idle=False, pid=7), prepared, _session(60)))
    r = server_judges.long_transactions(facts, T, NOW)
    assert r.state == CRITICAL and r.value == 2 * HOUR
    assert r.summary == (
        "oldest: prepared transaction 'tx-1' of bob has been open for 2h 0m (COMMIT PREPARED "
        "or ROLLBACK PREPARED it); 1 more open over 15m"
    )
    r = server_judges.long_transactions(TransactionFacts((_session(20 * MIN, False, 7),)), T, NOW)
    assert "pid 7 (alice, application 'psql') has been in a transaction for 20m 0s" in r.summary


@pytest.mark.parametrize(
    ("age", "expected", "said"),
    [
        (None, WARNING, "inactive (since when, this PostgreSQL does not record)"),
        (60.0, OK, "inactive for 1m 0s"),
        (2 * HOUR, CRITICAL, "inactive for 2h 0m"),
    ],
)
def test_long_transactions_inactive_slot(age: float | None, expected: State, said: str) -> None:
    slot = Holder("replication slot", None, None, None, "standby1", age, 123456)
    r = server_judges.long_transactions(TransactionFacts((slot,)), T, NOW)
    assert r.state == expected
    assert f"replication slot standby1 is {said} and holds back xmin by 123,456" in r.summary


# --- ingest_stalled: 15m / 1h, 0 turns a level off ----------------------------------------------


def _newest(age: float, window: dt.timedelta = dt.timedelta(hours=1)) -> IngestFacts:
    return IngestFacts(window, NOW - dt.timedelta(seconds=age), age)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (0, OK),
        (15 * MIN - 1, OK),
        (15 * MIN, WARNING),
        (HOUR - 1, WARNING),
        (HOUR, CRITICAL),
    ],
)
def test_ingest_stalled(age: float, expected: State) -> None:
    r = row_judges.ingest_stalled(_newest(age), T, NOW)
    assert (r.name, r.state, r.value, r.unit) == ("ingest_stalled", expected, age, "seconds")
    assert r.summary.startswith("newest row dated 2024-05-01 ")
    assert ("has the API stopped logging?" in r.summary) == (expected != OK)
    assert r.perfdata() == f"ingest_stalled={age};900;3600"


def test_ingest_stalled_without_a_row_in_the_window() -> None:
    r = row_judges.ingest_stalled(IngestFacts(dt.timedelta(hours=1), None, None), T, NOW)
    assert (r.state, r.value) == (CRITICAL, HOUR)
    assert r.summary == (
        "no row in the last 1h (it looks no further back: the age is at least 1h): has the "
        "API stopped logging?"
    )


def test_ingest_stalled_levels_of_zero_are_off() -> None:
    quarter, zero = dt.timedelta(minutes=15), dt.timedelta(0)
    warn_only = _with(ingest_stalled=config.DurationLevels(quarter, zero))
    assert ingest_window((quarter, zero)) == quarter
    r = row_judges.ingest_stalled(IngestFacts(quarter, None, None), warn_only, NOW)
    assert (r.state, r.value, r.warning, r.critical) == (WARNING, 15 * MIN, 15 * MIN, None)
    assert r.perfdata() == "ingest_stalled=900;900;"
    off = _with(ingest_stalled=config.DurationLevels(zero, zero))
    assert ingest_window((zero, zero)) == zero
    r = row_judges.ingest_stalled(IngestFacts(zero, None, None), off, NOW)
    assert (r.state, r.summary, r.value) == (OK, "off (check.ingest_stalled is 0)", None)


def test_ingest_stalled_configuration() -> None:
    cfg = config.build({"check": {"ingest_stalled": {"warning": "15m", "critical": 0}}})
    assert config.as_dict(cfg)["check"]["ingest_stalled"] == {"warning": "15m", "critical": "0s"}
    with pytest.raises(ConfigError) as err:
        config.build({"check": {"ingest_stalled": {"warning": "1h", "critical": "15m"}}})
    assert "check.ingest_stalled.critical: 15m is below warning 1h" in str(err.value.problems)


# --- connections: 0.8 / 0.95 of max_connections less the reserved ones -------------------------


@pytest.mark.parametrize(
    ("used", "expected"), [(0, OK), (79, OK), (80, WARNING), (94, WARNING), (95, CRITICAL)]
)
def test_connections(used: int, expected: State) -> None:
    r = server_judges.connections(ConnectionFacts(used, 103, 3), T, NOW)
    assert (r.name, r.state, r.value, r.unit) == ("connections", expected, used / 100, "ratio")
    assert r.summary.startswith(
        f"{used} of 100 connections in use ({used}%; max_connections 103 less 3 reserved)"
    )
    perf = f"connections={used / 100:g};0.8;0.95 connections_used={used};; "
    assert r.perfdata() == perf + "connections_available=100;; connections_pool_need=105;;"


def test_connections_say_whether_the_guides_pools_fit() -> None:
    tight = server_judges.connections(ConnectionFacts(5, 100, 3), T, NOW)
    assert tight.state == OK and tight.summary.endswith(
        "; the guide's pools would need 105 (5 pods x 20 + 5 admin): cap the pool at 18 per "
        "pod, raise max_connections or put PgBouncer in front (epstats advise)"
    )
    roomy = server_judges.connections(ConnectionFacts(5, 108, 3), T, NOW)
    assert roomy.summary.endswith("; the guide's pools fit (5 pods x 20 + 5 admin)")


# --- replication_lag: 1m / 5m ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("lag", "expected"),
    [(None, OK), (0.5, OK), (59.9, OK), (60, WARNING), (299, WARNING), (300, CRITICAL)],
)
def test_replication_lag_on_a_primary(lag: float | None, expected: State) -> None:
    standbys = (StandbyLag("s1", "streaming", lag, 4096), StandbyLag("s2", "streaming", None, 0))
    r = replication_judges.replication_lag(ReplicationFacts(False, standbys), T, NOW)
    assert (r.name, r.state, r.value, r.unit) == ("replication_lag", expected, lag or 0, "seconds")
    said = "caught up" if lag is None else "replays"
    assert r.summary.startswith(f"2 standbys: s1 {said}")
    assert r.summary.endswith("s2 caught up")
    assert [(p.label, p.labels, p.unit) for p in r.extra] == [
        ("replication_lag_standby", (("standby", "s1"),), "seconds"),
        ("replication_lag_standby", (("standby", "s2"),), "seconds"),
        ("replication_behind", (("standby", "s1"),), "bytes"),
        ("replication_behind", (("standby", "s2"),), "bytes"),
    ]
    assert f"replication_lag_standby[s1]={lag or 0:g};60;300" in (r.perfdata() or "")


def test_standbys_of_the_same_name_are_told_apart() -> None:
    """The steadiest thing that tells each apart from the others of its name: its slot, its
    address, its address and port, its pid."""
    standbys = (
        StandbyLag("walreceiver", "streaming", 400.0, 0, 11, "10.0.0.1", 5001, None),
        StandbyLag("walreceiver", "streaming", None, 0, 12, "10.0.0.1", 5002, "s2"),
        StandbyLag("walreceiver", "streaming", None, 0, 13, "10.0.0.1", 5003, None),
        StandbyLag("walreceiver", "streaming", None, 0, 14, "10.0.0.9", None, None),
        StandbyLag("walreceiver", "streaming", None, 0, 15, None, None, None),
        StandbyLag("reports", "streaming", None, 0, 16, "10.0.0.1", 5004, None),
    )
    assert replication_judges.standby_names(standbys) == [
        "walreceiver (10.0.0.1:5001)",
        "walreceiver (slot s2)",
        "walreceiver (10.0.0.1:5003)",
        "walreceiver (10.0.0.9)",
        "walreceiver (pid 15)",
        "reports",
    ]
    r = replication_judges.replication_lag(ReplicationFacts(False, standbys[:3]), T, NOW)
    assert r.state == CRITICAL  # the lagging one is not hidden behind its twins
    assert r.summary.startswith("3 standbys: walreceiver (10.0.0.1:5001) replays 6m 40s behind;")
    series = [(p.label, p.labels) for p in r.extra]
    assert len(series) == len(set(series)) == 6


def test_replication_lag_without_standbys_or_the_right_to_see_them() -> None:
    r = replication_judges.replication_lag(ReplicationFacts(False), T, NOW)
    assert (r.state, r.summary, r.value) == (OK, "no standbys", 0)
    hidden = StandbyLag("s1", None, None, None)
    r = replication_judges.replication_lag(ReplicationFacts(False, (hidden,)), T, NOW)
    assert r.state == UNKNOWN and "cannot see their lag (grant pg_read_all_stats" in r.summary
    seen = StandbyLag("s2", "catchup", 400.0, 10 * 1024 * 1024)
    r = replication_judges.replication_lag(ReplicationFacts(False, (hidden, seen)), T, NOW)
    assert r.state == CRITICAL
    assert r.summary == (
        "2 standbys: s2 (catchup) replays 6m 40s behind, 10.0 MB of WAL to replay; "
        "1 more not visible (grant pg_read_all_stats to see them)"
    )


@pytest.mark.parametrize(
    ("receiving", "behind", "lag", "expected", "said"),
    [
        (True, False, 9999.0, OK, "this standby has replayed all the WAL it received"),
        (False, False, None, UNKNOWN, "no WAL receiver streams"),
        (True, True, 59.0, OK, "this standby replays 59s behind the primary"),
        (True, True, 60.0, WARNING, "replays 1m 0s behind"),
        (True, True, 300.0, CRITICAL, "replays 5m 0s behind"),
        (False, True, 30.0, UNKNOWN, "no WAL receiver streams (cut off from the primary?)"),
        (False, True, 600.0, CRITICAL, "no WAL receiver streams"),
        (
            None,
            False,
            None,
            UNKNOWN,
            "cannot see pg_stat_wal_receiver, so whether WAL still "
            "arrives is unknown (GRANT pg_read_all_stats TO mon)",
        ),
        (None, True, 30.0, UNKNOWN, "GRANT pg_read_all_stats TO mon"),
        (None, True, 600.0, CRITICAL, "GRANT pg_read_all_stats TO mon"),
        (True, True, None, UNKNOWN, "no transaction was replayed since the standby started"),
    ],
)
def test_replication_lag_on_a_standby(
    receiving: bool | None, behind: bool, lag: float | None, expected: State, said: str
) -> None:
    """receiving None: this role cannot see pg_stat_wal_receiver (it sees the pid only)."""
    facts = ReplicationFacts(
        True,
        receiving=bool(receiving),
        receiver_hidden=receiving is None,
        role="mon",
        behind=behind,
        lag_seconds=lag,
    )
    r = replication_judges.replication_lag(facts, T, NOW)
    assert r.state == expected and said in r.summary, r.summary


# --- database_size: the guide's tiers (10 GB, 50 GB), WARNING within 10 % below a boundary -------


@pytest.mark.parametrize(
    ("size", "tier", "expected"),
    [
        (0, 1, OK),
        (9 * GIB - 1, 1, OK),
        (9 * GIB, 1, WARNING),
        (10 * GIB - 1, 1, WARNING),
        (10 * GIB, 2, OK),
        (45 * GIB - 1, 2, OK),
        (45 * GIB, 2, WARNING),
        (50 * GIB, 2, WARNING),
        (50 * GIB + 1, 3, OK),
        (500 * GIB, 3, OK),
    ],
)
def test_database_size(size: int, tier: int, expected: State) -> None:
    r = server_judges.database_size(replace(SERVER, database_bytes=size), T, NOW)
    assert (r.name, r.state, r.value, r.unit) == ("database_size", expected, size, "bytes")
    assert f": tier {tier} of the guide ({server_judges.TIER_NAMES[tier - 1]}: " in r.summary
    cpu, mem = rules.postgres_tier(size)  # advise's figures for this tier
    assert f"cpu {cpu}m, memory {mem}Mi)" in r.summary
    assert r.extra == [Perf("database_size_tier", tier)]
    if expected == WARNING:
        next_cpu, next_mem = rules.POSTGRES_TIERS[tier][1:]
        assert r.summary.endswith(
            f"time to resize to the next tier (cpu {next_cpu}m, memory {next_mem}Mi; "
            "epstats advise)"
        )
    warn = {1: 9 * GIB, 2: 45 * GIB}.get(tier)
    assert r.perfdata() == f"database_size={size};{warn or ''}; database_size_tier={tier};;"


def test_database_size_tier_boundaries_are_advise_s() -> None:
    for number, boundary in enumerate(server_judges.TIER_BOUNDARIES, start=1):
        inside = boundary - 1 if number == 1 else boundary  # 10 GB starts tier 2; 50 GB is in it
        assert rules.postgres_tier(inside) == rules.POSTGRES_TIERS[number - 1][1:]
        assert rules.postgres_tier(inside + 1) == rules.POSTGRES_TIERS[number][1:]


def test_database_size_margin_is_configurable() -> None:
    small = replace(SERVER, database_bytes=8 * 1024 * 1024)
    assert server_judges.database_size(small, _with(database_size=1.0), NOW).state == WARNING
    near = replace(SERVER, database_bytes=10 * GIB - 1)
    r = server_judges.database_size(near, _with(database_size=0.0), NOW)
    assert (r.state, r.warning) == (OK, None)
    with pytest.raises(ConfigError):
        config.build({"check": {"database_size": 1.5}})


# --- sequence_exhaustion: 75 % / 90 % of min(the sequence's limit, its column type's) --------

INT_MAX = 2**31 - 1
BIG_MAX = 2**63 - 1


def _seq(
    last: int | None,
    column_type: str = "integer",
    max_value: int = BIG_MAX,
    increment: int = 1,
    readable: bool = True,
    name: str = "public.requests_id_seq",
) -> SequenceFacts:
    limits = {
        "integer": (-(2**31), INT_MAX),
        "bigint": (-(2**63), BIG_MAX),
        "numeric": (None, None),
    }
    low, high = limits[column_type]
    min_value = 1 if increment > 0 else -BIG_MAX
    return SequenceFacts(
        name, "id", column_type, low, high, min_value, max_value, increment, False, readable, last
    )


def _table(*seqs: SequenceFacts) -> TableSequences:
    return TableSequences("public.requests", seqs)


@pytest.mark.parametrize(
    ("last", "expected"),
    [
        (None, OK),
        (1, OK),
        (int(INT_MAX * 0.75), OK),
        (int(INT_MAX * 0.75) + 1, WARNING),
        (int(INT_MAX * 0.9), WARNING),
        (int(INT_MAX * 0.9) + 1, CRITICAL),
        (INT_MAX, CRITICAL),
    ],
)
def test_sequence_exhaustion_at_the_integer_column_s_limit(
    last: int | None, expected: State
) -> None:
    """A bigint sequence feeding an integer column: the column's type is the limit."""
    r = server_judges.sequence_exhaustion(_table(_seq(last)), T, NOW)
    assert (r.name, r.state, r.unit) == ("sequence_exhaustion", expected, "ratio")
    assert r.value == round((last or 0) / INT_MAX, 6)
    at = "unused" if last is None else f"at {last:,}"
    assert r.summary.startswith(
        f"public.requests_id_seq (id integer) {at} of 2,147,483,647, the integer column's limit"
    )
    assert ("ALTER the column to bigint" in r.summary) == (expected != OK)


def test_sequence_exhaustion_at_the_sequence_s_own_limit() -> None:
    r = server_judges.sequence_exhaustion(_table(_seq(900, "bigint", max_value=1000)), T, NOW)
    assert (r.state, r.value) == (CRITICAL, 0.9)
    assert r.summary == (
        "public.requests_id_seq (id bigint) at 900 of 1,000, its MAXVALUE: 90.0% used "
        "(raise it with ALTER SEQUENCE before INSERTs stop)"
    )
    r = server_judges.sequence_exhaustion(_table(_seq(900, "numeric", max_value=1000)), T, NOW)
    assert r.state == CRITICAL and "its MAXVALUE" in r.summary


def test_sequence_exhaustion_descending() -> None:
    r = server_judges.sequence_exhaustion(_table(_seq(-(2**31) + 10, increment=-1)), T, NOW)
    assert r.state == CRITICAL and "of -2,147,483,648, the integer column's limit" in r.summary


def test_sequence_exhaustion_the_fullest_of_several_and_the_unreadable() -> None:
    low = _seq(5, name="public.a")
    high = _seq(int(INT_MAX * 0.8), name="public.b")
    denied = _seq(None, readable=False, name="public.c")
    r = server_judges.sequence_exhaustion(_table(low, high, denied), T, NOW)
    assert r.state == WARNING and r.summary.startswith("public.b (id integer) at ")
    assert "; 1 more sequence(s) below that; this role may not read public.c" in r.summary
    assert [p.labels for p in r.extra] == [
        (("sequence", "public.b"), ("column", "id")),
        (("sequence", "public.a"), ("column", "id")),
    ]
    r = server_judges.sequence_exhaustion(_table(low, denied), T, NOW)
    assert r.state == UNKNOWN  # nothing worse, and public.c could not be judged
    r = server_judges.sequence_exhaustion(_table(denied), T, NOW)
    assert (r.state, r.summary) == (
        UNKNOWN,
        "cannot check: this role may not read public.c (grant SELECT on it)",
    )
    r = server_judges.sequence_exhaustion(_table(), T, NOW)
    assert (r.state, r.summary, r.value) == (OK, "no sequence feeds public.requests", 0)


# --- perfdata with labels -------------------------------------------------------------------


def test_labelled_perfdata_and_its_quoting() -> None:
    assert (
        Perf("lag", 1.5, 60, 300, "seconds", (("standby", "s1"),)).nagios() == "lag[s1]=1.5;60;300"
    )
    odd = Perf("used", 0.5, labels=(("sequence", "public.my seq='x'"),))
    assert odd.nagios() == "'used[public.my seqx]'=0.5;;"
    result = CheckResult("c", OK, "", 1, extra=[Perf("c_more", 2)])
    assert result.perfdata() == "c=1;; c_more=2;;"
    assert result.as_dict()["extra_perfdata"] == [
        {"label": "c_more", "value": 2, "warning": None, "critical": None, "unit": "", "labels": {}}
    ]
