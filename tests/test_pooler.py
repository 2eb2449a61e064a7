"""epstats behind PgBouncer (session, transaction, statement mode) and with role-level settings.

Read-only commands work through any pooler and give the numbers a direct connection gives;
changing commands refuse through a transaction or statement pool (exit 3) and work through a
session pool or database.maintenance_dsn; nothing epstats sets is left on the pool; a role's
own timeouts do not change what epstats does. PostgreSQL 15 only (tests/conftest_pooler.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import click
import psycopg
import pytest

from epstats_cli import db
from epstats_cli.cli import cli as root_command
from epstats_cli.cli import kinds
from epstats_cli.config import Config, DatabaseConfig
from epstats_cli.maintain import LOCK_CLASS
from tests.conftest import run_cli
from tests.helpers import catalog, fill
from tests.pgbouncer import APP_PASSWORD, APP_ROLE, POOL_MODES, PgBouncer, start_pgbouncer
from tests.pgcluster import SUPERUSER_PASSWORD, Cluster

pytest_plugins = ["tests.conftest_pooler"]

SHARING = ("transaction", "statement")  # pool modes that do not keep a session per client


def _bouncer(request: pytest.FixtureRequest, mode: str) -> PgBouncer:
    bouncer: PgBouncer = request.getfixturevalue(f"pgbouncer_{mode}")
    return bouncer


def _no_password(dsn: str) -> str:
    """The DSN as a config file holds it: the password comes from PGPASSWORD."""
    return " ".join(p for p in dsn.split() if not p.startswith("password="))


def _password(dsn: str) -> str:
    return next(p.split("=", 1)[1] for p in dsn.split() if p.startswith("password="))


ENV: dict[str, str | None] = {"PGPASSWORD": SUPERUSER_PASSWORD}
ONE_SECOND = "statement_timeout = '1s'"


def _admin(cluster: Cluster, statement: str) -> None:
    with psycopg.connect(cluster.dsn, autocommit=True) as conn:
        conn.execute(statement)


def _ready(cluster: Cluster, dbname: str, tmp_path: Path, rows: int = 5000) -> str:
    """init, a small requests table, the indices, the rollup and one maintain: directly."""
    direct = cluster.dsn_for(dbname)
    cfg = tmp_path / "c.yaml"
    cfg.write_text("view: {strategy: incremental}\ndatabase: {statement_timeout: 7s}\n")
    for args in (["init", "--with-requests-table"], ["indexes", "apply"]):
        r = run_cli("-c", str(cfg), "--dsn", direct, *args)
        assert r.code == 0, r.stderr
    with psycopg.connect(direct, autocommit=True) as conn:
        fill(conn, rows)
        conn.execute("ANALYZE requests")
    for args in (["view", "build"], ["maintain"]):
        r = run_cli("-c", str(cfg), "--dsn", direct, *args)
        assert r.code == 0, r.stderr
    return str(cfg)


def _json(cfg: str, dsn: str, *args: str) -> tuple[int, Any]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", *args)
    assert r.stdout.strip(), r.stderr
    return r.code, json.loads(r.stdout)


# --- every command is classified -------------------------------------------------------------


def _leaf_commands(group: click.Group, prefix: str = "") -> list[str]:
    ctx = click.Context(group)
    out: list[str] = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, name
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            out += _leaf_commands(command, path + " ")
        else:
            out.append(path)
    return out


def test_every_command_is_classified_as_changing_or_read_only() -> None:
    commands = set(_leaf_commands(root_command))
    assert not kinds.CHANGING & kinds.READ_ONLY
    unclassified = commands - kinds.CHANGING - kinds.READ_ONLY
    assert not unclassified, f"add these to epstats_cli/cli/kinds.py: {sorted(unclassified)}"
    assert commands == (kinds.CHANGING | kinds.READ_ONLY), "kinds.py names a command that is gone"
    with pytest.raises(LookupError, match="not classified"):
        kinds.changes("frobnicate")


# --- the session mechanism, through each pool mode ---------------------------------------------


@pytest.mark.parametrize("mode", POOL_MODES)
def test_a_read_only_session_carries_its_settings_with_each_statement(
    request: pytest.FixtureRequest, pooler_cluster: Cluster, pooler_dbname: str, mode: str
) -> None:
    """The role's 1s statement_timeout is there on every server connection, and never applies
    to epstats' statements; nothing is prepared, whatever the statement count."""
    _admin(pooler_cluster, f"ALTER ROLE postgres IN DATABASE {pooler_dbname} SET {ONE_SECOND}")
    dsn = _bouncer(request, mode).dsn_for(pooler_dbname)
    config = Config(database=DatabaseConfig(lock_timeout=timedelta(seconds=3)))
    with db.session(config, dsn) as s:
        assert s.per_statement and s.pooler is None
        for _ in range(7):  # past psycopg's prepare_threshold
            row = s.conn.execute(
                "SELECT current_setting('statement_timeout'), current_setting('lock_timeout'), "
                "current_setting('idle_in_transaction_session_timeout'), %s::int",
                (1,),
            ).fetchone()
            assert row == ("0", "3s", "1min", 1)
        assert s.conn.execute("SELECT pg_sleep(1.2)::text").fetchone() == ("",)
        assert s.value("catalog/now") is not None
        with pytest.raises(psycopg.errors.DivisionByZero):
            s.conn.execute("SELECT 1 / 0")
        assert s.conn.execute("SELECT 2").fetchone() == (2,)  # no transaction left open
    with (
        psycopg.connect(dsn, autocommit=True, prepare_threshold=None) as other,
        pytest.raises(psycopg.errors.QueryCanceled),
    ):
        other.execute("SELECT pg_sleep(1.2)")  # the role's setting, for everyone else


