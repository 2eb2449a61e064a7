"""long_transactions, ingest_stalled, connections, database_size and sequence_exhaustion on real
servers, each in both directions (replication_lag: tests/test_check_replication.py)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import Server, run_cli
from tests.pgcluster import Cluster, bin_dirs, create_cluster

INT_MAX = 2**31 - 1


def _setup(dsn: str, tmp_path: Path, check: str = "", extra: str = "") -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text((f"check: {check}\n" if check else "") + extra)
    r = run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table")
    assert r.code == 0, r.stderr
    return str(cfg)


def _check(cfg: str, dsn: str, only: str) -> tuple[int, dict[str, Any]]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "check", "--only", only)
    assert "Traceback" not in r.stderr, r.stderr
    doc = json.loads(r.stdout)
    assert [c["name"] for c in doc["checks"]] == [only]
    return r.code, doc["checks"][0]


def _idle_in_transaction(dsn: str, application: str) -> psycopg.Connection[Any]:
    """A session left idle in a transaction that holds a snapshot (xmin)."""
    conn = psycopg.connect(dsn, application_name=application)
    conn.execute("SELECT count(*) FROM requests")
    return conn


# --- long_transactions ------------------------------------------------------------------------


def test_long_transactions_idle_in_transaction(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A warning level of 1ms: any transaction that counts is WARNING at once (no waiting)."""
    cfg = _setup(dsn, tmp_path, "{long_transactions: {warning: 1ms, critical: 1h}}")
    own = _idle_in_transaction(dsn, "epstats-elsewhere")  # epstats' own sessions never count
    try:
        code, c = _check(cfg, dsn, "long_transactions")
        assert (code, c["state"]) == (0, "OK"), c
        assert c["message"] == (
            "no open transaction, prepared transaction or inactive slot holds back xmin"
        )
        holder = _idle_in_transaction(dsn, "reporting-job")
        try:
            pid = holder.info.backend_pid
            code, c = _check(cfg, dsn, "long_transactions")
            assert (code, c["state"]) == (1, "WARNING"), c
            assert c["message"].startswith(
                f"oldest: pid {pid} (postgres, application 'reporting-job') has been idle in "
                "transaction for "
            )
            assert c["perfdata"]["warning"] == 0.001 and c["perfdata"]["critical"] == 3600
        finally:
            holder.close()
        code, c = _check(cfg, dsn, "long_transactions")
        assert (code, c["state"]) == (0, "OK"), c
    finally:
        own.close()


def test_long_transactions_counts_a_session_idle_in_a_failed_transaction(
    dsn: str, tmp_path: Path
) -> None:
    """After an error, a session waits for a ROLLBACK: the server forgets when its transaction
    began (xact_start is NULL), so it is aged from its error."""
    cfg = _setup(dsn, tmp_path, "{long_transactions: {warning: 1ms, critical: 1h}}")
    with psycopg.connect(dsn, application_name="broken-job") as failed:
        with pytest.raises(psycopg.errors.DivisionByZero):
            failed.execute("SELECT 1 / 0")
        code, c = _check(cfg, dsn, "long_transactions")
        assert (code, c["state"]) == (1, "WARNING"), c
        assert c["message"].startswith(
            f"oldest: pid {failed.info.backend_pid} (postgres, application 'broken-job') has "
            "been idle in a failed transaction for "
        ), c
        assert c["message"].endswith(" (since its error; it waits for a ROLLBACK)"), c


