"""session_guarantee against a real PgBouncer in every pool mode, and a direct connection."""

from __future__ import annotations

import tempfile
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg import pq

from epstats_cli.pooler import session_guarantee
from tests.pgbouncer import APP_PASSWORD, APP_ROLE, POOL_MODES, PgBouncer
from tests.pgcluster import Cluster

# The fixtures pgbouncer_session/_transaction/_statement, pooler_cluster, pooler_dbname.
pytest_plugins = ["tests.conftest_pooler"]

ROLES = ("admin", "app")  # admin: may read PgBouncer's console; app: may not


def _bouncer(request: pytest.FixtureRequest, mode: str) -> PgBouncer:
    bouncer: PgBouncer = request.getfixturevalue(f"pgbouncer_{mode}")
    return bouncer


def _dsn(bouncer: PgBouncer, dbname: str, role: str) -> str:
    if role == "app":
        return bouncer.dsn_for(dbname, user=APP_ROLE, password=APP_PASSWORD)
    return bouncer.dsn_for(dbname)


def _connect(dsn: str) -> psycopg.Connection[Any]:
    return psycopg.connect(dsn, autocommit=True, prepare_threshold=None)


def _round_trips(trace: str) -> int:
    """Client messages that wait for the server (libpq trace lines)."""
    return sum(
        1
        for line in trace.splitlines()
        if line.startswith("F\t") and line.split("\t")[2].split()[0] in ("Query", "Sync")
    )


def test_a_direct_connection_costs_one_round_trip(
    pooler_cluster: Cluster, pooler_dbname: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    dsn = pooler_cluster.dsn_for(pooler_dbname)
    with _connect(dsn) as conn, tempfile.TemporaryFile("w+") as trace:
        conn.execute("SELECT 1")  # warm up: the first statement of a connection
        conn.pgconn.trace(trace.fileno())
        conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)

        def no_connection(*args: Any, **kwargs: Any) -> None:
            raise AssertionError("a direct connection needs no second connection")

        monkeypatch.setattr(psycopg, "connect", no_connection)
        started = time.perf_counter()
        info = session_guarantee(dsn, conn)
        elapsed = time.perf_counter() - started
        conn.pgconn.untrace()
        trace.seek(0)
        assert _round_trips(trace.read()) == 1
    assert info.kind == "direct"
    assert info.keeps_session
    assert "the server itself answers" in info.evidence
    assert elapsed < 0.05


def test_a_direct_connection_without_one_open(pooler_cluster: Cluster, pooler_dbname: str) -> None:
    info = session_guarantee(pooler_cluster.dsn_for(pooler_dbname))
    assert info.kind == "direct"


@pytest.mark.parametrize("given", [True, False], ids=["with-conn", "own-conn"])
@pytest.mark.parametrize("mode", POOL_MODES)
def test_the_console_gives_the_mode(
    request: pytest.FixtureRequest, pooler_dbname: str, mode: str, given: bool
) -> None:
    dsn = _dsn(_bouncer(request, mode), pooler_dbname, "admin")
    if given:
        with _connect(dsn) as conn:
            info = session_guarantee(dsn, conn)
    else:
        info = session_guarantee(dsn)
    assert info.kind == mode, info.evidence
    assert f"pool_mode={mode}" in info.evidence
    assert "so a pooler answers" in info.evidence
    assert info.keeps_session == (mode == "session")


EXPECTED_WITHOUT_CONSOLE = {
    "session": ("unknown-pooler", "the mode is not proven"),
    "transaction": ("transaction", "change hands between transactions"),
    "statement": ("statement", "transaction blocks not allowed in statement pooling mode"),
}


@pytest.mark.parametrize("mode", POOL_MODES)
def test_without_the_console_a_second_client_shows_the_mode(
    request: pytest.FixtureRequest, pooler_dbname: str, mode: str
) -> None:
    dsn = _dsn(_bouncer(request, mode), pooler_dbname, "app")
    with _connect(dsn) as conn:
        info = session_guarantee(dsn, conn)
        # The caller's connection is untouched and still usable.
        assert conn.execute("SELECT 1").fetchone() == (1,)
    kind, words = EXPECTED_WITHOUT_CONSOLE[mode]
    assert info.kind == kind, info.evidence
    assert words in info.evidence
    assert "did not answer: not allowed" in info.evidence
    assert not info.keeps_session