# --- read-only commands: the same numbers as a direct connection -------------------------------


def _stable_status(doc: dict[str, Any]) -> dict[str, Any]:
    """What `status` reports that the commands in between do not change (not scan counters)."""
    table = {
        k: doc["table"][k]
        for k in ("estimated_rows", "heap_bytes", "index_bytes", "live_tuples", "dead_tuples")
    }
    indexes = [(i["name"], i["valid"], i["size_bytes"]) for i in doc["indexes"]]
    rollup = {k: doc["rollup"][k] for k in ("usable", "rows", "watermark", "strategy")}
    tasks = [(m["task"], m["last_status"], m["last_ok"]) for m in doc["maintenance"]]
    return {"table": table, "indexes": indexes, "rollup": rollup, "tasks": tasks}


@pytest.mark.parametrize("mode", POOL_MODES)
def test_read_only_commands_give_the_same_numbers_through_the_pooler(
    request: pytest.FixtureRequest,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    tmp_path: Path,
    mode: str,
) -> None:
    cfg = _ready(pooler_cluster, pooler_dbname, tmp_path)
    direct = pooler_cluster.dsn_for(pooler_dbname)
    pooled = _bouncer(request, mode).dsn_for(pooler_dbname)
    top = ("report", "top", "--source", "raw", "--days", "7", "--limit", "50")
    for args in (top, ("report", "endpoint", "/api/v1/e3", "--days", "3", "--source", "auto")):
        code_d, want = _json(cfg, direct, *args)
        code_p, got = _json(cfg, pooled, *args)
        assert code_d == code_p == 0
        assert got["rows"] == want["rows"]
        assert got["window"]["from"] == want["window"]["from"]  # "to" is now()
        assert len(want["rows"]) >= 2 and sum(r["requests"] for r in want["rows"]) > 0
    code_d, want = _json(cfg, direct, "status")
    code_p, got = _json(cfg, pooled, "status")
    assert code_d == code_p == 0
    assert _stable_status(got) == _stable_status(want)
    assert got["role_settings"] == want["role_settings"]
    _, want = _json(cfg, direct, "check")
    _, got = _json(cfg, pooled, "check")
    states = {c["name"]: c["state"] for c in want["checks"]}
    assert set(states.values()) == {"OK"}, want["line"]
    pooler = {c["name"]: c for c in got["checks"]}.pop("pooler")
    assert {c["name"]: c["state"] for c in got["checks"] if c["name"] != "pooler"} == {
        n: s for n, s in states.items() if n != "pooler"
    }
    if mode == "session":
        assert pooler["state"] == "OK", pooler
        assert (
            "through a session-mode pool (the DSN); reads go through a pooler" in pooler["summary"]
        )
    else:
        assert pooler["state"] == "WARNING"
        assert f"the DSN goes through a pooler in {mode} mode" in pooler["summary"]
        assert "set database.maintenance_dsn" in pooler["summary"]
    for more in (("view", "status"), ("view", "verify", "--days", "3"), ("indexes", "status")):
        code_d, want = _json(cfg, direct, *more)
        code_p, got = _json(cfg, pooled, *more)
        assert code_d == code_p == 0
        if more[1] == "verify":
            assert got["ok"] is want["ok"] is True and got["window"] == want["window"]
    code, doc = _json(cfg, pooled, "indexes", "plan")
    assert code == 0 and doc["steps"] == []
    assert run_cli("-c", cfg, "--dsn", pooled, "advise").code == 0


