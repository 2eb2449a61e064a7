"""`check` as a Nagios plugin: its own usage and configuration errors are UNKNOWN (3) with the
plugin's one-line output (exit 2 would read as CRITICAL); other commands keep exit 2."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.test_check import _healthy


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["check", "--only", "nosuch"], "unknown check nosuch"),
        (["check", "--only", "xid_age,nosuch,other"], "unknown check nosuch, other"),
        (["check", "--bogus"], "No such option '--bogus'"),
        (["check", "--only"], "--only"),
        (["check", "extra"], "unexpected extra argument"),
        (["--bogus", "check"], "No such option '--bogus'"),
        (["--format", "yaml", "check"], "--format"),
        (["-q", "--dsn", "x", "--config=/nonexistent.yaml", "check", "--only=nosuch"], "nosuch"),
    ],
)
def test_check_usage_errors_are_unknown_with_one_line(args: list[str], says: str) -> None:
    r = run_cli(*args)
    assert r.code == 3, (r.stdout, r.stderr)
    assert r.stdout.startswith("EPSTATS UNKNOWN - usage: ") and r.stdout.count("\n") == 1
    assert says in r.stdout and r.stderr == ""


def test_check_usage_error_in_json_is_the_checks_document() -> None:
    r = run_cli("--format", "json", "check", "--only", "nosuch")
    assert r.code == 3
    doc = json.loads(r.stdout)
    assert doc["status"] == "UNKNOWN" and doc["line"].startswith("EPSTATS UNKNOWN - usage: ")
    assert [c["state"] for c in doc["checks"]] == ["UNKNOWN"]


def test_check_configuration_errors_are_unknown(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    r = run_cli("-c", str(missing), "check")
    assert r.code == 3 and r.stdout.startswith("EPSTATS UNKNOWN - config: ")
    assert r.stdout.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("view: {strategy: nope}\ncheck: {maintain_failed_runs: 0}\n")
    r = run_cli("-c", str(bad), "check")
    assert r.code == 3 and r.stdout.startswith("EPSTATS UNKNOWN - config: ")
    assert r.stdout.count("\n") == 1 and "view.strategy" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--bogus"],
        ["--bogus", "status"],
        ["report", "endpoint", "check", "--bogus"],  # an endpoint named "check"
        ["-c", "check", "status", "--bogus"],  # a config file named "check"
        ["nosuch"],
    ],
)
def test_other_usage_errors_stay_exit_2(args: list[str]) -> None:
    r = run_cli(*args)
    assert r.code == 2 and r.stdout == "" and "Error" in r.stderr


def test_check_help_is_still_help() -> None:
    r = run_cli("check", "--help")
    assert r.code == 0 and "Nagios" in r.stdout


# --- severity that matches reality, on a real server ------------------------------------------


def _check(cfg: str, dsn: str) -> tuple[int, dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "check")
    doc = json.loads(r.stdout)
    return r.code, {c["name"]: c for c in doc["checks"]} | {"_line": doc["line"]}


def test_a_busy_lock_warns_clears_and_turns_critical_when_it_repeats(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _healthy(
        dsn,
        conn,
        tmp_path,
        "database: {lock_timeout: 100ms}\nmaintenance: {lock_retries: 0}\n"
        "check: {maintain_failed_runs: 3}\n",
    )

    def vacuum_while_locked() -> None:
        with psycopg.connect(dsn) as holder:
            holder.execute("LOCK TABLE requests IN SHARE MODE")  # VACUUM skips it (SKIP_LOCKED)
            r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--force", "vacuum")
            assert r.code == 1 and "lock not available" in r.stderr + r.stdout, r
            holder.rollback()

    vacuum_while_locked()
    code, checks = _check(cfg, dsn)
    assert code == 1 and checks["maintain_failed"]["state"] == "WARNING", checks["_line"]
    assert "vacuum failed at" in checks["maintain_failed"]["summary"]
    assert "a busy lock" in checks["maintain_failed"]["summary"]
    # it clears when the same task next succeeds
    assert run_cli("-c", cfg, "--dsn", dsn, "maintain", "--force", "vacuum").code == 0
    code, checks = _check(cfg, dsn)
    assert code == 0 and checks["maintain_failed"]["state"] == "OK"
    # three busy failures in a row are CRITICAL
    vacuum_while_locked()
    vacuum_while_locked()
    assert _check(cfg, dsn)[1]["maintain_failed"]["state"] == "WARNING"
    vacuum_while_locked()
    code, checks = _check(cfg, dsn)
    assert code == 2 and checks["maintain_failed"]["state"] == "CRITICAL"
    assert "vacuum failed 3 times in a row" in checks["maintain_failed"]["summary"]


def test_a_lock_timeout_of_every_step_is_a_busy_lock(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """REINDEX CONCURRENTLY meets lock_timeout on each index: the task's summary joins the
    steps' errors, and every one of them is a busy lock."""
    cfg = _healthy(
        dsn,
        conn,
        tmp_path,
        "database: {lock_timeout: 100ms}\nmaintenance: {lock_retries: 0}\n"
        "indexes: {max_wait: 100ms}\n",  # REINDEX CONCURRENTLY waits under indexes.max_wait
    )
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE requests IN SHARE MODE")
        r = run_cli("-c", cfg, "--dsn", dsn, "maintain", "--only", "reindex", "--force", "reindex")
        holder.rollback()
    assert r.code == 1 and "lock not granted within indexes.max_wait" in r.stderr + r.stdout
    error = conn.execute(
        "SELECT error FROM epstats.runs WHERE target = 'indices of public.requests' "
        "ORDER BY id DESC LIMIT 1"
    ).fetchone()
    assert error is not None and error[0].count("lock not granted") >= 2
    code, checks = _check(cfg, dsn)
    assert code == 1 and checks["maintain_failed"]["state"] == "WARNING"
    assert "reindex failed at" in checks["maintain_failed"]["summary"]


