"""database.replica_dsn on a real hot standby: `report` and `view verify` read there and say how
far behind it is (JSON replica_lag_s, the footer), fall back to the primary with a notice when
it is down; `status`, `check` and `indexes status` stay on the primary.

Replay is paused on the standby (pg_wal_replay_pause) while the primary writes a row and an
index, so what is on one server only proves which one a command read."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import conninfo

from epstats_cli import queries
from tests.conftest import Server, run_cli, wait_for_replay
from tests.pgcluster import SUPERUSER_PASSWORD

pytestmark = pytest.mark.one_version  # heavy: the first server version only

ENV: dict[str, str | None] = {"EPSTATS_TEST_PW": SUPERUSER_PASSWORD}


def _without_password(dsn: str) -> str:
    """The DSN as a configuration file holds it: the password comes from password_env."""
    params = conninfo.conninfo_to_dict(dsn)
    params.pop("password", None)
    return conninfo.make_conninfo(**params)  # type: ignore[arg-type]


def _config(tmp_path: Path, replica: str, name: str = "c.yaml") -> str:
    cfg = tmp_path / name
    cfg.write_text(
        "database:\n"
        f"  replica_dsn: {json.dumps(_without_password(replica))}\n"
        "  password_env: EPSTATS_TEST_PW\n"
        "  connect_timeout: 2s\n"
        "view: {strategy: incremental}\n"
        "check: {replication_lag: {warning: 1h, critical: 2h}}\n"
    )
    return str(cfg)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _json(cfg: str, dsn: str, *args: str) -> tuple[int, dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", *args, env=ENV)
    assert "Traceback" not in r.stderr, r.stderr
    return r.code, json.loads(r.stdout)


@pytest.fixture
def primary(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> str:
    """The epstats schema, the table with rows on two endpoints and the rollup, on the
    primary."""
    cfg = tmp_path / "setup.yaml"
    cfg.write_text("view: {strategy: incremental}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    conn.execute(
        "INSERT INTO requests SELECT CASE WHEN i % 2 = 0 THEN '/a' ELSE '/b' END,"
        " now() - make_interval(hours => i), i, 200 FROM generate_series(1, 40) i"
    )
    assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
    return dsn


@pytest.fixture
def paused(server: Server, standby: Server, primary: str) -> Iterator[tuple[str, str]]:
    """The standby caught up with `primary`'s database, then its replay paused while the
    primary gets a row on /only-primary and an index; the standby's DSN for that database
    and the standby's admin DSN. Replay resumes afterwards."""
    dbname = str(conninfo.conninfo_to_dict(primary)["dbname"])
    on_standby = wait_for_replay(server.admin_dsn, standby, dbname)
    with psycopg.connect(standby.admin_dsn, autocommit=True) as s:
        s.execute("SELECT pg_wal_replay_pause()")
    try:
        with psycopg.connect(primary, autocommit=True) as p:
            p.execute("INSERT INTO requests VALUES ('/only-primary', now(), 1, 200)")
            p.execute("CREATE INDEX idx_only_primary ON requests (status)")
            row = p.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
            assert row is not None
        _until_received(standby.admin_dsn, row[0])
        yield on_standby, standby.admin_dsn
    finally:
        with psycopg.connect(standby.admin_dsn, autocommit=True) as s:
            s.execute("SELECT pg_wal_replay_resume()")


