"""The soak, short (about a minute): a steady writer while every changing command runs and is
killed at random, then one plain `maintain`. Invariants only, never speed (STYLE: "speed is
measured, not asserted in tests"); `python -m benchmarks.soak` measures the timings.

Heavy, so on one server version (PostgreSQL 15) like the pooler scenarios: one soak per module,
each invariant its own test.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from benchmarks.soak import SoakOptions, run_soak
from tests.conftest import Server

SOAK_PG_VERSION = 15
LOCK_TIMEOUT_S = 2
# How much longer than lock_timeout an INSERT may wait for a lock before the writer gives up.
# An INSERT queued behind a DDL statement that waits for its own lock waits at most that
# statement's lock_timeout; the margin covers the moment between the two.
MARGIN_S = 1.0


@pytest.fixture(scope="module")
def soak(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One short soak on a fresh database of the PostgreSQL 15 server; its figures. Run as a
    job a shell started in the background runs it (SIGINT ignored, and SIGHUP as under
    `nohup`), which its commands must not inherit: else their SIGINT faults are never
    delivered."""
    if server.version != SOAK_PG_VERSION:
        pytest.skip(f"the soak runs on PostgreSQL {SOAK_PG_VERSION} only (it is heavy)")
    name = f"epstats_soak_{os.getpid()}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    ignored = {s: signal.signal(s, signal.SIG_IGN) for s in (signal.SIGINT, signal.SIGHUP)}
    try:
        opts = SoakOptions(
            minutes=0.75,
            rate=100,
            seed=13,
            rows=100_000,
            days=10,
            fault_share=0.5,
            lock_timeout=f"{LOCK_TIMEOUT_S}s",
            writer_lock_timeout_ms=int((LOCK_TIMEOUT_S + MARGIN_S) * 1000),
            drain_timeout=60,
        )
        yield run_soak(server.dsn_for(name), opts, Path(tmp_path_factory.mktemp("soak")))
    finally:
        for signum, handler in ignored.items():
            signal.signal(signum, handler)
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def test_the_soak_ran_commands_and_injected_faults(soak: dict[str, Any]) -> None:
    assert soak["commands_run"] >= 10, soak["exit_codes"]
    assert soak["faults_injected"] >= 3, soak["faults"]
    assert soak["writes"]["committed"] > 1000


def test_every_signal_fault_was_delivered(soak: dict[str, Any]) -> None:
    # A signalled command ends with the signal's exit code (or dies of it), never 0: a 0
    # means the signal was ignored (inherited from the soak's shell) and no fault happened.
    assert soak["faults_not_delivered"] == [], soak["fault_outcomes"]
    assert soak["goals"]["every_fault_delivered"]
    for fault in ("SIGINT", "SIGTERM"):  # a SIGKILL cannot be ignored: its 0 is a race lost
        assert "0" not in soak["fault_outcomes"].get(fault, {}), soak["fault_outcomes"]
    assert soak["faults"].get("SIGINT", 0) >= 1, soak["faults"]  # the case this is about


def test_no_write_lost(soak: dict[str, Any]) -> None:
    w = soak["writes"]
    assert w["writer_errors"] == 0, w["errors"]
    assert w["lost"] == 0
    # every INSERT that returned is there once, and nothing else is
    assert w["present"] == w["rows"] == w["committed"]


def test_the_writer_never_waited_on_a_lock_past_lock_timeout(soak: dict[str, Any]) -> None:
    # Blocking, not speed. The writer runs with lock_timeout = database.lock_timeout + MARGIN_S,
    # so an INSERT kept waiting for a lock any longer fails with LockNotAvailable, on any
    # machine: that is what the first assertion reads. CPU contention never makes an INSERT
    # take seconds; only a lock does, which is why the wall-clock bound below (the same limit,
    # an order of magnitude above the slowest unblocked INSERT) is about blocking too.
    w = soak["writes"]
    assert not [e for e in w["errors"] if "LockNotAvailable" in e], w["errors"]
    assert soak["worst_wait_s"] <= LOCK_TIMEOUT_S + MARGIN_S, soak["writer_lock_waits"]


def test_the_last_faults_left_something_to_repair(soak: dict[str, Any]) -> None:
    # What makes the next test mean something: a killed `view build --replace` (SIGKILL while
    # its swap waits behind a reader) leaves <rollup>_epstats_new, whatever epstats does.
    assert soak["leftovers_before_maintain"]["epstats_new"], soak["final_faults"]


def test_one_plain_maintain_leaves_no_invalid_index_or_leftover(soak: dict[str, Any]) -> None:
    after = soak["leftovers_after_maintain"]
    assert after == {"invalid_indexes": [], "cc_leftovers": [], "epstats_new": []}, (
        soak["leftovers_before_maintain"],
        soak["maintain"],
    )


def test_the_rollup_verifies_after_refresh(soak: dict[str, Any]) -> None:
    assert soak["view_refresh_exit"] == 0
    assert soak["view_verify_exit"] == 0, soak["view_verify_stderr"]


def test_no_command_crashed(soak: dict[str, Any]) -> None:
    # Whatever the fault, a command ends with its exit code and one line, never a traceback.
    assert soak["internal_errors"] == []