def test_long_transactions_says_what_it_could_not_see(
    server: Server, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A role without pg_read_all_stats does not see other roles' sessions: the plugin's line
    says how many, and the grant, although the check is OK."""
    cfg = _setup(dsn, tmp_path)
    role = f"watcher_{conn.info.dbname}"
    server.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'watch-pw'")
    try:
        watcher = server.dsn_for(conn.info.dbname, user=role, password="watch-pw")
        with psycopg.connect(dsn) as hidden:
            hidden.execute("SELECT 1")  # idle in transaction, as another role
            r = run_cli("-c", cfg, "--dsn", watcher, "check", "--only", "long_transactions")
        assert r.code == 0, r.stdout + r.stderr
        line = r.stdout.splitlines()[0]
        assert line.startswith("EPSTATS OK - 1 checks OK; long_transactions: "), line
        assert " session(s) of other roles could not be seen (GRANT pg_read_all_stats TO " in line
        assert f"TO {role}) | long_transactions=" in line
        server.execute(f"GRANT pg_read_all_stats TO {role}")
        r = run_cli("-c", cfg, "--dsn", watcher, "check", "--only", "long_transactions")
        assert r.stdout.startswith("EPSTATS OK - 1 checks OK | "), r.stdout
    finally:
        server.execute(f"DROP ROLE {role}")


@pytest.fixture(scope="module")
def prepared_cluster(server: Server) -> Iterator[Cluster]:
    """A server of the version under test that allows prepared transactions (off by default,
    and a restart to change)."""
    cluster = create_cluster(server.version, bin_dirs()[server.version])
    try:
        with psycopg.connect(cluster.dsn, autocommit=True) as c:
            c.execute("ALTER SYSTEM SET max_prepared_transactions = 4")
        cluster.stop()
        cluster.start()
        yield cluster
    finally:
        cluster.destroy()


def test_long_transactions_prepared(prepared_cluster: Cluster, tmp_path: Path) -> None:
    with psycopg.connect(prepared_cluster.dsn, autocommit=True) as admin:
        admin.execute("CREATE DATABASE prepared")
    dsn = prepared_cluster.dsn_for("prepared")
    cfg = _setup(dsn, tmp_path, "{long_transactions: {warning: 1ms, critical: 1h}}")
    code, c = _check(cfg, dsn, "long_transactions")
    assert (code, c["state"]) == (0, "OK"), c
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("BEGIN")
        conn.execute("INSERT INTO requests VALUES ('/p', now(), 1, 200)")
        conn.execute("PREPARE TRANSACTION 'nightly-import'")
        try:
            code, c = _check(cfg, dsn, "long_transactions")
            assert (code, c["state"]) == (1, "WARNING"), c
            assert c["message"].startswith(
                "oldest: prepared transaction 'nightly-import' of postgres has been open for "
            )
            assert c["message"].endswith("(COMMIT PREPARED or ROLLBACK PREPARED it)")
        finally:
            conn.execute("ROLLBACK PREPARED 'nightly-import'")
    code, c = _check(cfg, dsn, "long_transactions")
    assert (code, c["state"]) == (0, "OK"), c
    # a server without standbys
    code, c = _check(cfg, dsn, "replication_lag")
    assert (code, c["state"], c["message"]) == (0, "OK", "no standbys")


# --- ingest_stalled ---------------------------------------------------------------------------


def test_ingest_stalled(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _setup(dsn, tmp_path)
    conn.execute("CREATE INDEX ON requests (timestamp)")
    conn.execute(
        "INSERT INTO requests VALUES ('/old', now() - interval '2 hours', 1, 200), "
        "('/future', now() + interval '1 day', 1, 200)"  # rows dated ahead do not count
    )
    code, c = _check(cfg, dsn, "ingest_stalled")
    assert (code, c["state"]) == (2, "CRITICAL"), c
    assert c["message"] == (
        "no row in the last 1h (it looks no further back: the age is at least 1h): has the API "
        "stopped logging?"
    )
    assert c["perfdata"] == {"value": 3600, "warning": 900, "critical": 3600}
    conn.execute("INSERT INTO requests VALUES ('/slow', now() - interval '20 minutes', 1, 200)")
    code, c = _check(cfg, dsn, "ingest_stalled")
    assert (code, c["state"]) == (1, "WARNING"), c
    assert 1200 <= c["perfdata"]["value"] < 3600
    conn.execute("INSERT INTO requests VALUES ('/now', now(), 1, 200)")
    code, c = _check(cfg, dsn, "ingest_stalled")
    assert (code, c["state"]) == (0, "OK"), c
    assert c["message"].startswith("newest row dated ")
    off = tmp_path / "off.yaml"
    off.write_text("check: {ingest_stalled: {warning: 0, critical: 0}}\n")
    conn.execute("DELETE FROM requests WHERE endpoint <> '/old'")
    code, c = _check(str(off), dsn, "ingest_stalled")
    assert (code, c["state"], c["message"]) == (0, "OK", "off (check.ingest_stalled is 0)")


def test_ingest_stalled_with_a_naive_timestamp_column(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A `timestamp without time zone` column holds wall-clock time in source.naive_timezone:
    read in another zone, the newest row would look hours old, or dated in the future."""
    conn.execute(
        "CREATE TABLE requests (endpoint text, timestamp timestamp, response_time float8, "
        "status int)"
    )
    conn.execute("CREATE INDEX ON requests (timestamp)")
    zone = "America/New_York"
    local_now = f"(now() AT TIME ZONE '{zone}')"
    conn.execute(
        f"INSERT INTO requests VALUES ('/a', {local_now} - interval '5 minutes', 1, 200), "
        f"('/b', {local_now} + interval '3 hours', 1, 200)"
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"source: {{naive_timezone: {zone}}}\n")
    code, c = _check(str(cfg), dsn, "ingest_stalled")
    assert (code, c["state"]) == (0, "OK"), c
    assert 300 <= c["perfdata"]["value"] < 900
    conn.execute(f"UPDATE requests SET timestamp = {local_now} - interval '30 minutes'")
    code, c = _check(str(cfg), dsn, "ingest_stalled")
    assert (code, c["state"]) == (1, "WARNING"), c


# --- connections ------------------------------------------------------------------------------


def test_connections(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _setup(dsn, tmp_path)
    others = [psycopg.connect(dsn) for _ in range(3)]
    try:
        code, c = _check(cfg, dsn, "connections")
        assert (code, c["state"]) == (0, "OK"), c
        used = {p["label"]: p["value"] for p in c["extra_perfdata"]}["connections_used"]
        # this test's 4 sessions and the check's own, at least (others may share the server)
        assert used >= 5
        max_conn, reserved = conn.execute(
            "SELECT current_setting('max_connections')::int, "
            "current_setting('superuser_reserved_connections')::int"
            + (" + current_setting('reserved_connections')::int" if _pg16(conn) else "")
        ).fetchone() or (0, 0)
        assert (
            c["message"].startswith(f"{used} of {max_conn - reserved} connections in use (")
            and f"max_connections {max_conn} less {reserved} reserved" in c["message"]
        )
        assert c["perfdata"]["value"] == round(used / (max_conn - reserved), 4)
        busy = tmp_path / "busy.yaml"
        busy.write_text("check: {connections: {warning: 0.01, critical: 0.05}}\n")
        code, c = _check(str(busy), dsn, "connections")
        assert (code, c["state"]) == (2, "CRITICAL"), c
    finally:
        for o in others:
            o.close()


def _pg16(conn: psycopg.Connection[Any]) -> bool:
    return conn.info.server_version >= 160000


# --- database_size ----------------------------------------------------------------------------


def test_database_size(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _setup(dsn, tmp_path)
    code, c = _check(cfg, dsn, "database_size")
    assert (code, c["state"]) == (0, "OK"), c
    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert size is not None and abs(c["perfdata"]["value"] - size[0]) < 1024 * 1024
    assert ": tier 1 of the guide (under 10 GB: cpu 500m, memory 1024Mi)" in c["message"]
    assert c["extra_perfdata"][0]["label"] == "database_size_tier"
    assert c["extra_perfdata"][0]["value"] == 1
    # a margin of the whole tier: any database under 10 GB is "within" it
    near = tmp_path / "near.yaml"
    near.write_text("check: {database_size: 1.0}\n")
    code, c = _check(str(near), dsn, "database_size")
    assert (code, c["state"]) == (1, "WARNING"), c
    assert c["message"].endswith(
        "within 100% of 10.0 GB: time to resize to the next tier (cpu 1000m, memory 2048Mi; "
        "epstats advise)"
    )


# --- sequence_exhaustion ----------------------------------------------------------------------


def test_sequence_exhaustion(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _setup(dsn, tmp_path)
    code, c = _check(cfg, dsn, "sequence_exhaustion")
    assert (code, c["message"]) == (0, "no sequence feeds public.requests")
    conn.execute("ALTER TABLE requests ADD COLUMN id integer GENERATED BY DEFAULT AS IDENTITY")
    conn.execute("INSERT INTO requests VALUES ('/a', now(), 1, 200)")
    # a sequence near its end that feeds nothing of the source table does not count
    conn.execute("CREATE SEQUENCE unrelated MAXVALUE 100")
    conn.execute("SELECT setval('unrelated', 99)")
    code, c = _check(cfg, dsn, "sequence_exhaustion")
    assert (code, c["state"]) == (0, "OK"), c
    assert c["message"].startswith(
        "public.requests_id_seq (id integer) at 1 of 2,147,483,647, the integer column's limit"
    )
    conn.execute(f"SELECT setval('requests_id_seq', {int(INT_MAX * 0.8)})")
    code, c = _check(cfg, dsn, "sequence_exhaustion")
    assert (code, c["state"]) == (1, "WARNING"), c
    # a bigint sequence still stops at the integer column's limit
    conn.execute("ALTER SEQUENCE requests_id_seq AS bigint MAXVALUE 9223372036854775807")
    conn.execute(f"SELECT setval('requests_id_seq', {int(INT_MAX * 0.95)})")
    code, c = _check(cfg, dsn, "sequence_exhaustion")
    assert (code, c["state"]) == (2, "CRITICAL"), c
    assert "the integer column's limit: 95.0% used (ALTER the column to bigint" in c["message"]
    # a default nextval() of a sequence with its own small MAXVALUE
    conn.execute("ALTER SEQUENCE requests_id_seq RESTART WITH 1")
    conn.execute("CREATE SEQUENCE batch_seq MAXVALUE 1000")
    conn.execute("ALTER TABLE requests ADD COLUMN batch bigint DEFAULT nextval('batch_seq')")
    conn.execute("SELECT setval('batch_seq', 950)")
    code, c = _check(cfg, dsn, "sequence_exhaustion")
    assert (code, c["state"]) == (2, "CRITICAL"), c
    assert c["message"].startswith(
        "public.batch_seq (batch bigint) at 950 of 1,000, its MAXVALUE: 95.0% used"
    )
    labels = {tuple(p["labels"].values()) for p in c["extra_perfdata"]}
    assert labels == {("public.batch_seq", "batch"), ("public.requests_id_seq", "id")}
