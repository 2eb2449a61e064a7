"""Indices: rules without a database, then plan/apply/status against real servers."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli.config import IndexSpec
from epstats_cli.indexes import IndexInfo, leftovers, match_recommended, redundancies
from tests.conftest import run_cli
from tests.helpers import Writer, catalog, fill, invalid_indexes


def idx(name: str, *cols: str, **kw: Any) -> IndexInfo:
    base: dict[str, Any] = dict(
        name=name,
        oid=hash(name) % 100000,
        method="btree",
        valid=True,
        ready=True,
        is_unique=False,
        is_primary=False,
        constraint_name=None,
        has_expressions=False,
        has_predicate=False,
        has_include=False,
        columns=cols,
        opclasses=("3126",) * len(cols),
        collations=("100",) * len(cols),
        options=("0",) * len(cols),
        size_bytes=8192,
        scans=0,
        definition=f"CREATE INDEX {name} ...",
    )
    base.update(kw)
    return IndexInfo(**base)


def test_prefix_is_redundant() -> None:
    indexes = [idx("e", "endpoint"), idx("et", "endpoint", "timestamp"), idx("t", "timestamp")]
    assert redundancies(indexes) == {"e": "et"}


@pytest.mark.parametrize(
    "covered",
    [
        idx("e", "endpoint", is_unique=True),
        idx("e", "endpoint", is_primary=True, is_unique=True),
        idx("e", "endpoint", constraint_name="c"),
        idx("e", "endpoint", has_predicate=True),
        idx("e", "endpoint", has_expressions=True),
        idx("e", "endpoint", has_include=True),
        idx("e", "endpoint", options=("3",)),  # DESC NULLS FIRST
        idx("e", "endpoint", opclasses=("10043",)),  # text_pattern_ops
        idx("e", "endpoint", method="hash"),
    ],
)
def test_never_redundant(covered: IndexInfo) -> None:
    assert redundancies([covered, idx("et", "endpoint", "timestamp")]) == {}


def test_invalid_or_partial_cover_does_not_count() -> None:
    assert redundancies([idx("e", "endpoint"), idx("et", "endpoint", "x", valid=False)]) == {}
    assert (
        redundancies([idx("e", "endpoint"), idx("et", "endpoint", "x", has_predicate=True)]) == {}
    )


def test_exact_duplicates_keep_one() -> None:
    assert redundancies([idx("a", "endpoint"), idx("b", "endpoint")]) == {"b": "a"}
    assert redundancies([idx("a", "endpoint"), idx("b", "endpoint")], keep=["b"]) == {"a": "b"}
    brin = {"method": "brin"}
    assert redundancies([idx("a", "t", **brin), idx("b", "t", "e", **brin)]) == {}
    assert redundancies([idx("a", "t", **brin), idx("b", "t", **brin)]) == {"b": "a"}


def test_recommended_are_never_redundant() -> None:
    indexes = [idx("et", "endpoint", "timestamp"), idx("u", "endpoint", "timestamp", "x")]
    assert redundancies(indexes, keep=["et"]) == {}


def test_match_recommended_states() -> None:
    phys = {"endpoint": "endpoint", "timestamp": "timestamp"}
    specs = [
        IndexSpec("t", ("timestamp",)),
        IndexSpec("et", ("endpoint", "timestamp")),
        IndexSpec("x", ("endpoint",)),
        IndexSpec("b", ("timestamp",), "brin"),
    ]
    have = [
        idx("t", "timestamp", valid=False),
        idx("other", "endpoint", "timestamp"),
        idx("x", "timestamp"),
    ]
    states = {
        r.spec.name: (r.state, r.existing) for r in match_recommended(specs, phys, have, set())
    }
    assert states == {
        "t": ("invalid", "t"),
        "et": ("present_as", "other"),
        "x": ("conflict", "x"),
        "b": ("missing", None),
    }
    building = {have[0].oid}
    assert match_recommended(specs[:1], phys, have, building)[0].state == "building"


def test_leftovers() -> None:
    have = [
        idx("a_ccnew", "x", valid=False),
        idx("b_ccold1", "x", valid=False),
        idx("c_ccnew", "x"),
        idx("d", "x", valid=False),
    ]
    assert [i.name for i in leftovers(have, set())] == ["a_ccnew", "b_ccold1"]
    assert [i.name for i in leftovers(have, {have[0].oid})] == ["b_ccold1"]


# --- against a real server --------------------------------------------------------------------


def _setup(dsn: str, conn: psycopg.Connection[Any], rows: int = 20000) -> None:
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, rows)


def _status(dsn: str, *extra: str) -> dict[str, dict[str, Any]]:
    r = run_cli(*extra, "--dsn", dsn, "--format", "json", "indexes", "status")
    assert r.code == 0, r.stderr
    return {i["name"]: i for i in json.loads(r.stdout)["indexes"]}


def test_guide_indices_redundancy_and_prune(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _setup(dsn, conn)
    conn.execute("CREATE INDEX idx_requests_timestamp ON requests(timestamp)")
    conn.execute("CREATE INDEX idx_requests_endpoint ON requests(endpoint)")
    conn.execute("CREATE INDEX idx_requests_endpoint_timestamp ON requests(endpoint, timestamp)")
    conn.execute(
        "ALTER TABLE requests ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
    )
    conn.execute("CREATE UNIQUE INDEX uq_endpoint_ts_id ON requests(id, endpoint)")
    conn.execute("CREATE UNIQUE INDEX uq_id ON requests(id)")
    st = _status(dsn)
    assert st["idx_requests_endpoint"]["redundant_of"] == "idx_requests_endpoint_timestamp"
    for name in (
        "requests_pkey",
        "uq_id",
        "uq_endpoint_ts_id",
        "idx_requests_timestamp",
        "idx_requests_endpoint_timestamp",
    ):
        assert st[name]["redundant_of"] is None, name
    assert st["idx_requests_endpoint_timestamp"]["recommended"] is True

    before = catalog(conn)
    r = run_cli("--dsn", dsn, "indexes", "apply", "--prune-redundant", "--dry-run")
    assert r.code == 0, r.stderr
    assert 'DROP INDEX CONCURRENTLY IF EXISTS "public"."idx_requests_endpoint"' in r.stdout
    assert catalog(conn) == before

    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "apply")
    assert r.code == 0
    assert json.loads(r.stdout) == {"tasks": []}  # nothing missing, pruning not asked
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "apply", "--prune-redundant")
    assert r.code == 0, r.stderr
    tasks = json.loads(r.stdout)["tasks"]
    assert [(t["task"], t["target"], t["status"]) for t in tasks] == [
        ("drop_redundant", "idx_requests_endpoint", "ok")
    ]
    st = _status(dsn)
    assert "idx_requests_endpoint" not in st
    assert {"requests_pkey", "uq_id", "uq_endpoint_ts_id"} <= set(st)


def test_plan_and_apply_builds_missing(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _setup(dsn, conn)
    conn.execute("CREATE INDEX my_ts ON requests(timestamp)")  # same definition, other name
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "plan")
    assert r.code == 0, r.stderr
    plan = json.loads(r.stdout)
    states = {p["name"]: p["state"] for p in plan["recommended"]}
    assert states == {
        "idx_requests_timestamp": "present_as",
        "idx_requests_endpoint_timestamp": "missing",
    }
    assert [s["sql"] for s in plan["steps"]] == [
        'CREATE INDEX CONCURRENTLY "idx_requests_endpoint_timestamp" ON "public"."requests" '
        'USING btree ("endpoint", "timestamp")'
    ]
    before = catalog(conn)
    assert run_cli("--dsn", dsn, "indexes", "apply", "--dry-run").code == 0
    assert catalog(conn) == before
    r = run_cli("--dsn", dsn, "indexes", "apply")
    assert r.code == 0, r.stderr
    st = _status(dsn)
    assert st["idx_requests_endpoint_timestamp"]["valid"] is True
    assert "idx_requests_timestamp" not in st  # counted as present under my_ts
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "apply")
    assert json.loads(r.stdout) == {"tasks": []}


def test_conflicting_definition_changes_nothing(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _setup(dsn, conn)
    conn.execute("CREATE INDEX idx_requests_timestamp ON requests(status)")
    before = catalog(conn)
    r = run_cli("--dsn", dsn, "indexes", "apply")
    assert r.code == 1
    assert "idx_requests_timestamp" in r.stderr and "Nothing was changed" in r.stderr
    assert r.stderr.count("\n") == 1
    assert catalog(conn) == before


def _cancel_build_halfway(dsn: str, conn: psycopg.Connection[Any], sql: str) -> None:
    """Start a CONCURRENTLY build on another connection and cancel it once it is under way."""
    errors: list[BaseException] = []
    pid_box: list[int] = []

    def build() -> None:
        with psycopg.connect(dsn, autocommit=True) as c:
            pid_box.append(c.info.backend_pid)
            c.execute("SET maintenance_work_mem = '1MB'")
            try:
                c.execute(sql)
            except psycopg.errors.QueryCanceled as exc:
                errors.append(exc)

    t = threading.Thread(target=build)
    t.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        # once the new index is in the catalog and being filled (REINDEX CONCURRENTLY makes
        # its copy only after "initializing")
        row = conn.execute(
            "SELECT pid FROM pg_stat_progress_create_index "
            "WHERE index_relid <> 0 AND phase LIKE 'building index%'"
        ).fetchone()
        if row:
            conn.execute("SELECT pg_cancel_backend(%s)", (row[0],))
            break
        time.sleep(0.01)
    t.join()
    assert errors, "the build finished before it could be cancelled"


def test_cancelled_build_is_repaired(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _setup(dsn, conn, rows=600000)
    _cancel_build_halfway(
        dsn,
        conn,
        "CREATE INDEX CONCURRENTLY idx_requests_endpoint_timestamp"
        " ON requests(endpoint, timestamp)",
    )
    assert invalid_indexes(conn) == ["idx_requests_endpoint_timestamp"]
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "plan")
    states = {p["name"]: p["state"] for p in json.loads(r.stdout)["recommended"]}
    assert states["idx_requests_endpoint_timestamp"] == "invalid"
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "apply")
    assert r.code == 0, r.stderr
    tasks = [(t["task"], t["target"]) for t in json.loads(r.stdout)["tasks"]]
    assert ("drop_invalid", "idx_requests_endpoint_timestamp") in tasks
    assert ("create", "idx_requests_endpoint_timestamp") in tasks
    assert invalid_indexes(conn) == []
    assert _status(dsn)["idx_requests_endpoint_timestamp"]["valid"] is True


def test_reindex_leftover_is_dropped(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _setup(dsn, conn, rows=600000)
    conn.execute("CREATE INDEX idx_requests_endpoint_timestamp ON requests(endpoint, timestamp)")
    conn.execute("CREATE INDEX idx_requests_timestamp ON requests(timestamp)")
    _cancel_build_halfway(dsn, conn, "REINDEX INDEX CONCURRENTLY idx_requests_endpoint_timestamp")
    left = invalid_indexes(conn)
    assert left and all("_ccnew" in n for n in left)
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "apply")
    assert r.code == 0, r.stderr
    assert {t["task"] for t in json.loads(r.stdout)["tasks"]} == {"drop_leftover"}
    assert invalid_indexes(conn) == []


def test_lock_held_gives_up_naming_the_pid(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _setup(dsn, conn)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "database: {lock_timeout: 200ms}\nmaintenance: {lock_retries: 1}\n"
        "indexes: {max_wait: 300ms}\n"
    )
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE requests IN SHARE MODE")
        holder_pid = holder.info.backend_pid
        r = run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply")
        holder.rollback()
    assert r.code == 1
    errors = [line for line in r.stderr.splitlines() if line]
    assert len(errors) == 2  # one line per index that could not be built
    # a CONCURRENTLY statement waits indexes.max_wait, once: no retry after that long a wait
    assert all(f"pid {holder_pid}" in line and "indexes.max_wait" in line for line in errors)
    assert invalid_indexes(conn) == []
    assert run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply").code == 0


def test_open_transaction_during_build_leaves_nothing_invalid(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A CONCURRENTLY build waits for older transactions; lock_timeout there must not strand it."""
    _setup(dsn, conn)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "database: {lock_timeout: 300ms}\nmaintenance: {lock_retries: 0}\n"
        "indexes: {max_wait: 300ms}\n"
    )
    with psycopg.connect(dsn) as holder:
        holder.execute("SELECT count(*) FROM requests")  # an open snapshot, no conflicting lock
        holder.execute("INSERT INTO requests VALUES ('/x', now(), 1, 200)")
        holder_pid = holder.info.backend_pid
        r = run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply")
        assert r.code == 1
        # Each build got into the catalog, then timed out waiting for the holder's transaction;
        # dropping it would wait for that transaction too, so it stays, and each error says
        # which index was left and what removes it.
        built = ["idx_requests_timestamp", "idx_requests_endpoint_timestamp"]
        assert sorted(invalid_indexes(conn)) == sorted(built)
        errors = [line for line in r.stderr.splitlines() if line]
        for line, name in zip(errors, built, strict=True):
            assert f"pid {holder_pid}" in line and "indexes.max_wait (300ms)" in line
            assert f"an invalid index {name} was left behind" in line
            assert line.endswith("(and the next `epstats indexes apply` rebuilds it)")
        holder.rollback()
    r = run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply")
    assert r.code == 0, r.stderr
    assert invalid_indexes(conn) == []


