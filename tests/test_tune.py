"""`epstats tune plan|apply|status` on real servers: a plain table, a partitioned one (the
parameters on every partition), under lock_timeout, --dry-run; and `recommend` itself."""

from __future__ import annotations

import datetime as dt
import json
import math
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from epstats_cli.config import TuneConfig
from epstats_cli.tune import Measurement, recommend
from tests.conftest import run_cli
from tests.helpers import catalog, fill

pytestmark = pytest.mark.one_version  # heavy: the first server version only

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
    assert recommended["autovacuum_vacuum_insert_scale_factor"] == 0
    assert recommended["autovacuum_vacuum_insert_threshold"] == 1000  # the server's floor
    per_hour = m["rows_last_day"] / 24
    assert recommended["autovacuum_analyze_threshold"] == math.ceil(per_hour * 6)
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
    assert recommended["autovacuum_vacuum_scale_factor"] == 0
    assert recommended["autovacuum_vacuum_threshold"] == plan["measurement"]["rows_last_day"]
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


def test_a_live_table_settles(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    """The measured rate moves between runs: a threshold within TOLERANCE (25 %) of the new
    recommendation is ok, so status settles and a cron'd apply does not re-ALTER each time;
    one further off differs again."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("database: {lock_timeout: 2s}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20_000)
    _flushed(conn)
    assert [t["status"] for t in _json(c, dsn, "tune", "apply")["tasks"]] == ["ok"]
    set_to = _reloptions(conn, "requests")["autovacuum_analyze_threshold"]
    fill(conn, 300)  # ~9 % more rows within the last day: a slightly higher threshold
    _flushed(conn)
    status = _json(c, dsn, "tune", "status")
    [analyze] = [r for r in status["relations"] if r["parameter"] == "autovacuum_analyze_threshold"]
    assert analyze["recommended"] > analyze["current"] == int(set_to)
    assert {r["state"] for r in status["relations"]} == {"ok"}
    assert _json(c, dsn, "tune", "apply")["tasks"] == []
    assert _reloptions(conn, "requests")["autovacuum_analyze_threshold"] == set_to
    fill(conn, 2_000)  # now well past 25 %: it differs, and apply sets it
    _flushed(conn)
    off = _json(c, dsn, "tune", "status")["relations"]
    assert ("autovacuum_analyze_threshold", "differs") in {
        (r["parameter"], r["state"]) for r in off
    }
    [task] = _json(c, dsn, "tune", "apply")["tasks"]
    assert task["status"] == "ok" and "autovacuum_analyze_threshold" in task["sql"]


def test_plan_evidence_and_json_numbers(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The server's value of autovacuum_freeze_min_age is vacuum_freeze_min_age; numbers are
    numbers in JSON."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text("{}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20_000)
    _flushed(conn)
    plan = _json(c, dsn, "tune", "plan")
    server = conn.execute(
        "SELECT setting::int FROM pg_settings WHERE name = 'vacuum_freeze_min_age'"
    )
    row = server.fetchone()
    assert row is not None
    by = {r["parameter"]: r for r in plan["relations"]}
    assert by["autovacuum_freeze_min_age"]["server_default"] == row[0]
    assert by["autovacuum_analyze_threshold"]["server_default"] == 50
    assert all(isinstance(s["recommended"], int | float) for s in plan["recommended"])
    assert all(isinstance(r["recommended"], int | float) for r in plan["relations"])
    assert _json(c, dsn, "tune", "apply")["tasks"][0]["status"] == "ok"
    after = _json(c, dsn, "tune", "plan")["relations"]
    assert all(isinstance(r["current"], int | float) for r in after)


def test_evidence_says_what_set_the_threshold() -> None:
    """A rate too low for the configured interval: the server's minimum sets the threshold,
    and the evidence says so (not "about every 0s"); a partitioned table's scale-factor
    evidence is about a partition's own size."""
    from datetime import timedelta

    cfg = TuneConfig(vacuum_every=timedelta(hours=1), analyze_every=timedelta(minutes=1))
    settings, _notes = recommend(_m(rows_last_day=2_400), cfg)  # 100 rows per hour
    why = {s.parameter: (s.value, s.reason) for s in settings}
    value, reason = why["autovacuum_analyze_threshold"]
    assert value == "50"
    assert "about every 30m 0s (the minimum of 50 rows; at this rate that is longer)" in reason
    value, reason = why["autovacuum_vacuum_insert_threshold"]
    assert value == "1000" and "about every 10h 0m (the minimum of 1,000 rows" in reason
    plain = recommend(_m(), TuneConfig())[0]
    assert "about every 1h 0m of inserts" in plain[0].reason
    assert "minimum" not in plain[0].reason
    parts = recommend(_m(partitions=3, largest=("public.requests_p3", 4_000_000)), TuneConfig())
    scale = {s.parameter: s.reason for s in parts[0]}["autovacuum_vacuum_insert_scale_factor"]
    assert "the largest, public.requests_p3, has 4,000,000 rows now: 800,000 more" in scale
    assert "100,000,000" not in scale


PARTIAL_OWNERS = """
CREATE TABLE requests (endpoint text NOT NULL, "timestamp" timestamptz NOT NULL,
                       response_time double precision, status integer)
    PARTITION BY RANGE ("timestamp");
CREATE TABLE requests_old PARTITION OF requests FOR VALUES FROM (MINVALUE) TO ({cut});
CREATE TABLE requests_new PARTITION OF requests FOR VALUES FROM ({cut}) TO (MAXVALUE);
"""


def test_apply_checks_every_right_first(
    server: Any, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """As a role with no rights: `tune apply` and its --dry-run refuse before anything runs,
    naming every right at once (recording the run, SELECT to measure, the owner's rights on
    each partition: a member of a plain owner, a superuser's partition in the superuser's
    words); granted them, it runs."""
    now = conn.execute("SELECT now() - interval '3 days'").fetchone()
    assert now is not None
    conn.execute(PARTIAL_OWNERS.format(cut=f"'{now[0].isoformat()}'"))
    assert run_cli("--dsn", dsn, "init").code == 0
    fill(conn, 20_000)
    db = conn.info.dbname
    owner, role = f"to_{db}", f"tr_{db}"
    for name in (owner, role):
        conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD 'pw'").format(sql.Identifier(name)))
    conn.execute(f"ALTER TABLE requests OWNER TO {owner}")
    conn.execute(f"ALTER TABLE requests_new OWNER TO {owner}")  # requests_old: the superuser's
    me = conn.execute("SELECT current_user").fetchone()
    assert me is not None
    try:
        role_dsn = server.dsn_for(db, user=role, password="pw")
        before = catalog(conn), _reloptions(conn, "requests_new")
        runs = conn.execute("SELECT count(*) FROM epstats.runs").fetchone()
        dry = run_cli("--dsn", role_dsn, "tune", "apply", "--dry-run")
        real = run_cli("--dsn", role_dsn, "tune", "apply")
        assert dry.code == 1 and real.code == 1, (dry.stdout, dry.stderr)
        assert real.stdout == "" and "Traceback" not in real.stderr
        assert "would fail" in dry.stderr.splitlines()[0]
        assert "was not run" in real.stderr.splitlines()[0]
        lines = real.stderr.splitlines()[1:]
        assert dry.stderr.splitlines()[1:] == lines
        text = "\n".join(lines)
        assert f"lacks {len(lines)} rights" in real.stderr.splitlines()[0]
        assert f"GRANT USAGE ON SCHEMA epstats TO {role}" in text
        assert f"GRANT SELECT, INSERT, UPDATE ON epstats.runs TO {role}" in text
        assert "SELECT on public.requests (measure the insert rate): GRANT SELECT ON " in text
        assert (
            "the owner's rights on public.requests_new (ALTER TABLE ... SET (storage "
            f"parameters)): connect as {owner}, or GRANT {owner} TO {role}"
        ) in text
        assert (
            f"the owner's rights on public.requests_old (ALTER TABLE ... SET (storage "
            f"parameters)): its owner {me[0]} is a superuser, whose role is never to be "
            f"granted: a superuser must run this, or give it an owner of its own (ALTER TABLE "
            f"public.requests_old OWNER TO {role})"
        ) in text
        assert (catalog(conn), _reloptions(conn, "requests_new")) == before
        assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == runs
        # granted what it named (the superuser's partition given an owner of its own): it runs
        conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {role}")
        conn.execute(f"GRANT SELECT, INSERT, UPDATE ON epstats.runs TO {role}")
        conn.execute(f"GRANT SELECT ON requests TO {role}")
        conn.execute(f"GRANT {owner} TO {role}")
        conn.execute(f"ALTER TABLE requests_old OWNER TO {owner}")
        done = run_cli("--dsn", role_dsn, "--format", "json", "tune", "apply")
        assert done.code == 0, done.stderr
        assert [t["status"] for t in json.loads(done.stdout)["tasks"]] == ["ok", "ok"]
    finally:
        for name in (role, owner):
            conn.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
            conn.execute(f"DROP OWNED BY {name}")
        for name in (role, owner):
            server.execute(f"DROP ROLE IF EXISTS {name}")