class Holder:
    """Another client of the pool that keeps a server connection busy while the probe runs:
    an open transaction, or (statement mode, where transactions are refused) a long statement."""

    def __init__(self, dsn: str, mode: str, cluster: Cluster, dbname: str) -> None:
        self.conn = _connect(dsn)
        self.mode = mode
        self.error: BaseException | None = None
        self.pid = 0
        self.thread: threading.Thread | None = None
        if mode == "statement":
            self.thread = threading.Thread(target=self._sleep)
            self.thread.start()
            _wait_for_activity(cluster, dbname, "pg_sleep")
        else:
            self.conn.execute("BEGIN")
            row = self.conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            self.pid = row[0]

    def _sleep(self) -> None:
        try:
            self.conn.execute("SELECT pg_sleep(1.5)")
        except BaseException as exc:
            self.error = exc

    def finish(self) -> None:
        """The holder's own work went on undisturbed."""
        try:
            if self.thread is not None:
                self.thread.join()
                assert self.error is None, self.error
            else:
                row = self.conn.execute("SELECT pg_backend_pid()").fetchone()
                assert row == (self.pid,), "the holder lost its server connection"
                self.conn.execute("ROLLBACK")
        finally:
            self.conn.close()


def _wait_for_activity(cluster: Cluster, dbname: str, text: str) -> None:
    with _connect(cluster.dsn) as conn:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = %s AND state = 'active' AND query LIKE %s",
                (dbname, f"%{text}%"),
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.01)
    raise AssertionError(f"no active {text} in {dbname}")


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", POOL_MODES)
def test_a_busy_pool(
    request: pytest.FixtureRequest,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    mode: str,
    role: str,
) -> None:
    """Another client holds one of the pool's two server connections during the probe."""
    bouncer = _bouncer(request, mode)
    dsn = _dsn(bouncer, pooler_dbname, role)
    holder = Holder(dsn, mode, pooler_cluster, pooler_dbname)  # same role: same pool
    try:
        with _connect(dsn) as conn:
            started = time.monotonic()
            info = session_guarantee(dsn, conn, wait=1.0)
            elapsed = time.monotonic() - started
    finally:
        holder.finish()
    if role == "admin":
        assert info.kind == mode, info.evidence
    elif mode == "session":
        # The holder and our own connection pin both server connections: a second client
        # would wait for PgBouncer's query_wait_timeout; the probe gives up after `wait`.
        assert info.kind == "unknown-pooler"
        assert "got no server connection within 1s" in info.evidence
        assert 1.0 <= elapsed < 3.0
    else:
        assert info.kind == mode, info.evidence