# --- changing commands: refused through a sharing pool, at work through a session pool ---------

CHANGING_ARGS = {
    "init": ["init"],
    "indexes apply": ["indexes", "apply"],
    "view build": ["view", "build", "--replace"],
    "view refresh": ["view", "refresh"],
    "vacuum": ["vacuum"],
    "analyze": ["analyze"],
    "reindex": ["reindex"],
    "maintain": ["maintain", "--force", "vacuum,analyze,refresh,cleanup"],
    "tune apply": ["tune", "apply"],
    "partition apply": ["partition", "apply", "--dry-run"],
    "generate": ["generate", "--rows", "100"],
    "demo": ["demo", "--rows", "1000"],
}


def test_every_changing_command_is_tried_through_the_pooler() -> None:
    assert set(CHANGING_ARGS) == kinds.CHANGING


def _runs(direct: str) -> int:
    with psycopg.connect(direct, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM epstats.runs").fetchone()
        assert row is not None
        return int(row[0])


@pytest.mark.parametrize("mode", SHARING)
@pytest.mark.parametrize("role", ["admin", "app"])
def test_changing_commands_refuse_through_a_sharing_pool(
    request: pytest.FixtureRequest,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    tmp_path: Path,
    mode: str,
    role: str,
) -> None:
    cfg = _ready(pooler_cluster, pooler_dbname, tmp_path)
    direct = pooler_cluster.dsn_for(pooler_dbname)
    bouncer = _bouncer(request, mode)
    if role == "app":  # without PgBouncer's console: the probe makes the pooler show its hand
        pooled = bouncer.dsn_for(pooler_dbname, user=APP_ROLE, password=APP_PASSWORD)
    else:
        pooled = bouncer.dsn_for(pooler_dbname)
    with psycopg.connect(direct, autocommit=True) as conn:
        before = catalog(conn)
    runs = _runs(direct)
    for command, args in CHANGING_ARGS.items():
        for dry in ([], ["--dry-run"]) if command in ("maintain", "indexes apply") else ([],):
            r = run_cli("-c", cfg, "--dsn", pooled, *args, *dry)
            assert r.code == 3, (command, r.stderr)
            assert r.stderr.count("\n") == 1, r.stderr
            assert f"goes through a connection pooler in {mode} mode" in r.stderr
            assert "give --dsn (or $EPSTATS_DSN) the server itself or a session-mode pool" in (
                r.stderr
            )
            assert "password" not in r.stderr
    with psycopg.connect(direct, autocommit=True) as conn:
        assert catalog(conn) == before
    assert _runs(direct) == runs
    # the same DSN from the configuration: the fix names database.maintenance_dsn
    config = tmp_path / "pooled.yaml"
    config.write_text(f"database: {{dsn: '{_no_password(pooled)}'}}\n")
    r = run_cli("-c", str(config), "maintain", env={"PGPASSWORD": _password(pooled)})
    assert r.code == 3 and r.stderr.count("\n") == 1, r.stderr
    assert "set database.maintenance_dsn to the server itself" in r.stderr


def test_changing_commands_work_through_a_session_pool(
    pgbouncer_session: PgBouncer,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    tmp_path: Path,
) -> None:
    cfg = _ready(pooler_cluster, pooler_dbname, tmp_path)
    pooled = pgbouncer_session.dsn_for(pooler_dbname)
    for command, args in CHANGING_ARGS.items():
        if command in ("demo", "init", "generate"):
            continue
        r = run_cli("-c", cfg, "--dsn", pooled, *args)
        assert r.code == 0, (command, r.stderr)
    r = run_cli("-c", cfg, "--dsn", pooled, "-v", "generate", "--rows", "1000")
    assert r.code == 0, r.stderr
    assert "session (" in r.stderr and "pool_mode=session" in r.stderr
    r = run_cli("-c", cfg, "--dsn", pooled, "init")
    assert r.code == 0, r.stderr


def _wait_for_maintain_lock(direct: str, timeout: float = 20) -> int:
    """The pid of the backend that holds maintain's advisory lock, once one does."""
    with psycopg.connect(direct, autocommit=True) as conn:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted"
                " AND classid = %s AND database = (SELECT oid FROM pg_database"
                " WHERE datname = current_database())",
                (LOCK_CLASS,),
            ).fetchone()
            if row:
                return int(row[0])
            time.sleep(0.02)
    raise AssertionError("no maintain took its lock")


