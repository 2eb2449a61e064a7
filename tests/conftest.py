"""Fixtures: real PostgreSQL servers (15 and 18 by default), a fresh database per test."""

from __future__ import annotations

import itertools
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from epstats_cli.cli import main
from tests.pgcluster import Cluster, bin_dirs, create_cluster

DEFAULT_VERSIONS = "15,18"


def _versions() -> list[int]:
    if os.environ.get("EPSTATS_TEST_DSN"):
        return [0]
    wanted = [int(v) for v in os.environ.get("EPSTATS_TEST_VERSIONS", DEFAULT_VERSIONS).split(",")]
    return wanted


@dataclass
class Server:
    """One running server under test: an admin DSN and helpers to make databases on it."""

    admin_dsn: str
    version: int
    cluster: Cluster | None

    def execute(self, sql: str, dbname: str | None = None) -> None:
        dsn = self.admin_dsn if dbname is None else self.dsn_for(dbname)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)

    def dsn_for(self, dbname: str, **kw: str) -> str:
        params = psycopg.conninfo.conninfo_to_dict(self.admin_dsn)
        params["dbname"] = dbname
        params.update(kw)
        return psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]


_started: dict[int, Server] = {}


@pytest.fixture(scope="session", params=_versions(), ids=lambda v: f"pg{v}" if v else "dsn")
def server(request: pytest.FixtureRequest) -> Iterator[Server]:
    version: int = request.param
    if version == 0:
        dsn = os.environ["EPSTATS_TEST_DSN"]
        with psycopg.connect(dsn) as conn:
            num = conn.info.server_version // 10000
        yield Server(dsn, num, None)
        return
    dirs = bin_dirs()
    if version not in dirs:
        msg = f"PostgreSQL {version} binaries not found (have {sorted(dirs)})"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    cluster = create_cluster(version, dirs[version])
    try:
        yield Server(cluster.dsn, version, cluster)
    finally:
        cluster.destroy()


def pytest_configure(config: pytest.Config) -> None:
    """Started under `nohup` (SIGHUP ignored), the processes the tests start would inherit
    the ignored SIGHUP, and epstats rightly leaves an ignored signal ignored: the tests that
    send SIGHUP to epstats would hang. The suite's children get the default disposition."""
    if signal.getsignal(signal.SIGHUP) is signal.SIG_IGN:
        signal.signal(signal.SIGHUP, signal.SIG_DFL)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test marked `one_version` (a heavy scenario) runs on the first server version of the
    run only (15 by default), or on EPSTATS_TEST_DSN's: the others cover the same code.
    Skipped at collection, so that none of its fixtures (a paused standby, say) is made."""
    first = _versions()[0]
    if not first:
        return
    for item in items:
        callspec = getattr(item, "callspec", None)
        version = callspec.params.get("server") if callspec is not None else None
        if version not in (None, first) and item.get_closest_marker("one_version"):
            item.add_marker(pytest.mark.skip(reason=f"heavy: run on PostgreSQL {first} only"))


@pytest.fixture(scope="session")
def standby(server: Server) -> Iterator[Server]:
    """A hot standby of the server under test (replicates every database)."""
    if server.cluster is None:
        pytest.skip("no standby for an external EPSTATS_TEST_DSN")
    from tests.pgcluster import create_standby

    replica = create_standby(server.cluster)
    try:
        yield Server(replica.dsn, server.version, replica)
    finally:
        replica.destroy()


def wait_for_replay(primary_dsn: str, standby: Server, dbname: str) -> str:
    """Wait until the standby has replayed everything the primary wrote; its DSN for dbname."""
    import time

    with psycopg.connect(primary_dsn, autocommit=True) as p:
        # the insert position: with synchronous_commit off, a commit may not be written yet
        row = p.execute("SELECT pg_current_wal_insert_lsn()::text").fetchone()
        assert row is not None
        lsn = row[0]
    dsn = standby.dsn_for(dbname)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with psycopg.connect(dsn, autocommit=True) as s:
                done = s.execute("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)).fetchone()
                if done and done[0]:
                    return dsn
        except psycopg.OperationalError:
            pass
        time.sleep(0.05)
    raise AssertionError("the standby did not catch up")


_counter = itertools.count()


@pytest.fixture
def dsn(server: Server) -> Iterator[str]:
    """A fresh, empty database on the server under test."""
    name = f"epstats_t{os.getpid()}_{next(_counter)}"
    server.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    try:
        yield server.dsn_for(name)
    finally:
        server.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def conn(dsn: str) -> Iterator[psycopg.Connection[Any]]:
    """An autocommit admin connection to the test database."""
    with psycopg.connect(dsn, autocommit=True) as c:
        yield c


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str


def run_cli(*args: str, env: dict[str, str | None] | None = None, cwd: str | None = None) -> Run:
    """Run the epstats CLI in-process through its real entry point and capture everything."""
    runner = CliRunner()
    base_env: dict[str, str | None] = {
        "EPSTATS_CONFIG": None,
        "EPSTATS_DSN": None,
        "COLUMNS": "200",
    }
    base_env.update(env or {})
    old = os.getcwd()
    try:
        if cwd:
            os.chdir(cwd)
        with runner.isolation(env=base_env) as streams:
            code = main(list(args))
            out = streams[0].getvalue().decode()
            err = streams[1].getvalue().decode()
    finally:
        os.chdir(old)
    return Run(code, out, err)


@pytest.fixture
def cli() -> Any:
    return run_cli
