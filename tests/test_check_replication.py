"""replication_lag on a real primary and its streaming standby (pg_basebackup), made to lag
with recovery_min_apply_delay; and an inactive replication slot holding back xmin
(long_transactions). PostgreSQL 15 only: a second server per version would cost more than it
tells."""

from __future__ import annotations

import json
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
    code, c = _lag(str(cfg), on_primary, "long_transactions")
    assert (code, c["state"]) == (0, "OK"), c  # an active slot is the standby's business
    standby.stop()
    check = _until(lambda: _lag(str(cfg), on_primary, "long_transactions"), "WARNING")
    assert check["state"] == "WARNING", check  # before 17, the server does not say since when
    assert check["message"].startswith(
        "oldest: replication slot standby_slot is inactive (since when, this PostgreSQL does "
        "not record) and holds back xmin by "
    )
