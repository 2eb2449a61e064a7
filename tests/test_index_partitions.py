"""`indexes apply|status|plan` on a partitioned source table (real servers): each recommended
index ON ONLY the parent, built CONCURRENTLY on each partition (a DEFAULT one, a
sub-partitioned one, one attached later with an index of its own, which is attached rather than
built again), attached; a writer inserting throughout; dry run equals execution; a second apply
does nothing; an interrupted apply (between partitions, a failed build's invalid index left)
finished by the next one and by cleanup; status per partition."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import indexes
from epstats_cli.config import Config, load
from epstats_cli.db import Session, connect
from epstats_cli.execute import Executor
from epstats_cli.index_partitions import derived_name
from tests.conftest import run_cli
from tests.helpers import Writer

pytestmark = pytest.mark.one_version  # heavy: the first server version only

LOCK_TIMEOUT = 1.0
CONFIG = "database: {lock_timeout: 1s}\n"
TABLE = (
    'CREATE TABLE {name} (endpoint text NOT NULL, "timestamp" timestamptz NOT NULL, '
    "response_time double precision, status integer)"
)
DAY = "date_trunc('day', now())"


def _setup(conn: psycopg.Connection[Any]) -> None:
    conn.execute(TABLE.format(name="requests") + ' PARTITION BY RANGE ("timestamp")')
    for d in range(-5, 2):
        conn.execute(
            f"CREATE TABLE requests_d{d + 5} PARTITION OF requests FOR VALUES FROM "
            f"({DAY} + interval '{d} days') TO ({DAY} + interval '{d + 1} days')"
        )
    conn.execute(  # a sub-partitioned partition: older days, by hash of the endpoint
        "CREATE TABLE requests_old PARTITION OF requests FOR VALUES FROM "
        f"({DAY} - interval '30 days') TO ({DAY} - interval '5 days') PARTITION BY HASH (endpoint)"
    )
    for r in range(2):
        conn.execute(
            f"CREATE TABLE requests_old_h{r} PARTITION OF requests_old "
            f"FOR VALUES WITH (MODULUS 2, REMAINDER {r})"
        )
    conn.execute("CREATE TABLE requests_default PARTITION OF requests DEFAULT")
    conn.execute(
        "INSERT INTO requests SELECT '/api/e' || (g % 40), now() - (g % 2000) * interval '10 min',"
        " g % 500, 200 FROM generate_series(1, 40000) g"
    )
    conn.execute(  # a partition attached later, with an index of the definition of its own
        TABLE.format(name="requests_later")
    )
    conn.execute(
        "INSERT INTO requests_later SELECT '/late', "
        f"{DAY} + interval '2 days' + g * interval '1 s', 1, 200 FROM generate_series(1, 500) g"
    )
    conn.execute('CREATE INDEX requests_later_ts ON requests_later ("timestamp")')
    conn.execute(
        "ALTER TABLE requests ATTACH PARTITION requests_later FOR VALUES FROM "
        f"({DAY} + interval '2 days') TO ({DAY} + interval '3 days')"
    )


@pytest.fixture
def session(dsn: str, tmp_path: Path) -> Iterator[Session]:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    s = connect(load(str(cfg), {}), dsn)
    try:
        yield s
    finally:
        s.conn.close()


def _leaves(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT relid::regclass::text FROM pg_partition_tree('requests') WHERE isleaf ORDER BY 1"
    ).fetchall()
    return [r[0] for r in rows]


def _valid(conn: psycopg.Connection[Any]) -> dict[str, bool]:
    rows = conn.execute(
        "SELECT c.relname, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'requests'::regclass"
    ).fetchall()
    return {r[0]: r[1] for r in rows}


def _index_count(conn: psycopg.Connection[Any], table: str) -> int:
    row = conn.execute(
        "SELECT count(*) FROM pg_index WHERE indrelid = %s::regclass", (table,)
    ).fetchone()
    assert row is not None
    return int(row[0])


def _json(cfg: Path, dsn: str, *args: str) -> Any:
    r = run_cli("-c", str(cfg), "--dsn", dsn, "--format", "json", *args)
    assert r.code == 0, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_apply_on_a_partitioned_table_with_a_writer(
    dsn: str, conn: psycopg.Connection[Any], session: Session, tmp_path: Path
) -> None:
    _setup(conn)
    _plan, dry = indexes.apply(session, Executor(session, dry_run=True))
    assert {r.status for r in dry} == {"planned"}
    planned = [t for r in dry for t in (r.sql or "").split(";\n") if not t.startswith("--")]
    real = Executor(session)
    with Writer(dsn) as writer:
        _plan, results = indexes.apply(session, real)
    assert [r for r in results if r.status != "ok"] == []
    sent = [e.text for e in real.log if e.kind == "run"]
    assert sent == planned  # the dry run shows every statement that ran, in order
    assert writer.errors == [] and writer.count > 10
    assert writer.max_wait < LOCK_TIMEOUT + 1.0, f"an INSERT waited {writer.max_wait:.2f}s"
    assert _valid(conn) == {"idx_requests_timestamp": True, "idx_requests_endpoint_timestamp": True}
    # ON ONLY the parent (never CONCURRENTLY there), CONCURRENTLY on each partition, attached
    assert sum("ON ONLY" in t for t in sent) == 2 + 2  # the parent and the sub-partitioned one
    assert not any("CONCURRENTLY" in t and '"public"."requests" ' in t for t in sent)
    leaves = _leaves(conn)
    assert len(leaves) == 11
    for leaf in leaves:  # each leaf has the two, attached; the later one kept its own
        assert _index_count(conn, leaf) == 2, leaf
    assert not any("requests_later_idx_requests_timestamp" in t for t in sent)
    assert any('ATTACH PARTITION "public"."requests_later_ts"' in t for t in sent)
    cfg = tmp_path / "c.yaml"
    # a second apply does nothing
    assert _json(cfg, dsn, "indexes", "plan")["steps"] == []
    again = run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply")
    assert again.code == 0, again.stdout + again.stderr
    status = _json(cfg, dsn, "indexes", "status")
    parts = status["partitions"]
    assert {p["state"] for p in parts} == {"attached"}
    assert {p["partition"] for p in parts} >= {"requests_default", "requests_old", "requests_later"}
    assert len(parts) == 2 * 12  # 11 leaves and the sub-partitioned one, two indices each


def test_interrupted_apply_is_finished_by_the_next(
    dsn: str, conn: psycopg.Connection[Any], session: Session, tmp_path: Path
) -> None:
    _setup(conn)
    plan = indexes.make_plan(session, measured=True)
    # killed between partitions: the first few steps ran, the rest did not
    Executor(session).run_all([w.step for w in plan.partition_work[:5]])
    # and one partition's build failed, leaving an invalid index under its derived name
    name = derived_name("requests_d3", "requests", "idx_requests_endpoint_timestamp")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON requests_d3 (endpoint)")
    assert _valid(conn) == {"idx_requests_timestamp": False}
    cfg = tmp_path / "c.yaml"
    status = _json(cfg, dsn, "indexes", "status")
    states = {(p["partition"], p["index"]): p["state"] for p in status["partitions"]}
    assert states[("requests_d3", "idx_requests_endpoint_timestamp")] == "rebuild"
    assert states[("requests_d0", "idx_requests_timestamp")] == "attached"
    assert states[("requests_d4", "idx_requests_timestamp")] == "build"
    assert states[("requests_later", "idx_requests_timestamp")] == "attach"
    plan_doc = _json(cfg, dsn, "indexes", "plan")
    recommended = {r["name"]: r["state"] for r in plan_doc["recommended"]}
    assert recommended == {
        "idx_requests_timestamp": "incomplete",
        "idx_requests_endpoint_timestamp": "missing",
    }
    # cleanup drops the failed build's invalid index, and leaves the parent's to apply
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init").code == 0
    cleanup = run_cli(
        "-c", str(cfg), "--dsn", dsn, "maintain", "--only", "cleanup", "--force", "cleanup"
    )
    assert cleanup.code == 0, cleanup.stdout + cleanup.stderr
    assert conn.execute("SELECT count(*) FROM pg_class WHERE relname = %s", (name,)).fetchone() == (
        0,
    )
    assert _valid(conn) == {"idx_requests_timestamp": False}
    # the invalid index again (as if cleanup had not run): apply drops it and builds it
    conn.execute(f"DROP INDEX IF EXISTS {name}")
    with pytest.raises(psycopg.errors.UniqueViolation):
        conn.execute(f"CREATE UNIQUE INDEX CONCURRENTLY {name} ON requests_d3 (endpoint)")
    r = run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply")
    assert r.code == 0, r.stdout + r.stderr
    assert _valid(conn) == {"idx_requests_timestamp": True, "idx_requests_endpoint_timestamp": True}
    assert conn.execute("SELECT count(*) FROM pg_index WHERE NOT indisvalid").fetchone() == (0,)
    for leaf in _leaves(conn):
        assert _index_count(conn, leaf) == 2, leaf
    assert _json(cfg, dsn, "indexes", "plan")["steps"] == []


def test_switch_method_is_refused_on_a_partitioned_table(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _setup(conn)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    r = run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply", "--switch-method")
    assert r.code == 1, r.stdout + r.stderr
    assert "--switch-method is not supported on a partitioned table" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "Traceback" not in r.stderr
    assert _valid(conn) == {}


def test_derived_names_fit() -> None:
    assert derived_name("requests_p20250301", "requests", "requests_ts_idx") == (
        "requests_p20250301_ts_idx"
    )
    long = derived_name("r" * 60, "r", "idx_requests_endpoint_timestamp")
    assert len(long.encode()) <= 63
    assert long != derived_name("r" * 59 + "s", "r", "idx_requests_endpoint_timestamp")
    assert Config() is not None
