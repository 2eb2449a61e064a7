"""Issue 18, phase 2a: the rollup of normalized endpoints and its status classes, on real
servers, against the Python oracle of the documented rule (tests/endpoint_oracle.py): build and
refresh through epstats.endpoint_map for both strategies, `report top` / `report endpoint`
from the rollup, rules before auto, a changed rule refused until --replace, and a rollup of
an earlier epstats (no status classes)."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import zoneinfo
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import config, endpoints, rollup
from epstats_cli.config import EndpointRule
from epstats_cli.db import connect
from epstats_cli.endpoints import Normalization
from epstats_cli.execute import Executor
from tests import endpoint_oracle as oracle
from tests.conftest import run_cli
from tests.test_rollup_steps import planned, ran

pytestmark = pytest.mark.one_version  # heavy: the first server version only

NY = zoneinfo.ZoneInfo("America/New_York")
RULES = [("^/v1/users/[a-z]+", "/v1/users/{name}")]
RULES_YAML = (
    "  endpoint_rules:\n    - {pattern: '^/v1/users/[a-z]+', replace: '/v1/users/{name}'}\n"
)
STATUSES = [200, 201, 204, 301, 304, 404, 429, 500, 503, 102, 700, None]
Row = tuple[str, dt.datetime, int | None]


def _raw(rnd: random.Random, i: int) -> str:
    kind = i % 8
    if kind == 0:
        return f"/users/{rnd.randrange(500)}"
    if kind == 1:
        return f"/orders/{rnd.getrandbits(128):032x}/items?page={i % 3}"
    if kind == 2:
        u = f"{rnd.getrandbits(128):032x}"
        return f"/o/{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}"
    if kind == 3:
        return f"/blobs/{rnd.getrandbits(80):020x}"
    if kind == 4:  # a rule's: alice is no identifier, but the rule names it
        return f"/v1/users/{rnd.choice(['alice', 'bob', 'carol'])}/orders/{rnd.randrange(99)}"
    return rnd.choice(["/healthz", "/api/v1/search?q=x", "/api/v1/search", "/login"])


def _rows(rnd: random.Random, now: dt.datetime, n: int, minutes: int) -> list[Row]:
    return [
        (_raw(rnd, i), now - dt.timedelta(minutes=rnd.randrange(minutes)), rnd.choice(STATUSES))
        for i in range(n)
    ]


def _insert(dsn: str, rows: list[Row]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO requests (endpoint, timestamp, response_time, status) "
            "VALUES (%s, %s, 1, %s)",
            rows,
        )


def _oracle(
    rows: list[Row], rules: list[tuple[str, str]]
) -> dict[tuple[str, dt.date], Counter[str]]:
    """Per normalized endpoint and New York day: requests, errors and each status class."""
    out: dict[tuple[str, dt.date], Counter[str]] = defaultdict(Counter)
    for raw, ts, status in rows:
        key = (oracle.normalize(raw, "auto", rules) or "", ts.astimezone(NY).date())
        out[key]["request_count"] += 1
        out[key]["error_count"] += status is not None and status >= 500
        out[key][oracle.status_class(status)] += 1
    return out


COLS = ["request_count", "error_count"] + [
    f"status_{c}" for c in ("2xx", "3xx", "4xx", "5xx", "other")
]


def _rollup(dsn: str) -> dict[tuple[str, dt.date], Counter[str]]:
    with psycopg.connect(dsn) as conn:
        got = conn.execute(
            f"SELECT endpoint, day, {', '.join(COLS)} FROM endpoint_daily_stats "
            "WHERE endpoint IS NOT NULL"
        ).fetchall()
    return {
        (r[0], r[1]): Counter({c: v for c, v in zip(COLS, r[2:], strict=True) if v}) for r in got
    }


def _setup(dsn: str, tmp_path: Path, strategy: str, rules: bool = True) -> tuple[str, list[Row]]:
    assert run_cli("--dsn", dsn, "-q", "init", "--with-requests-table").code == 0
    with psycopg.connect(dsn) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    rows = _rows(random.Random(18), now, 2400, 60 * 24 * 5)
    _insert(dsn, rows)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "source:\n  timezone: America/New_York\n  endpoint_ids: auto\n"
        + (RULES_YAML if rules else "")
        + f"view: {{strategy: {strategy}}}\nreports: {{days: 7}}\n"
    )
    return str(cfg), rows


def cli(cfg: str, dsn: str, *args: str) -> Any:
    return run_cli("-c", cfg, "--dsn", dsn, *args)


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_the_rollup_of_normalized_endpoints_equals_the_oracle(
    strategy: str, dsn: str, tmp_path: Path
) -> None:
    cfg, rows = _setup(dsn, tmp_path, strategy)
    r = cli(cfg, dsn, "view", "build")
    assert r.code == 0, r.stderr
    want = _oracle(rows, RULES)
    got = _rollup(dsn)
    assert got == want
    endpoints = {e for e, _d in want}
    days = {d for _e, d in want}
    assert len(got) <= len(endpoints) * len(days) and len(endpoints) == 8
    assert "/v1/users/{name}/orders/{id}" in endpoints  # the rule, then auto
    assert len({raw for raw, _ts, _s in rows}) > 10 * len(endpoints)
    for c in got.values():  # the classes add up to the requests
        assert sum(c[k] for k in COLS[2:]) == c["request_count"]

    # a refresh maps the new raw endpoints and aggregates them (new rows, new ids)
    with psycopg.connect(dsn) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        before = conn.execute("SELECT count(*) FROM epstats.endpoint_map").fetchone()[0]  # type: ignore[index]
    more = _rows(random.Random(19), now, 600, 60)
    _insert(dsn, more)
    r = cli(cfg, dsn, "view", "refresh")
    assert r.code == 0, r.stderr
    assert _rollup(dsn) == _oracle(rows + more, RULES)
    with psycopg.connect(dsn) as conn:
        after = conn.execute("SELECT count(*) FROM epstats.endpoint_map").fetchone()[0]  # type: ignore[index]
    if strategy == "materialized":  # its definition joins the map: the refresh fills it
        assert after > before
    else:  # an incremental refresh of recent days normalizes each row itself (cheaper)
        assert after == before
    r = cli(cfg, dsn, "--format", "json", "view", "verify", "--days", "7")
    assert r.code == 0, r.stdout + r.stderr

    # reports from the rollup: the oracle's numbers, under normalized names
    doc = json.loads(cli(cfg, dsn, "--format", "json", "report", "top", "--source", "view").stdout)
    lo = dt.datetime.fromisoformat(doc["window"]["from"])
    hi = dt.datetime.fromisoformat(doc["window"]["to"])
    inside = [x for x in rows + more if lo <= x[1] < hi]
    per: Counter[str] = Counter()
    for (e, _d), c in _oracle(inside, RULES).items():
        per[e] += c["request_count"]
    assert {x["endpoint"]: x["requests"] for x in doc["rows"]} == dict(per)
    r = cli(cfg, dsn, "--format", "json", "report", "endpoint", "/users/{id}", "--source", "view")
    assert r.code == 0, r.stderr
    assert json.loads(r.stdout)["totals"]["requests"] == per["/users/{id}"]

    # raw and auto normalize too (issue 18 phase 2b: tests/test_report_normalized.py)
    for source in ("raw", "auto"):
        r = cli(cfg, dsn, "--format", "json", "report", "top", "--source", source)
        assert r.code == 0, r.stderr
        assert {x["endpoint"] for x in json.loads(r.stdout)["rows"]} == set(per)


def test_a_changed_rule_is_refused_until_replace(dsn: str, tmp_path: Path) -> None:
    cfg, rows = _setup(dsn, tmp_path, "incremental", rules=False)
    assert cli(cfg, dsn, "view", "build").code == 0
    assert _rollup(dsn) == _oracle(rows, [])
    text = (
        Path(cfg).read_text().replace("endpoint_ids: auto\n", "endpoint_ids: auto\n" + RULES_YAML)
    )
    Path(cfg).write_text(text)
    r = cli(cfg, dsn, "view", "refresh")
    assert r.code == 3 and "source.endpoint_rules" in r.stderr, r.stderr
    r = cli(cfg, dsn, "view", "build")
    assert r.code != 0 and "--replace" in r.stderr
    r = cli(cfg, dsn, "view", "build", "--replace")
    assert r.code == 0, r.stderr
    assert _rollup(dsn) == _oracle(rows, RULES)
    assert cli(cfg, dsn, "view", "refresh").code == 0


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_build_and_refresh_with_the_map_run_what_dry_run_printed(
    strategy: str, dsn: str, tmp_path: Path
) -> None:
    _setup(dsn, tmp_path, strategy)
    cfg = config.build(
        {
            "source": {
                "timezone": "America/New_York",
                "endpoint_ids": "auto",
                "endpoint_rules": [{"pattern": p, "replace": r} for p, r in RULES],
            },
            "view": {"strategy": strategy},
        }
    )
    s = connect(cfg, dsn)
    try:
        plan, _undo = planned(rollup.build(s, dry_run=True))
        ex = Executor(s)
        assert [r.status for r in rollup.build(s, executor=ex)] == ["ok", "ok"]
        assert ";\n".join(ran(ex)) == plan
        assert "INSERT INTO epstats.endpoint_map" in plan and "ANALYZE epstats.endpoint_map" in plan
        assert "SET LOCAL enable_memoize = off" in plan
        assert "SET LOCAL enable_sort = off" in plan  # the aggregate hashes its groups
        assert "pg_try_advisory_xact_lock" in plan  # the fill's lock, before its INSERT
        dry = rollup.refresh(s, dry_run=True)
        ex = Executor(s)
        assert rollup.refresh(s, executor=ex).status == "ok"
        assert ";\n".join(ran(ex)) == planned([dry])[0]
        refreshed = planned([dry])[0]
        if strategy == "materialized":
            assert "INSERT INTO epstats.endpoint_map" in refreshed
        else:  # recent days, each row normalized by the expression: no fill, no join
            assert "endpoint_map" not in refreshed and "regexp_replace" in refreshed
    finally:
        s.conn.close()


def test_a_build_and_a_refresh_while_another_fill_runs(dsn: str, tmp_path: Path) -> None:
    """A fill that finds the rule's fill lock held maps nothing, never waiting: the rollup is
    the oracle's all the same (the endpoints the map lacks are normalized as they are read)."""
    cfg, rows = _setup(dsn, tmp_path, "incremental")
    norm = Normalization("auto", tuple(EndpointRule(p, r) for p, r in RULES))
    key = (endpoints.LOCK_CLASS, f"epstats.endpoint_map:{norm.rule_id}")
    count = "SELECT count(*) FROM epstats.endpoint_map WHERE rule = %s"
    with psycopg.connect(dsn, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(%s, hashtext(%s))", key)
        r = cli(cfg, dsn, "view", "build")
        assert r.code == 0, r.stderr
        assert _rollup(dsn) == _oracle(rows, RULES)
        assert holder.execute(count, (norm.rule_id,)).fetchone() == (0,)  # nothing mapped
        with psycopg.connect(dsn) as conn:
            now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        more = _rows(random.Random(20), now, 300, 60)
        _insert(dsn, more)
        r = cli(cfg, dsn, "view", "refresh")
        assert r.code == 0, r.stderr
        assert _rollup(dsn) == _oracle(rows + more, RULES)
        assert holder.execute(count, (norm.rule_id,)).fetchone() == (0,)
        holder.execute("SELECT pg_advisory_unlock(%s, hashtext(%s))", key)
        # the lock free: a full refresh (which joins the map) maps
        assert cli(cfg, dsn, "view", "refresh", "--full").code == 0
        got = holder.execute(count, (norm.rule_id,)).fetchone()
        assert got is not None and got[0] > 0
    assert _rollup(dsn) == _oracle(rows + more, RULES)


def test_normalization_needs_the_map(dsn: str, tmp_path: Path) -> None:
    cfg, _rows = _setup(dsn, tmp_path, "incremental")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE epstats.endpoint_map")
    r = cli(cfg, dsn, "view", "build")
    assert r.code != 0 and "epstats init" in r.stderr and "endpoint_map" in r.stderr, r.stderr


def test_a_rollup_without_status_classes_is_read_and_replaced(dsn: str, tmp_path: Path) -> None:
    cfg, rows = _setup(dsn, tmp_path, "incremental", rules=False)
    text = Path(cfg).read_text().replace("  endpoint_ids: auto\n", "")
    Path(cfg).write_text(text)
    assert cli(cfg, dsn, "view", "build").code == 0
    with psycopg.connect(dsn, autocommit=True) as conn:  # as the previous epstats built it
        for c in COLS[2:]:
            conn.execute(f"ALTER TABLE endpoint_daily_stats DROP COLUMN {c}")
    r = cli(cfg, dsn, "--format", "json", "report", "top", "--source", "view")
    assert r.code == 0, r.stderr
    assert sum(x["requests"] for x in json.loads(r.stdout)["rows"]) > 0
    doc = json.loads(cli(cfg, dsn, "--format", "json", "view", "status").stdout)
    assert any("status_2xx" in m and "--replace" in m for m in doc["parameter_mismatch"])
    r = cli(cfg, dsn, "view", "refresh")
    assert r.code == 3 and "status classes" in r.stderr, r.stderr
    assert cli(cfg, dsn, "view", "build").code != 0
    r = cli(cfg, dsn, "view", "build", "--replace")
    assert r.code == 0, r.stderr
    got = _rollup(dsn)
    assert sum(c["request_count"] for c in got.values()) == len(rows)
    assert cli(cfg, dsn, "view", "refresh").code == 0


def test_the_rights_on_the_map_are_named_before_anything_runs(
    server: Any, dsn: str, tmp_path: Path
) -> None:
    """With normalization on, a refresh that maps (--full; a materialized one) needs SELECT
    and INSERT on epstats.endpoint_map, and view verify SELECT: named with the others before
    anything runs (the trial's role got them one failed run at a time). An incremental
    refresh of recent days normalizes each row itself and needs nothing of the map."""
    cfg, _rows = _setup(dsn, tmp_path, "incremental")
    assert cli(cfg, dsn, "view", "build").code == 0
    role = f"epstats_rollowner{os.getpid()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        conn.execute(f"ALTER TABLE endpoint_daily_stats OWNER TO {role}")
        conn.execute(f"GRANT SELECT ON requests TO {role}")
        conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {role}")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE ON epstats.runs, epstats.rollup_state TO {role}"
        )
        conn.execute(f"GRANT USAGE ON ALL SEQUENCES IN SCHEMA epstats TO {role}")
    try:
        owner = server.dsn_for(
            psycopg.conninfo.conninfo_to_dict(dsn)["dbname"], user=role, password="pw"
        )
        r = cli(cfg, owner, "view", "refresh", "--full", "--dry-run")
        assert "epstats.endpoint_map" in r.stdout + r.stderr and "INSERT" in r.stdout + r.stderr
        r = cli(cfg, owner, "view", "refresh", "--full")
        assert r.code == 1 and "GRANT SELECT, INSERT ON epstats.endpoint_map" in r.stderr, r.stderr
        assert "permission denied" not in r.stderr  # refused before anything ran
        r = cli(cfg, owner, "view", "verify")
        assert r.code == 1 and "GRANT SELECT ON epstats.endpoint_map" in r.stderr, r.stderr
        r = cli(cfg, owner, "view", "refresh")  # recent days, each row normalized itself
        assert r.code == 0, r.stderr
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")