def test_writer_never_waits_longer_than_lock_timeout(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _setup(dsn, conn, rows=1_000_000)
    conn.execute("CREATE INDEX idx_requests_endpoint ON requests(endpoint)")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 1s}\n")
    with Writer(dsn) as writer:
        time.sleep(0.2)
        r = run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply", "--prune-redundant")
        time.sleep(0.2)
    assert r.code == 0, r.stderr
    assert writer.errors == []
    assert writer.count > 10
    assert writer.max_wait < 1.0, f"an insert waited {writer.max_wait:.3f}s"
    assert set(_status(dsn)) == {"idx_requests_timestamp", "idx_requests_endpoint_timestamp"}


def test_qualified_table_and_quoted_column(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        'source:\n  table: \'"Api"."Requests"\'\n  columns: {timestamp: Timestamp}\n'
        "indexes:\n  - {name: By Time, columns: [timestamp]}\n"
        "  - {name: ep_ts, columns: [endpoint, timestamp], method: brin}\n"
    )
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000, table='"Api"."Requests"', timestamp='"Timestamp"')
    r = run_cli("-c", str(cfg), "--dsn", dsn, "indexes", "apply")
    assert r.code == 0, r.stderr
    defs = {
        row[0]: row[1]
        for row in conn.execute(
            "SELECT indexrelid::regclass::text, pg_get_indexdef(indexrelid) FROM pg_index "
            'WHERE indrelid = \'"Api"."Requests"\'::regclass'
        ).fetchall()
    }
    assert defs == {
        '"Api"."By Time"': 'CREATE INDEX "By Time" ON "Api"."Requests" USING btree ("Timestamp")',
        '"Api".ep_ts': 'CREATE INDEX ep_ts ON "Api"."Requests" USING brin (endpoint, "Timestamp")'
        " WITH (autosummarize='on')",
    }
    st = _status(dsn, "-c", str(cfg))
    assert st["By Time"]["recommended"] and st["ep_ts"]["method"] == "brin"


