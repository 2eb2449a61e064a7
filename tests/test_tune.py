"""`epstats tune plan|apply|status` on real servers: a plain table, a partitioned one (the
parameters on every partition), under lock_timeout, --dry-run; and `recommend` itself."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli.config import TuneConfig
from epstats_cli.tune import Measurement, recommend
from tests.conftest import run_cli
from tests.helpers import catalog, fill

INSERT_ONLY = (
    "autovacuum_vacuum_insert_threshold",
    "autovacuum_vacuum_insert_scale_factor",
    "autovacuum_analyze_threshold",
    "autovacuum_analyze_scale_factor",
    "autovacuum_freeze_min_age",
)


def _json(cfg: str, dsn: str, *args: str, code: int = 0) -> dict[str, Any]:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", *args)
    assert r.code == code, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def _reloptions(conn: psycopg.Connection[Any], name: str) -> dict[str, str]:
    row = conn.execute(
        "SELECT coalesce(reloptions, '{}') FROM pg_class WHERE oid = %s::regclass", (name,)
    ).fetchone()
    assert row is not None
    return dict(o.split("=", 1) for o in row[0])


def _flushed(conn: psycopg.Connection[Any]) -> None:
    conn.execute("SELECT pg_stat_force_next_flush()")


def test_plan_apply_status_on_a_plain_table(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 300ms}\nmaintenance: {lock_retries: 0}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20_000)
    _flushed(conn)
    plan = _json(c, dsn, "tune", "plan")
    m = plan["measurement"]
    assert 3_000 < m["rows_last_day"] <= 3_456 and m["inserted"] == 20_000
    recommended = {s["parameter"]: s["recommended"] for s in plan["recommended"]}
    assert set(recommended) == set(INSERT_ONLY)  # nothing deleted: the dead-tuple trigger stays
    assert recommended["autovacuum_vacuum_insert_scale_factor"] == "0"
    assert recommended["autovacuum_vacuum_insert_threshold"] == "1000"  # the server's floor
    per_hour = m["rows_last_day"] / 24
    assert recommended["autovacuum_analyze_threshold"] == str(math.ceil(per_hour * 6))
    reasons = " ".join(s["reason"] for s in plan["recommended"])
    assert f"{m['rows_last_day']:,} rows dated within the last day" in reasons
    assert {r["state"] for r in plan["relations"]} == {"not set"}
    [step] = plan["steps"]
    assert step["target"] == "public.requests"
    assert step["sql"].startswith('ALTER TABLE "public"."requests" SET (')

    before = catalog(conn), _reloptions(conn, "requests")
    dry = _json(c, dsn, "tune", "apply", "--dry-run")
    assert [t["sql"] for t in dry["tasks"]] == [step["sql"]]
    assert (catalog(conn), _reloptions(conn, "requests")) == before == (before[0], {})

    # under lock_timeout: a session holding a conflicting lock makes it fail, changing nothing
    with psycopg.connect(dsn) as holder:
        holder.execute("LOCK TABLE requests IN SHARE UPDATE EXCLUSIVE MODE")
        failed = _json(c, dsn, "tune", "apply", code=1)
        holder.rollback()
    assert failed["tasks"][0]["status"] == "failed"
    assert "lock" in failed["tasks"][0]["reason"]
    assert _reloptions(conn, "requests") == {}

    done = _json(c, dsn, "tune", "apply")
    assert [(t["status"], t["sql"]) for t in done["tasks"]] == [("ok", step["sql"])]
    got = _reloptions(conn, "requests")
    assert {k: float(v) for k, v in got.items()} == {k: float(v) for k, v in recommended.items()}
    status = _json(c, dsn, "tune", "status")
    assert {r["state"] for r in status["relations"]} == {"ok"}
    assert _json(c, dsn, "tune", "apply")["tasks"] == []  # nothing differs: nothing to do
    runs = conn.execute("SELECT task, status FROM epstats.runs WHERE task = 'tune'").fetchall()
    assert ("tune", "ok") in runs and ("tune", "failed") in runs


PARTITIONED = """
CREATE TABLE requests (endpoint text NOT NULL, "timestamp" timestamptz NOT NULL,
                       response_time double precision, status integer)
    PARTITION BY RANGE ("timestamp");