def test_two_maintains_at_once_through_a_session_pool(
    pgbouncer_session: PgBouncer,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    tmp_path: Path,
) -> None:
    """The first holds the maintain lock on its server session (its VACUUM waits for a lock
    another client holds); the second, on the pool's other server connection, exits 75."""
    cfg = _ready(pooler_cluster, pooler_dbname, tmp_path)
    direct = pooler_cluster.dsn_for(pooler_dbname)
    pooled = pgbouncer_session.dsn_for(pooler_dbname)
    command = [sys.executable, "-m", "epstats_cli", "-c", cfg, "--dsn", pooled, "maintain"]
    with psycopg.connect(direct) as holder:
        holder.execute("LOCK TABLE requests IN SHARE UPDATE EXCLUSIVE MODE")
        first = subprocess.Popen(
            [*command, "--force", "vacuum"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            pid = _wait_for_maintain_lock(direct)
            second = run_cli("-c", cfg, "--dsn", pooled, "maintain", "--force", "vacuum")
        finally:
            holder.rollback()
        _out, err = first.communicate(timeout=60)
    assert second.code == 75, second.stderr
    assert f"pid {pid}" in second.stderr and second.stderr.count("\n") == 1
    assert first.returncode == 0, err
    # and both at once from the start, as cron would: one runs, the other exits 75 (or, if the
    # first was done before the second began, both run)
    procs = [
        subprocess.Popen(
            [*command, "--force", "vacuum,analyze,refresh"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    codes = sorted(p.wait(timeout=60) for p in procs)
    for p in procs:
        p.communicate()
    assert codes in ([0, 75], [0, 0])


def test_maintenance_dsn_serves_reads_through_the_pooler_and_changes_directly(
    pgbouncer_transaction: PgBouncer,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    tmp_path: Path,
) -> None:
    _ready(pooler_cluster, pooler_dbname, tmp_path)
    pooled = _no_password(pgbouncer_transaction.dsn_for(pooler_dbname))
    direct = _no_password(pooler_cluster.dsn_for(pooler_dbname))
    cfg = tmp_path / "both.yaml"
    cfg.write_text(
        "view: {strategy: incremental}\n"
        f"database: {{dsn: '{pooled}', maintenance_dsn: '{direct}'}}\n"
    )
    r = run_cli("-c", str(cfg), "--format", "json", "report", "top", "--source", "raw", env=ENV)
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["rows"]
    for args in (["maintain", "--force", "analyze,refresh"], ["indexes", "apply"], ["init"]):
        r = run_cli("-c", str(cfg), *args, env=ENV)
        assert r.code == 0, (args, r.stderr)
    r = run_cli("-c", str(cfg), "--format", "json", "check", "--only", "pooler", env=ENV)
    assert r.code == 0, r.stdout
    (pooler,) = json.loads(r.stdout)["checks"]
    assert pooler["summary"] == (
        "changing commands connect directly (database.maintenance_dsn); reads go through a pooler"
    )
    r = run_cli("-c", str(cfg), "config", "show", env=ENV)
    assert "maintenance_dsn: host=127.0.0.1" in r.stdout
    # maintenance_dsn through the pooler too: refused, and check says which
    cfg.write_text(f"database: {{dsn: '{direct}', maintenance_dsn: '{pooled}'}}\n")
    r = run_cli("-c", str(cfg), "maintain", env=ENV)
    assert r.code == 3 and r.stderr.count("\n") == 1
    assert "database.maintenance_dsn names it: point it at the server itself" in r.stderr
    r = run_cli("-c", str(cfg), "--format", "json", "check", "--only", "pooler", env=ENV)
    assert r.code == 1
    (pooler,) = json.loads(r.stdout)["checks"]
    assert pooler["summary"].startswith(
        "database.maintenance_dsn goes through a pooler in transaction mode"
    )
    # --dsn names the server for every command: maintenance_dsn does not apply
    r = run_cli("-c", str(cfg), "--dsn", pooler_cluster.dsn_for(pooler_dbname), "analyze")
    assert r.code == 0, r.stderr


# --- a role's own settings ----------------------------------------------------------------------


def _slow_index(direct: str, rows: int) -> None:
    """An expression index whose build takes about `rows` milliseconds."""
    with psycopg.connect(direct, autocommit=True) as conn:
        conn.execute(
            "CREATE FUNCTION slow_status(s int) RETURNS int IMMUTABLE LANGUAGE plpgsql"
            " AS $$ BEGIN PERFORM pg_sleep(0.001); RETURN s; END $$"
        )
        conn.execute("SET statement_timeout = 0")
        conn.execute(
            f"DELETE FROM requests WHERE ctid IN (SELECT ctid FROM requests OFFSET {rows})"
        )
        conn.execute("CREATE INDEX idx_slow ON requests (slow_status(status))")


@pytest.mark.parametrize("via", ["direct", "session"])
def test_a_roles_statement_timeout_does_not_cancel_a_long_reindex(
    request: pytest.FixtureRequest,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    tmp_path: Path,
    via: str,
) -> None:
    cfg = _ready(pooler_cluster, pooler_dbname, tmp_path, rows=20000)
    direct = pooler_cluster.dsn_for(pooler_dbname)
    _slow_index(direct, 1500)
    _admin(pooler_cluster, f"ALTER ROLE postgres IN DATABASE {pooler_dbname} SET {ONE_SECOND}")
    _admin(pooler_cluster, f"ALTER DATABASE {pooler_dbname} SET lock_timeout = '2s'")
    dsn = (
        direct
        if via == "direct"
        else request.getfixturevalue("pgbouncer_session").dsn_for(pooler_dbname)
    )
    with (  # the role's setting is in force
        psycopg.connect(dsn, autocommit=True) as conn,
        pytest.raises(psycopg.errors.QueryCanceled),
    ):
        conn.execute("SELECT pg_sleep(1.1)")
    started = time.monotonic()
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "reindex", "--index", "idx_slow")
    elapsed = time.monotonic() - started
    assert r.code == 0, r.stderr
    assert [t["status"] for t in json.loads(r.stdout)["tasks"]] == ["ok"]
    assert elapsed > 1.5
    code, doc = _json(cfg, dsn, "status")
    assert code == 0
    settings = {s["name"]: s for s in doc["role_settings"]}
    assert settings["statement_timeout"] == {
        "name": "statement_timeout",
        "role_value": "1s",
        "source": "role in database",
        "epstats_value": "7s",
    }
    assert settings["lock_timeout"]["role_value"] == "2s"
    assert settings["lock_timeout"]["source"] == "database"
    assert settings["lock_timeout"]["epstats_value"] == "5s"
    assert settings["default_transaction_read_only"]["role_value"] == "off"
    r = run_cli("-c", cfg, "--dsn", dsn, "status")
    assert "Settings the role brings along" in r.stdout and "role in database" in r.stdout


# --- nothing epstats sets is left on the pool ---------------------------------------------------


def _server_states(bouncer: PgBouncer, dbname: str) -> list[tuple[Any, ...]]:
    """Each server connection of the pool as a client of it finds it: its settings, prepared
    statements and advisory locks (one sleeping statement per connection, all at once)."""
    rows: list[tuple[Any, ...]] = []
    errors: list[BaseException] = []

    def look() -> None:
        try:
            with psycopg.connect(
                bouncer.dsn_for(dbname), autocommit=True, prepare_threshold=None
            ) as conn:
                row = conn.execute(
                    "SELECT pg_backend_pid(), current_setting('statement_timeout'),"
                    " current_setting('lock_timeout'),"
                    " current_setting('idle_in_transaction_session_timeout'),"
                    " (SELECT count(*) FROM pg_prepared_statements),"
                    " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    "  AND pid = pg_backend_pid()),"
                    " pg_sleep(0.3)::text"
                ).fetchone()
                assert row is not None
                rows.append(row[:-1])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=look) for _ in range(bouncer.pool_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    return rows


@pytest.mark.parametrize("mode", [*POOL_MODES, "session-without-reset"])
def test_nothing_epstats_sets_is_left_on_the_pool(
    request: pytest.FixtureRequest,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    tmp_path: Path,
    mode: str,
) -> None:
    cfg = _ready(pooler_cluster, pooler_dbname, tmp_path)
    if mode == "session-without-reset":  # PgBouncer does not clean up: epstats must
        bouncer = start_pgbouncer(pooler_cluster, "session", settings={"server_reset_query": ""})
    else:
        bouncer = _bouncer(request, mode)
    try:
        pooled = bouncer.dsn_for(pooler_dbname)
        commands = [
            ["report", "top", "--source", "raw"],
            ["report", "endpoint", "/api/v1/e1"],
            ["status"],
            ["check"],
            ["view", "verify"],
        ]
        if bouncer.pool_mode == "session":
            commands += [["maintain", "--force", "vacuum,analyze,refresh"], ["indexes", "apply"]]
        for args in commands:
            for _ in range(3):  # past psycopg's prepare_threshold for repeated statements
                r = run_cli("-c", cfg, "--dsn", pooled, *args)
                assert r.code in (0, 1), (args, r.stderr)  # check: WARNING for the pooler
        states = _server_states(bouncer, pooler_dbname)
        assert {(s[1:]) for s in states} == {("0", "0", "0", 0, 0)}, states
        servers = [s for s in bouncer.admin("SHOW SERVERS") if s["database"] == pooler_dbname]
        assert {s["remote_pid"] for s in servers} <= {s[0] for s in states}
    finally:
        if mode == "session-without-reset":
            bouncer.stop()


# --- on every server version: the role's timeouts do not reach epstats' own sessions -----------


@pytest.mark.parametrize("changing", [False, True], ids=["read-only", "changing"])
def test_epstats_sets_its_own_timeouts_whatever_the_role_sets(
    server: Any, dsn: str, changing: bool
) -> None:
    dbname = psycopg.conninfo.conninfo_to_dict(dsn)["dbname"]
    role_sets = ["statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout"]
    if server.version >= 17:
        role_sets.append("transaction_timeout")
    for name in role_sets:
        server.execute(f"ALTER ROLE CURRENT_USER IN DATABASE {dbname} SET {name} = '1s'")
    # without epstats' own settings: cancelled (or, 17+, the connection ends)
    with psycopg.connect(dsn, autocommit=True) as plain, pytest.raises(psycopg.Error):
        plain.execute("SELECT pg_sleep(1.1)")
    config = Config(database=DatabaseConfig(statement_timeout=timedelta(seconds=9)))
    with db.session(config, dsn, changing=changing) as s:
        assert not s.per_statement
        shown = s.conn.execute(
            "SELECT " + ", ".join(f"current_setting('{n}')" for n in role_sets)
        ).fetchone()
        assert shown == ("9s", "5s", "1min", "0")[: len(role_sets)]
        with s.conn.transaction():
            s.conn.execute("SELECT pg_sleep(1.2)")  # neither statement_ nor transaction_timeout
            time.sleep(1.2)  # nor idle_in_transaction_session_timeout
            assert s.conn.execute("SELECT 1").fetchone() == (1,)