def test_missing_table_is_a_clear_error(dsn: str) -> None:
    r = run_cli("--dsn", dsn, "indexes", "status")
    assert r.code == 1
    assert "public.requests does not exist" in r.stderr and r.stderr.count("\n") == 1


def test_prune_keeps_what_a_failed_build_would_have_covered(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    _setup(dsn, conn, rows=300_000)
    conn.execute("CREATE INDEX idx_requests_timestamp ON requests(timestamp)")
    conn.execute("CREATE INDEX idx_requests_endpoint ON requests(endpoint)")
    cfg = tmp_path / "c.yaml"
    # the build of (endpoint, timestamp) over 300k rows cannot finish in 20ms
    cfg.write_text("database: {statement_timeout: 20ms}\nmaintenance: {lock_retries: 0}\n")
    r = run_cli(
        "-c", str(cfg), "--dsn", dsn, "--format", "json", "indexes", "apply", "--prune-redundant"
    )
    assert r.code == 1
    tasks = {(t["task"], t["target"]): t for t in json.loads(r.stdout)["tasks"]}
    assert tasks[("create", "idx_requests_endpoint_timestamp")]["status"] == "failed"
    pruned = tasks[("drop_redundant", "idx_requests_endpoint")]
    assert pruned["status"] == "skipped" and "not pruned" in pruned["reason"]
    assert "idx_requests_endpoint" in _status(dsn)