def _leftovers(bouncer: PgBouncer, cluster: Cluster, dbname: str, role: str) -> list[str]:
    """What any client of the pool (database, role) could find on any of its server
    connections."""
    found: list[str] = []
    with _connect(cluster.dsn_for(dbname)) as direct:
        locks = direct.execute(
            "SELECT count(*) FROM pg_locks l JOIN pg_database d ON d.oid = l.database"
            " WHERE l.locktype = 'advisory' AND d.datname = current_database()"
        ).fetchone()
        if locks and locks[0]:
            found.append(f"{locks[0]} advisory locks")
        busy = direct.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND pid <> pg_backend_pid() AND state <> 'idle'"
        ).fetchone()
        if busy and busy[0]:
            found.append(f"{busy[0]} server connections not idle")
        pooled = {
            int(r[0])
            for r in direct.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
                " AND usename = %s",
                (APP_ROLE if role == "app" else "postgres",),
            )
        }
    # One statement per server connection at once: each client gets a different one.
    rows: list[tuple[Any, ...]] = []
    errors: list[BaseException] = []

    def look() -> None:
        try:
            with _connect(_dsn(bouncer, dbname, role)) as conn:
                row = conn.execute(
                    "SELECT pg_backend_pid(), current_setting('lock_timeout'),"
                    " current_setting('statement_timeout'),"
                    " current_setting('idle_session_timeout'),"
                    " (SELECT count(*) FROM pg_prepared_statements),"
                    " (SELECT count(*) FROM pg_listening_channels()),"
                    " (SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
                    "  AND pid = pg_backend_pid()),"
                    " pg_sleep(0.3)::text"
                ).fetchone()
                assert row is not None
                rows.append(row)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=look) for _ in range(bouncer.pool_size)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    seen = {int(r[0]) for r in rows}
    assert pooled <= seen, f"the check missed server connections {pooled - seen}"
    for pid, lock_timeout, statement_timeout, idle_timeout, prepared, channels, adv, _ in rows:
        state = (lock_timeout, statement_timeout, idle_timeout, prepared, channels, adv)
        if state != ("0", "0", "0", 0, 0, 0):
            found.append(f"backend {pid}: {state}")
    return found


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mode", POOL_MODES)
def test_nothing_is_left_on_the_pool(
    request: pytest.FixtureRequest,
    pooler_cluster: Cluster,
    pooler_dbname: str,
    mode: str,
    role: str,
) -> None:
    bouncer = _bouncer(request, mode)
    dsn = _dsn(bouncer, pooler_dbname, role)
    with _connect(dsn) as conn:
        session_guarantee(dsn, conn)
    assert _leftovers(bouncer, pooler_cluster, pooler_dbname, role) == []


def test_the_leftover_check_sees_a_leaking_probe(
    pgbouncer_transaction: PgBouncer, pooler_cluster: Cluster, pooler_dbname: str
) -> None:
    """The obvious probe on an idle transaction pool: fooled, and it leaks (the check can fail)."""
    bouncer = pgbouncer_transaction
    with _connect(bouncer.dsn_for(pooler_dbname)) as conn:
        pids = set()
        for _ in range(5):
            row = conn.execute("SELECT pg_backend_pid()").fetchone()
            assert row is not None
            pids.add(row[0])
        conn.execute("SELECT pg_advisory_lock(4242), set_config('lock_timeout', '1s', false)")
        held = conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid()"
        ).fetchone()
        # What it would conclude: one session. What is true: a transaction pool.
        assert len(pids) == 1
        assert held == (1,)
        assert session_guarantee(bouncer.dsn_for(pooler_dbname), conn).kind == "transaction"
    left = _leftovers(bouncer, pooler_cluster, pooler_dbname, "admin")
    assert "1 advisory locks" in left
    assert any("'1s'" in item for item in left), left


def test_a_connection_outside_autocommit_is_refused(
    pooler_cluster: Cluster, pooler_dbname: str
) -> None:
    """A statement there would leave a transaction open on the caller's connection."""
    dsn = pooler_cluster.dsn_for(pooler_dbname)
    with psycopg.connect(dsn) as conn:
        with pytest.raises(ValueError, match="autocommit"):
            session_guarantee(dsn, conn)
        assert conn.info.transaction_status == pq.TransactionStatus.IDLE


def test_a_dsn_with_several_poolers_is_probed_where_it_connected(
    pgbouncer_session: PgBouncer, pgbouncer_transaction: PgBouncer, pooler_dbname: str
) -> None:
    """With two hosts picked at random, the probe must ask the pooler the connection reached."""
    if psycopg.pq.version() < 160000:
        pytest.skip("load_balance_hosts needs libpq 16")
    s, t = pgbouncer_session.port, pgbouncer_transaction.port
    dsn = pgbouncer_session.dsn_for(pooler_dbname).replace(
        f"host=127.0.0.1 port={s}", f"host=127.0.0.1,127.0.0.1 port={s},{t}"
    )
    dsn += " load_balance_hosts=random"
    expected = {s: "session", t: "transaction"}
    for _ in range(8):
        with _connect(dsn) as conn:
            info = session_guarantee(dsn, conn, wait=2.0)
            assert info.kind == expected[int(conn.info.port)], info.evidence
