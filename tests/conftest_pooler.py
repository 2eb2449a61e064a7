"""Fixtures: a real PgBouncer in session, transaction and statement mode, on PostgreSQL 15.

The pooler scenarios are heavy (a cluster and three PgBouncers), so they run on one server
version. Load them with `pytest_plugins = ["tests.conftest_pooler"]` in tests/conftest.py,
or import the fixtures into a test module.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import psycopg
import pytest

from tests.pgbouncer import (
    APP_PASSWORD,
    APP_ROLE,
    PgBouncer,
    PoolMode,
    pgbouncer_binary,
    start_pgbouncer,
)
from tests.pgcluster import Cluster, bin_dirs, create_cluster

POOLER_PG_VERSION = 15


def _missing(what: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(what)
    pytest.skip(what)


@pytest.fixture(scope="session")
def pooler_cluster() -> Iterator[Cluster]:
    """A PostgreSQL 15 cluster for the pooler scenarios, with an ordinary login role."""
    if os.environ.get("EPSTATS_TEST_DSN"):
        pytest.skip("the pooler scenarios start their own server (not EPSTATS_TEST_DSN)")
    dirs = bin_dirs()
    if POOLER_PG_VERSION not in dirs:
        _missing(f"PostgreSQL {POOLER_PG_VERSION} binaries not found (have {sorted(dirs)})")
    if pgbouncer_binary() is None:
        _missing("pgbouncer not found (apt-get install pgbouncer)")
    cluster = create_cluster(POOLER_PG_VERSION, dirs[POOLER_PG_VERSION])
    try:
        with psycopg.connect(cluster.dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE {APP_ROLE} LOGIN PASSWORD '{APP_PASSWORD}'")
        yield cluster
    finally:
        cluster.destroy()


def _bouncer(cluster: Cluster, mode: PoolMode) -> Iterator[PgBouncer]:
    with start_pgbouncer(cluster, mode, pool_size=2) as bouncer:
        yield bouncer


@pytest.fixture(scope="session")
def pgbouncer_session(pooler_cluster: Cluster) -> Iterator[PgBouncer]:
    """PgBouncer in session mode, default_pool_size=2."""
    yield from _bouncer(pooler_cluster, "session")


@pytest.fixture(scope="session")
def pgbouncer_transaction(pooler_cluster: Cluster) -> Iterator[PgBouncer]:
    """PgBouncer in transaction mode, default_pool_size=2."""
    yield from _bouncer(pooler_cluster, "transaction")


@pytest.fixture(scope="session")
def pgbouncer_statement(pooler_cluster: Cluster) -> Iterator[PgBouncer]:
    """PgBouncer in statement mode, default_pool_size=2."""
    yield from _bouncer(pooler_cluster, "statement")


_counter = itertools.count()


@pytest.fixture
def pooler_dbname(pooler_cluster: Cluster) -> Iterator[str]:
    """A fresh database on the pooler cluster: PgBouncer pools are per database, so also a
    fresh pool in every PgBouncer."""
    name = f"epstats_pool{os.getpid()}_{next(_counter)}"
    with psycopg.connect(pooler_cluster.dsn, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE template0")
    try:
        yield name
    finally:
        with psycopg.connect(pooler_cluster.dsn, autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