def test_a_failure_that_left_an_invalid_index_is_critical_at_once(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _healthy(dsn, conn, tmp_path, "check: {maintain_failed: warning}\n")
    # the invalid index it left, still there (a failed build leaves one; once it is gone the
    # failure is judged as the busy lock it was: tests/test_failed_states_clear.py)
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(
            "CREATE UNIQUE INDEX CONCURRENTLY idx_requests_timestamp_ccnew ON requests (status)"
        )
    # the executor's words for a failed REINDEX CONCURRENTLY whose _ccnew it could not drop
    conn.execute(
        "INSERT INTO epstats.runs (task, target, started_at, finished_at, status, error) "
        "VALUES ('reindex', 'indices of public.requests', now(), now(), 'failed', "
        "'lock not granted within lock_timeout (100ms) after 1 tries: blocked by pid 1; an "
        "invalid index idx_requests_timestamp_ccnew was left behind (it cannot be dropped "
        "while that transaction runs): `epstats maintain --only cleanup` drops it')"
    )
    code, checks = _check(cfg, dsn)
    assert code == 2 and checks["maintain_failed"]["state"] == "CRITICAL"
    assert "left an invalid index or leftover behind" in checks["maintain_failed"]["summary"]


def test_a_missing_source_table_is_one_critical_line(dsn: str) -> None:
    r = run_cli("--dsn", dsn, "check")
    assert r.code == 2, r.stdout
    assert r.stdout.split(" | ")[0] == (  # the checks of the server alone add perfdata
        "EPSTATS CRITICAL - source_table: public.requests does not exist "
        "(epstats init --with-requests-table creates it; or set source.table)"
    )
    r = run_cli("--dsn", dsn, "--format", "json", "check", "--only", "dead_tuples,view_staleness")
    doc = json.loads(r.stdout)
    assert r.code == 2 and [(c["name"], c["state"]) for c in doc["checks"]] == [
        ("source_table", "CRITICAL")
    ]


@pytest.mark.parametrize(
    ("task", "args"),
    [
        ("vacuum", ["maintain", "--force", "vacuum", "--only", "vacuum"]),
        ("reindex", ["maintain", "--force", "reindex", "--only", "reindex"]),
    ],
)
def test_a_busy_lock_is_a_warning_whatever_the_blockers_query_says(
    task: str, args: list[str], dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The error quotes the blocker's query, here with "; " in it (which also joins the errors
    of a task's steps): the run's recorded kind, not its words, makes it a busy lock."""
    cfg = _healthy(
        dsn,
        conn,
        tmp_path,
        "database: {lock_timeout: 100ms}\nmaintenance: {lock_retries: 0}\n"
        "indexes: {max_wait: 100ms}\n",
    )
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE requests IN SHARE MODE")
        holder.execute("SELECT 'nightly export; do not cancel; call ops' AS note")
        r = run_cli("-c", cfg, "--dsn", dsn, *args)
        holder.rollback()
    assert r.code == 1 and "nightly export; do not cancel; call ops" in r.stderr, r.stderr
    row = conn.execute(
        "SELECT error, failure FROM epstats.runs WHERE task = %s AND status = 'failed' "
        "ORDER BY id DESC LIMIT 1",
        (task,),
    ).fetchone()
    assert row is not None and "; do not cancel; " in row[0] and row[1] == "lock_busy", row
    code, checks = _check(cfg, dsn)
    assert code == 1 and checks["maintain_failed"]["state"] == "WARNING", checks["_line"]
    assert "a busy lock" in checks["maintain_failed"]["summary"]


def test_another_failure_is_critical_whatever_its_words(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Words that read like a busy lock do not make a failure one: its recorded kind does."""
    cfg = _healthy(dsn, conn, tmp_path)
    conn.execute(
        "INSERT INTO epstats.runs (task, target, started_at, finished_at, status, error, "
        "failure) VALUES ('vacuum', 'public.requests', now(), now(), 'failed', "
        "'could not write block 7: lock not granted on the disk', 'error')"
    )
    code, checks = _check(cfg, dsn)
    assert code == 2 and checks["maintain_failed"]["state"] == "CRITICAL", checks["_line"]