CREATE TABLE requests_old PARTITION OF requests FOR VALUES FROM (MINVALUE) TO ({cut});
CREATE TABLE requests_new PARTITION OF requests FOR VALUES FROM ({cut}) TO ({end});
"""


def test_apply_on_every_partition(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    cut, end = now[0] - dt.timedelta(days=3), now[0] + dt.timedelta(days=1)
    conn.execute(PARTITIONED.format(cut=f"'{cut.isoformat()}'", end=f"'{end.isoformat()}'"))
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 2s}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init").code == 0
    fill(conn, 20_000)
    conn.execute("DELETE FROM requests WHERE status = 404")  # retention-like deletes
    _flushed(conn)
    plan = _json(c, dsn, "tune", "plan")
    assert plan["measurement"]["partitions"] == 2
    recommended = {s["parameter"]: s["recommended"] for s in plan["recommended"]}
    assert recommended["autovacuum_vacuum_scale_factor"] == "0"
    assert int(recommended["autovacuum_vacuum_threshold"]) == plan["measurement"]["rows_last_day"]
    assert any("partitioned: set on each of its 2 partition(s)" in n for n in plan["notes"])
    targets = [s["target"] for s in plan["steps"]]
    assert targets == ["public.requests_new", "public.requests_old"]
    dry = _json(c, dsn, "tune", "apply", "--dry-run")
    assert [t["sql"] for t in dry["tasks"]] == [s["sql"] for s in plan["steps"]]
    assert _reloptions(conn, "requests_old") == {} == _reloptions(conn, "requests_new")
    done = _json(c, dsn, "tune", "apply")
    assert [t["status"] for t in done["tasks"]] == ["ok", "ok"]
    for part in ("requests_old", "requests_new"):
        got = _reloptions(conn, part)
        assert {k: float(v) for k, v in got.items()} == {
            k: float(v) for k, v in recommended.items()
        }
    assert _reloptions(conn, "requests") == {}  # the parent has no storage
    # a partition created later has none: status says so, apply sets it alone
    conn.execute(
        sql.SQL(
            "CREATE TABLE requests_next PARTITION OF requests FOR VALUES FROM ({}) TO ({})"
        ).format(sql.Literal(end), sql.Literal(end + dt.timedelta(days=1)))
    )
    status = _json(c, dsn, "tune", "status")
    states = {(r["relation"], r["state"]) for r in status["relations"]}
    assert ("public.requests_next", "not set") in states
    assert ("public.requests_old", "ok") in states
    again = _json(c, dsn, "tune", "apply")
    assert [t["target"] for t in again["tasks"]] == ["public.requests_next"]


def _m(version: int = 150000, **kw: Any) -> Measurement:
    base: dict[str, Any] = {
        "rows_last_day": 2_400_000, "rows": 100_000_000, "pages": 1_000_000,
        "inserted": 100_000_000, "updated": 0, "deleted": 0, "partitions": 0,
    }  # fmt: skip
    base.update(kw)
    return Measurement(version, **base)


def test_recommend_from_the_rate() -> None:
    settings, notes = recommend(_m(), TuneConfig())
    got = {s.parameter: s.value for s in settings}
    assert got == {
        "autovacuum_vacuum_insert_threshold": "100000",  # an hour at 100,000 rows per hour
        "autovacuum_vacuum_insert_scale_factor": "0",
        "autovacuum_analyze_threshold": "600000",  # six hours
        "autovacuum_analyze_scale_factor": "0",
        "autovacuum_freeze_min_age": "0",
    }
    assert any("left at the server's" in n for n in notes)
    # PostgreSQL 12: no insert trigger
    got12 = {s.parameter for s in recommend(_m(120000), TuneConfig())[0]}
    assert "autovacuum_vacuum_insert_threshold" not in got12
    # PostgreSQL 18: the unfrozen-fraction trigger and the max threshold are considered
    eighteen = recommend(
        _m(180000, deleted=5, server={"autovacuum_vacuum_max_threshold": "100000000"}),
        TuneConfig(),
    )[0]
    why = {s.parameter: s.reason for s in eighteen}
    assert "unfrozen share" in why["autovacuum_vacuum_insert_scale_factor"]
    assert "below autovacuum_vacuum_max_threshold 100,000,000" in why["autovacuum_vacuum_threshold"]
    # updates: rows change, so no early freezing
    assert "autovacuum_freeze_min_age" not in {
        s.parameter for s in recommend(_m(updated=10), TuneConfig())[0]
    }
    # no rows in the last day: nothing to measure from
    assert recommend(_m(rows_last_day=0), TuneConfig())[0] == []