def _until_received(standby_dsn: str, lsn: str) -> None:
    """Wait until the standby has received (not replayed) the WAL up to `lsn`."""
    deadline = time.monotonic() + 30
    with psycopg.connect(standby_dsn, autocommit=True) as s:
        while time.monotonic() < deadline:
            row = s.execute("SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
            if row and row[0]:
                return
            time.sleep(0.05)
    raise AssertionError("the standby did not receive the primary's WAL")


def test_reports_read_the_replica_and_say_how_far_behind(
    server: Server, standby: Server, primary: str, tmp_path: Path
) -> None:
    dbname = str(conninfo.conninfo_to_dict(primary)["dbname"])
    on_standby = wait_for_replay(server.admin_dsn, standby, dbname)
    cfg = _config(tmp_path, on_standby)
    # caught up: the standby has replayed all it received, so 0 behind, however old the last
    # commit it replayed (an idle primary writes nothing). The server's own background WAL
    # (running-transactions records) may be received an instant before it is replayed: asked
    # again then.
    deadline = time.monotonic() + 10
    while True:
        code, doc = _json(cfg, primary, "report", "top", "--source", "raw")
        if doc["replica_lag_s"] == 0.0 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert code == 0 and doc["replica_lag_s"] == 0.0, doc
    assert {r["endpoint"] for r in doc["rows"]} == {"/a", "/b"}
    assert any(n.startswith("read from the standby ") and "0s behind" in n for n in doc["notes"])
    # without replica_dsn: the primary, null
    plain = tmp_path / "plain.yaml"
    plain.write_text("view: {strategy: incremental}\n")
    code, doc = _json(str(plain), primary, "report", "top")
    assert code == 0 and doc["replica_lag_s"] is None
    assert not any("standby" in n for n in doc["notes"])


def test_a_paused_replica_is_read_and_its_lag_shown(
    paused: tuple[str, str], primary: str, tmp_path: Path
) -> None:
    on_standby, _admin = paused
    cfg = _config(tmp_path, on_standby)
    for source in ("raw", "auto", "view"):
        code, doc = _json(cfg, primary, "report", "top", "--source", source)
        assert code == 0, doc
        # the row the standby has received but not replayed is not there: it read the standby
        assert {r["endpoint"] for r in doc["rows"]} == {"/a", "/b"}, source
        assert doc["replica_lag_s"] > 0, doc
        assert any("behind (the age of the last commit it replayed" in n for n in doc["notes"])
    code, doc = _json(cfg, primary, "report", "endpoint", "/a", "--source", "raw")
    assert code == 0 and doc["replica_lag_s"] > 0
    r = run_cli("-c", cfg, "--dsn", primary, "report", "endpoint", "/only-primary", env=ENV)
    assert r.code == 1 and "no requests for endpoint '/only-primary'" in r.stderr, r.stderr
    # the footer says where it read and how far behind
    r = run_cli("-c", cfg, "--dsn", primary, "report", "top", env=ENV)
    assert r.code == 0 and "read from the standby " in r.stdout
    assert " behind (the age of the last commit it replayed" in r.stdout.replace("\n", " ")
    # view verify reads the standby too (read-only there): the row newer than the rollup's
    # as-of is pending on the primary only
    code, doc = _json(cfg, primary, "view", "verify")
    assert code == 0 and doc["ok"] and doc["pending_rows"] == 0, doc
    assert doc["replica_lag_s"] > 0
    plain = tmp_path / "plain.yaml"
    plain.write_text("view: {strategy: incremental}\n")
    code, doc = _json(str(plain), primary, "view", "verify")
    assert code == 0 and doc["pending_rows"] == 1 and doc["replica_lag_s"] is None, doc


def test_primary_only_commands_ignore_the_replica(
    paused: tuple[str, str], primary: str, tmp_path: Path
) -> None:
    on_standby, _admin = paused
    cfg = _config(tmp_path, on_standby)
    # the index created while replay is paused exists on the primary only
    code, doc = _json(cfg, primary, "indexes", "status")
    assert code == 0 and "idx_only_primary" in json.dumps(doc), doc
    code, doc = _json(cfg, primary, "status")
    assert code == 0 and "idx_only_primary" in json.dumps(doc)
    code, doc = _json(cfg, primary, "check", "--only", "replication_lag")
    check = doc["checks"][0]
    # a primary's view of replication: its standbys (a standby would speak of itself)
    assert "this standby" not in check["message"], check
    assert check["message"].startswith("1 standby: "), check


def test_a_replica_that_is_down_falls_back_to_the_primary(primary: str, tmp_path: Path) -> None:
    params = conninfo.conninfo_to_dict(primary)
    params.update(host="127.0.0.1", port=str(_free_port()))
    cfg = _config(tmp_path, conninfo.make_conninfo(**params))  # type: ignore[arg-type]
    code, doc = _json(cfg, primary, "report", "top", "--source", "raw")
    assert code == 0 and doc["replica_lag_s"] is None
    assert "/only-primary" not in {r["endpoint"] for r in doc["rows"]}
    assert {r["endpoint"] for r in doc["rows"]} == {"/a", "/b"}
    notice = [n for n in doc["notes"] if n.startswith("database.replica_dsn: ")]
    assert len(notice) == 1 and "connection refused" in notice[0], doc["notes"]
    assert notice[0].endswith("read from the primary instead")
    assert SUPERUSER_PASSWORD not in json.dumps(doc)
    code, doc = _json(cfg, primary, "view", "verify")
    assert code == 0 and doc["ok"] and doc["replica_lag_s"] is None
    # the table's footer carries the same one line
    r = run_cli("-c", cfg, "--dsn", primary, "report", "endpoint", "/a", env=ENV)
    assert r.code == 0 and r.stdout.count("read from the primary instead") == 1, r.stdout
    r = run_cli("-c", cfg, "--dsn", primary, "view", "verify", env=ENV)
    assert r.code == 0 and "read from the primary instead" in r.stdout, r.stdout


def test_replica_dsn_in_the_configuration(tmp_path: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {replica_dsn: 'postgresql://reader:pw@standby/db'}\n")
    r = run_cli("-c", str(cfg), "config", "check")
    assert r.code == 3 and "database.replica_dsn: contains a password" in r.stderr, r.stderr
    assert "pw@" not in r.stderr
    cfg.write_text("database: {replica_dsn: 'host=standby dbname=db'}\n")
    r = run_cli("-c", str(cfg), "--format", "json", "config", "show")
    assert r.code == 0 and json.loads(r.stdout)["database"]["replica_dsn"] == (
        "host=standby dbname=db"
    )
    # an unparseable replica DSN is a configuration error naming the key, not a fallback
    cfg.write_text("database: {replica_dsn: 'host=standby bogus=1'}\n")
    r = run_cli("-c", str(cfg), "--dsn", "host=/nonexistent", "report", "top")
    assert r.code == 3 and "(see database.replica_dsn)" in r.stderr, r.stderr


def test_no_commit_replayed_is_an_unknown_lag_never_zero(conn: psycopg.Connection[Any]) -> None:
    """A standby that has replayed no commit since it started has no replay timestamp (nor has
    a primary): the lag is unknown (NULL), not 0 (greatest() skips a NULL)."""
    row = conn.execute(queries.get("catalog/replica_lag")).fetchone()
    assert row is not None and row[1] is None, row
