"""replication_lag on a real primary and its streaming standby (pg_basebackup), made to lag
with recovery_min_apply_delay; and an inactive replication slot holding back xmin
(long_transactions). PostgreSQL 15 only: a second server per version would cost more than it
tells."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Server, _versions, run_cli, wait_for_replay
from tests.pgcluster import Cluster, bin_dirs, create_cluster, create_standby

DB = "lagging"


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, Cluster, str]]:
    """A PostgreSQL 15 primary with the epstats schema and table in DB, its hot standby
    (caught up), and a configuration file whose replication_lag warns from 1s."""
    if 15 not in _versions() or 15 not in bin_dirs():
        pytest.skip("the replication tests run on PostgreSQL 15")
    primary = create_cluster(15, bin_dirs()[15])
    standby: Cluster | None = None
    try:
        with psycopg.connect(primary.dsn, autocommit=True) as c:
            c.execute(f"CREATE DATABASE {DB}")
        cfg = tmp_path_factory.mktemp("replication") / "c.yaml"
        cfg.write_text("check: {replication_lag: {warning: 1s, critical: 1h}}\n")
        dsn = primary.dsn_for(DB)
        assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
        with psycopg.connect(primary.dsn, autocommit=True) as c:
            c.execute("CHECKPOINT")  # else pg_basebackup's spread checkpoint takes minutes
        standby = create_standby(primary)
        with psycopg.connect(dsn, autocommit=True) as c:  # a commit the standby replays
            c.execute("INSERT INTO requests VALUES ('/a', now(), 1, 200)")
        wait_for_replay(primary.dsn, Server(standby.dsn, 15, standby), DB)
        yield primary, standby, str(cfg)
    finally:
        if standby is not None:
            standby.destroy()
        primary.destroy()


def _lag(cfg: str, dsn: str, only: str = "replication_lag") -> tuple[int, dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "check", "--only", only)
    assert "Traceback" not in r.stderr, r.stderr
    return r.code, json.loads(r.stdout)["checks"][0]


def _until(what: Callable[[], tuple[int, dict[str, Any]]], state: str) -> dict[str, Any]:
    """Ask again until the check says `state` (the standby reports every few seconds)."""
    deadline = time.monotonic() + 60
    while True:
        _code, check = what()
        if check["state"] == state or time.monotonic() > deadline:
            return check
        time.sleep(0.5)


def test_replication_lag_both_ways(pair: tuple[Cluster, Cluster, str]) -> None:
    primary, standby, cfg = pair
    on_primary, on_standby = primary.dsn_for(DB), standby.dsn_for(DB)
    # caught up: OK on both sides, although the last replayed commit is older than 1s
    time.sleep(1.1)
    code, c = _lag(cfg, on_standby)
    assert (code, c["state"]) == (0, "OK"), c
    assert c["message"] == "this standby has replayed all the WAL it received"
    check = _until(lambda: _lag(cfg, on_primary), "OK")
    assert check["state"] == "OK" and check["message"].startswith("1 standby: walreceiver ")
    # the standby now holds back what it receives for an hour
    with psycopg.connect(standby.dsn, autocommit=True) as s:
        s.execute("ALTER SYSTEM SET recovery_min_apply_delay = '1h'")
        s.execute("SELECT pg_reload_conf()")
    try:
        with psycopg.connect(on_primary, autocommit=True) as p:
            p.execute("INSERT INTO requests VALUES ('/b', now(), 1, 200)")
        check = _until(lambda: _lag(cfg, on_standby), "WARNING")
        assert check["state"] == "WARNING", check
        assert check["message"].startswith("this standby replays ")
        assert " behind the primary, " in check["message"]
        assert check["perfdata"]["value"] >= 1
        check = _until(lambda: _lag(cfg, on_primary), "WARNING")
        assert check["state"] == "WARNING", check
        assert check["message"].startswith("1 standby: walreceiver replays ")
        assert check["extra_perfdata"][0]["labels"] == {"standby": "walreceiver"}
        r = run_cli("-c", cfg, "--dsn", on_primary, "check", "--only", "replication_lag")
        assert r.code == 1 and "replication_lag_standby[walreceiver]=" in r.stdout
    finally:
        with psycopg.connect(standby.dsn, autocommit=True) as s:
            s.execute("ALTER SYSTEM RESET recovery_min_apply_delay")
            s.execute("SELECT pg_reload_conf()")


def test_standbys_of_the_same_name_are_told_apart(pair: tuple[Cluster, Cluster, str]) -> None:
    """pg_basebackup -R standbys all connect as "walreceiver": each keeps its own lag, its own
    perfdata label and its own OpenMetrics series (the lagging one is not hidden by the other)."""
    from prometheus_client.openmetrics.parser import text_string_to_metric_families

    primary, _standby, cfg = pair
    on_primary = primary.dsn_for(DB)
    with psycopg.connect(primary.dsn, autocommit=True) as c:
        c.execute("CHECKPOINT")
    twin = create_standby(primary)
    try:
        with psycopg.connect(twin.dsn, autocommit=True) as s:
            s.execute("ALTER SYSTEM SET recovery_min_apply_delay = '1h'")
            s.execute("SELECT pg_reload_conf()")
        with psycopg.connect(primary.dsn, autocommit=True) as p:
            rows = p.execute("SELECT DISTINCT application_name FROM pg_stat_replication").fetchall()
        assert rows == [("walreceiver",)]  # the same name, twice
        with psycopg.connect(on_primary, autocommit=True) as p:
            p.execute("INSERT INTO requests VALUES ('/twin', now(), 1, 200)")
        check = _until(lambda: _lag(cfg, on_primary), "WARNING")
        assert check["state"] == "WARNING", check
        assert check["message"].startswith("2 standbys: walreceiver (127.0.0.1:"), check
        assert check["message"].count("walreceiver (127.0.0.1:") == 2, check
        labels = [p["labels"]["standby"] for p in check["extra_perfdata"]]
        assert len(labels) == 4 and len(set(labels)) == 2, labels
        r = run_cli("-c", cfg, "--dsn", on_primary, "check", "--only", "replication_lag")
        names = re.findall(r"('[^']*'|[^\s=]+)=", r.stdout.split(" | ", 1)[1])  # Nagios labels
        assert len(names) == len(set(names)) == 5, names
        assert sum(n.startswith("'replication_lag_standby[walreceiver (127.") for n in names) == 2
        r = run_cli(
            "-c", cfg, "--dsn", on_primary, "--format", "openmetrics", "check",
            "--only", "replication_lag",
        )  # fmt: skip
        families = {f.name: f for f in text_string_to_metric_families(r.stdout)}  # type: ignore[no-untyped-call]
        series = [
            s.labels["standby"] for s in families["epstats_replication_lag_standby_seconds"].samples
        ]
        assert len(series) == 2 and len(set(series)) == 2, series
    finally:
        twin.destroy()


def test_statistics_of_a_standby_are_judged_on_the_primary(
    pair: tuple[Cluster, Cluster, str],
) -> None:
    """Vacuum and analyze times and dead tuples are counted per node: a hot standby's
    pg_stat_user_tables says "never" for a table the primary analyzed and vacuumed."""
    primary, standby, cfg = pair
    on_primary = primary.dsn_for(DB)
    with psycopg.connect(on_primary, autocommit=True) as p:
        p.execute("SET synchronous_commit = on")  # flushed, so that the standby can replay it
        p.execute("INSERT INTO requests SELECT '/s', now(), 1, 200 FROM generate_series(1, 500)")
        p.execute("VACUUM ANALYZE requests")
    on_standby = wait_for_replay(primary.dsn, Server(standby.dsn, 15, standby), DB)
    with psycopg.connect(on_standby) as s:
        row = s.execute(
            "SELECT reltuples, last_analyze, last_vacuum FROM pg_class "
            "JOIN pg_stat_user_tables s ON s.relid = pg_class.oid WHERE s.relname = 'requests'"
        ).fetchone()
    assert row is not None and row[0] > 0 and row[1:] == (None, None)  # per node
    r = run_cli("-c", cfg, "--dsn", on_standby, "--format", "json", "check", "--only",
                "analyze_age,vacuum_age,dead_tuples")  # fmt: skip
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    assert r.code == 0, checks
    for name in ("analyze_age", "vacuum_age", "dead_tuples"):
        assert checks[name]["state"] == "OK", checks[name]
        assert checks[name]["message"] == (
            "judged on the primary (statistics are per node: this is a standby)"
        )
    _code, c = _lag(cfg, on_primary, "analyze_age")  # the primary's own are judged
    assert c["message"].startswith("last analyzed "), c


def test_a_standby_role_that_cannot_see_the_wal_receiver(
    pair: tuple[Cluster, Cluster, str],
) -> None:
    """Without pg_read_all_stats, pg_stat_wal_receiver shows the receiver's pid only: that is
    not a standby cut off from its primary."""
    primary, standby, cfg = pair
    with psycopg.connect(primary.dsn_for(DB), autocommit=True) as p:
        p.execute("SET synchronous_commit = on")  # flushed, so that the standby can replay it
        p.execute("DROP ROLE IF EXISTS lag_watcher")
        p.execute("CREATE ROLE lag_watcher LOGIN PASSWORD 'watch-pw'")
    wait_for_replay(primary.dsn, Server(standby.dsn, 15, standby), DB)
    watcher = standby.dsn_for(DB, user="lag_watcher", password="watch-pw")
    code, c = _lag(cfg, watcher)
    assert (code, c["state"]) == (3, "UNKNOWN"), c
    assert c["message"] == (
        "this standby has replayed all the WAL it received; this role cannot see "
        "pg_stat_wal_receiver, so whether WAL still arrives is unknown "
        "(GRANT pg_read_all_stats TO lag_watcher)"
    )
    code, c = _lag(cfg, standby.dsn_for(DB))  # a superuser sees it stream
    assert (code, c["state"]) == (0, "OK"), c


def test_an_inactive_slot_holding_back_xmin(
    pair: tuple[Cluster, Cluster, str], tmp_path: Path
) -> None:
    """The standby reports its xmin through a slot (hot_standby_feedback); once it stops, the
    slot keeps that xmin and holds back vacuum on the primary. Stops the standby: runs last."""
    primary, standby, _cfg = pair
    on_primary = primary.dsn_for(DB)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("check: {long_transactions: {warning: 1h, critical: 2h}}\n")
    code, c = _lag(str(cfg), on_primary, "long_transactions")
    assert (code, c["state"]) == (0, "OK"), c
    with psycopg.connect(primary.dsn, autocommit=True) as p:
        p.execute("SELECT pg_create_physical_replication_slot('standby_slot')")
    with psycopg.connect(standby.dsn, autocommit=True) as s:
        s.execute("ALTER SYSTEM SET primary_slot_name = 'standby_slot'")
        s.execute("ALTER SYSTEM SET hot_standby_feedback = on")
        s.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 60
    with psycopg.connect(primary.dsn, autocommit=True) as p:
        while True:
            row = p.execute(
                "SELECT active AND xmin IS NOT NULL FROM pg_replication_slots "
                "WHERE slot_name = 'standby_slot'"
            ).fetchone()
            if (row and row[0]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
    # an active slot's xmin is the standby's oldest snapshot (hot_standby_feedback): told in
    # transactions, judged against check.xid_age_ratio x autovacuum_freeze_max_age
    with psycopg.connect(standby.dsn_for(DB)) as held:
        held.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        held.execute("SELECT count(*) FROM requests")  # a snapshot the standby keeps
        with psycopg.connect(on_primary, autocommit=True) as p:
            for _ in range(5):
                p.execute("SELECT txid_current()")  # transactions the slot's xmin falls behind
            while True:
                row = p.execute(
                    "SELECT age(xmin), active_pid FROM pg_replication_slots "
                    "WHERE slot_name = 'standby_slot'"
                ).fetchone()
                if (row and row[0] >= 5) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        assert row is not None and row[0] >= 5, row
        code, c = _lag(str(cfg), on_primary, "long_transactions")
        assert (code, c["state"]) == (0, "OK"), c
        assert (
            f"; active replication slot standby_slot (pid {row[1]}) holds back xmin by "
            in (c["message"])
        ), c
        assert c["message"].endswith(
            " transactions (hot_standby_feedback: the oldest snapshot on its standby)"
        ), c
        slot = [p for p in c["extra_perfdata"] if p["label"] == "long_transactions_slot_xmin_age"]
        assert [p["labels"] for p in slot] == [{"slot": "standby_slot"}], c
        assert slot[0]["value"] >= 5 and slot[0]["warning"] == 0.8 * 200_000_000, slot
        strict = tmp_path / "strict.yaml"
        strict.write_text(
            "check: {long_transactions: {warning: 1h, critical: 2h}, "
            "xid_age_ratio: {warning: 0.000000001, critical: 1}}\n"
        )
        code, c = _lag(str(strict), on_primary, "long_transactions")
        assert (code, c["state"]) == (1, "WARNING"), c
    standby.stop()
    check = _until(lambda: _lag(str(cfg), on_primary, "long_transactions"), "WARNING")
    assert check["state"] == "WARNING", check  # before 17, the server does not say since when
    assert check["message"].startswith(
        "oldest: replication slot standby_slot is inactive (since when, this PostgreSQL does "
        "not record) and holds back xmin by "
    )
