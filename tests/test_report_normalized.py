"""Issue 18, phase 2b: reports normalize endpoints on every source. A table of raw paths
(numbers, UUIDs, hex strings, tokens, query strings, fixed routes, a route a rule names) with
`endpoint_ids: auto` and a rule before it; `report top` and `report endpoint` on view, raw and
auto (auto with rows newer than the rollup's as-of, whose raw endpoints the map lacks) equal a
Python oracle of the documented rule (tests/endpoint_oracle.py) over the rows inserted; reports
never write the map; `report endpoint /users/48213` reports /users/{id} and says so."""

from __future__ import annotations

import datetime as dt
import itertools
import json
import random
import string
import zoneinfo
from collections import defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import config, reports
from epstats_cli.db import connect, read_snapshot
from tests import endpoint_oracle as oracle
from tests.conftest import run_cli

pytestmark = pytest.mark.one_version  # heavy: the first server version only

NY = zoneinfo.ZoneInfo("America/New_York")
RULES = [("^/v1/users/[a-z]+", "/v1/users/{name}")]
CONFIG = (
    "source:\n  timezone: America/New_York\n  endpoint_ids: {ids}\n"
    "  endpoint_rules:\n    - {{pattern: '^/v1/users/[a-z]+', replace: '/v1/users/{{name}}'}}\n"
    "reports: {{days: 7, limit: 1000}}\n"
)
STATUSES = [200, 200, 201, 204, 301, 304, 400, 404, 404, 429, 500, 503, 102, 700, None]
_roles = itertools.count()
CLASSES = ("status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_other")
Row = tuple[str, dt.datetime, float, int | None]  # endpoint, timestamp, response_time, status


def raw_path(rnd: random.Random, i: int) -> str:
    """One raw endpoint: ids of every kind `auto` replaces, query strings, fixed routes."""
    kind = i % 9
    if kind == 0:
        return f"/users/{rnd.choice([48213, rnd.randrange(10**6)])}"
    if kind == 1:
        u = f"{rnd.getrandbits(128):032x}"
        return f"/orders/{u[:8]}-{u[8:12]}-{u[12:16]}-{u[16:20]}-{u[20:]}/items?page={i % 4}"
    if kind == 2:
        return f"/blobs/{rnd.getrandbits(96):024X}"
    if kind == 3:  # a token: letters and digits
        pairs = (rnd.choice(string.ascii_letters) + rnd.choice(string.digits) for _ in range(8))
        return "/customers/cus_" + "".join(pairs)
    if kind == 4:  # a rule's route, then auto: /v1/users/{name}/orders/{id}
        return f"/v1/users/{rnd.choice(['alice', 'bob'])}/orders/{rnd.randrange(999)}"
    if kind == 5:
        return f"/search?q={rnd.randrange(10**4)}&page={i % 3}"
    return rnd.choice(["/healthz", "/login", "/api/v1/items", "/users/me"])


def make_rows(rnd: random.Random, now: dt.datetime, n: int, minutes: int) -> list[Row]:
    return [
        (
            raw_path(rnd, i),
            now - dt.timedelta(minutes=rnd.randrange(1, minutes)),
            float(rnd.randrange(1, 900)),
            rnd.choice(STATUSES),
        )
        for i in range(n)
    ]


def insert(dsn: str, rows: list[Row]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO requests (endpoint, timestamp, response_time, status) "
            "VALUES (%s, %s, %s, %s)",
            rows,
        )


def figures(rows: list[Row]) -> dict[str, Any]:
    """A report row's figures over these raw rows (error_status_min 500)."""
    times = [ms for _e, _ts, ms, _s in rows]
    errors = sum(1 for *_x, s in rows if s is not None and s >= 500)
    out: dict[str, Any] = {
        "requests": len(rows),
        "avg_ms": sum(times) / len(times),
        "min_ms": min(times),
        "max_ms": max(times),
        "errors": errors,
        "error_rate": errors / len(rows),
    }
    out.update(dict.fromkeys(CLASSES, 0))
    for *_x, s in rows:
        out[oracle.status_class(s)] += 1
    return out


def by_endpoint(rows: list[Row], lo: dt.datetime, hi: dt.datetime) -> dict[str, dict[str, Any]]:
    """The oracle of `report top`: each normalized endpoint's figures in [lo, hi)."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if lo <= row[1] < hi:
            groups[oracle.normalize(row[0], "auto", RULES) or ""].append(row)
    return {e: figures(g) for e, g in groups.items()}


def by_day(rows: list[Row], endpoint: str, lo: dt.datetime, hi: dt.datetime) -> dict[str, Any]:
    """The oracle of `report endpoint`: one normalized endpoint's figures per New York day."""
    groups: dict[str, list[Row]] = defaultdict(list)
    for row in rows:
        if lo <= row[1] < hi and oracle.normalize(row[0], "auto", RULES) == endpoint:
            groups[row[1].astimezone(NY).date().isoformat()].append(row)
    return {d: figures(g) for d, g in groups.items()}


def same(got: dict[str, Any], want: dict[str, Any]) -> bool:
    """A report row equals the oracle's (averages and rates to rounding)."""
    for key, value in want.items():
        if isinstance(value, float):
            if got[key] is None or abs(float(got[key]) - value) > 1e-6 * max(1.0, abs(value)):
                return False
        elif got[key] != value:
            return False
    return True


def cli(cfg: str, dsn: str, *args: str) -> Any:
    return run_cli("-c", cfg, "--dsn", dsn, *args)


def report(cfg: str, dsn: str, *args: str) -> dict[str, Any]:
    r = cli(cfg, dsn, "--format", "json", "report", *args)
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def window(doc: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.fromisoformat(doc["window"]["from"]),
        dt.datetime.fromisoformat(doc["window"]["to"]),
    )


def map_rows(dsn: str) -> int:
    with psycopg.connect(dsn) as conn:
        return int(conn.execute("SELECT count(*) FROM epstats.endpoint_map").fetchone()[0])  # type: ignore[index]


def setup(
    dsn: str, tmp_path: Path, ids: str = "auto", days: int = 5
) -> tuple[str, list[Row], list[Row]]:
    """A rollup built over `days` days of rows, then rows newer than its as-of (new ids,
    which the map lacks): the configuration, the rows the rollup holds, the newer ones."""
    assert run_cli("--dsn", dsn, "-q", "init", "--with-requests-table").code == 0
    with psycopg.connect(dsn) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    old = make_rows(random.Random(1802), now, 2700, 60 * 24 * days)
    insert(dsn, old)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.format(ids=ids))
    r = cli(str(cfg), dsn, "view", "build")
    assert r.code == 0, r.stderr
    with psycopg.connect(dsn) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    # dated within view.commit_delay (10m) before now, committed after the build: auto's
    new = make_rows(random.Random(9), now, 540, 9)
    insert(dsn, new)
    return str(cfg), old, new


def test_top_equals_the_oracle_on_every_source(dsn: str, tmp_path: Path) -> None:
    cfg, old, new = setup(dsn, tmp_path)
    mapped = map_rows(dsn)
    for source, rows in (("view", old), ("raw", old + new), ("auto", old + new)):
        doc = report(cfg, dsn, "top", "--source", source)
        lo, hi = window(doc)
        want = by_endpoint(rows, lo, hi)
        got = {x["endpoint"]: x for x in doc["rows"]}
        assert set(got) == set(want), source
        assert all(same(got[e], want[e]) for e in want), source
        assert len(want) <= 12 and len({r[0] for r in rows}) > 20 * len(want)
        assert "/v1/users/{name}/orders/{id}" in got and "/users/me" in got  # rule, then auto
        # --endpoint (LIKE) matches the normalized names: no raw name holds "{id}"
        doc = report(cfg, dsn, "top", "--source", source, "--endpoint", "%/{id}%")
        assert {x["endpoint"] for x in doc["rows"]} == {e for e in want if "/{id}" in e}
    assert map_rows(dsn) == mapped  # reports never write: new raw endpoints stay unmapped
    # the rows newer than the as-of are what auto adds to the rollup
    view = report(cfg, dsn, "top", "--source", "view")["rows"]
    auto = report(cfg, dsn, "top", "--source", "auto")["rows"]
    assert sum(x["requests"] for x in auto) - sum(x["requests"] for x in view) == len(new)


@pytest.mark.parametrize("source", ["view", "raw", "auto"])
def test_report_endpoint_names_the_normalized_endpoint(
    source: str, dsn: str, tmp_path: Path
) -> None:
    cfg, old, new = setup(dsn, tmp_path)
    rows = old if source == "view" else old + new
    for name in ("/users/48213", "/users/{id}", "/users/48213?page=2"):
        doc = report(cfg, dsn, "endpoint", name, "--source", source)
        assert doc["endpoint"] == "/users/{id}" and doc["requested"] == name
        lo, hi = window(doc)
        want = by_day(rows, "/users/{id}", lo, hi)
        got = {x["day"]: x for x in doc["rows"] if x["requests"]}
        assert set(got) == set(want) and all(same(got[d], want[d]) for d in want)
        assert doc["totals"]["requests"] == sum(w["requests"] for w in want.values())
        counted = f"{name} is counted under /users/{{id}}"
        assert (counted in " ".join(doc["notes"])) == (name != "/users/{id}")
    text = cli(cfg, dsn, "report", "endpoint", "/users/48213", "--source", source).stdout
    assert "Endpoint /users/{id}" in text and "/users/48213 is counted under /users/{id}" in text
    # a route normalization leaves alone is reported as given, unknown names as before
    doc = report(cfg, dsn, "endpoint", "/users/me", "--source", source)
    assert doc["endpoint"] == doc["requested"] == "/users/me" and not doc["notes"]
    r = cli(cfg, dsn, "report", "endpoint", "/user/7", "--source", source)
    assert r.code != 0 and "'/user/{id}' (/user/7 normalized)" in r.stderr, r.stderr
    assert "closest: /users/{id}" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_raw_reads_the_configuration_and_auto_the_rollup(dsn: str, tmp_path: Path) -> None:
    """raw normalizes as configured, view and auto as the rollup was built (its recorded
    parameters), as the other rollup parameters."""
    cfg, old, new = setup(dsn, tmp_path)
    Path(cfg).write_text(CONFIG.format(ids="off"))  # the rule alone, after the build
    doc = report(cfg, dsn, "top", "--source", "raw", "--limit", "100000")
    lo, hi = window(doc)
    want: dict[str, int] = defaultdict(int)
    for e, ts, _ms, _s in old + new:
        if lo <= ts < hi:
            want[oracle.normalize(e, "off", RULES) or ""] += 1
    assert {x["endpoint"]: x["requests"] for x in doc["rows"]} == want
    doc = report(cfg, dsn, "top", "--source", "auto")
    want_auto = by_endpoint(old + new, *window(doc))
    assert {x["endpoint"]: x["requests"] for x in doc["rows"]} == {
        e: w["requests"] for e, w in want_auto.items()
    }
    text = cli(cfg, dsn, "report", "top", "--source", "auto").stdout
    assert "the rollup's own parameters are used" in text and "endpoint_ids auto" in text


def test_the_report_transaction_joins_without_memoize(dsn: str, tmp_path: Path) -> None:
    """The planner settings of a statement that joins the map are set in the report's
    read-only transaction (SET LOCAL is allowed there), for raw, view and auto alike."""
    setup(dsn, tmp_path)
    cfg = config.build(
        {
            "source": {
                "timezone": "America/New_York",
                "endpoint_ids": "auto",
                "endpoint_rules": [{"pattern": p, "replace": r} for p, r in RULES],
            }
        }
    )
    s = connect(cfg, dsn)
    try:
        for source in ("raw", "view", "auto"):
            with read_snapshot(s):
                assert s.conn.execute("SHOW transaction_read_only").fetchone() == ("on",)
                r = reports.reading(s, source)
                assert r.norm.active
                assert s.conn.execute("SHOW enable_memoize").fetchone() == ("off",)
            assert s.conn.execute("SHOW enable_memoize").fetchone() == ("on",)
    finally:
        s.conn.close()


def test_a_role_that_cannot_read_the_map_gets_the_same_reports(
    server: Any, dsn: str, tmp_path: Path
) -> None:
    """A role with SELECT on the table and the rollup only (no USAGE on schema epstats):
    normalized reports read without the map, each row by the expression, the same numbers,
    and the footer says why and what grant makes them faster."""
    cfg, _old, _new = setup(dsn, tmp_path)
    role = f"epstats_nomap{next(_roles)}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {role} LOGIN PASSWORD 'pw'")
        conn.execute(f"GRANT SELECT ON requests, endpoint_daily_stats TO {role}")
    try:
        reader = server.dsn_for(
            psycopg.conninfo.conninfo_to_dict(dsn)["dbname"], user=role, password="pw"
        )
        for source in ("view", "raw", "auto"):
            mine = report(cfg, dsn, "top", "--source", source)
            theirs = report(cfg, reader, "top", "--source", source)
            assert theirs["rows"] == mine["rows"], source
            said = [n for n in theirs["notes"] if "cannot read epstats.endpoint_map" in n]
            if source != "view":
                assert said and f"GRANT SELECT ON epstats.endpoint_map TO {role}" in said[0]
        one = report(cfg, reader, "endpoint", "/users/48213", "--source", "raw")
        assert one["endpoint"] == "/users/{id}"
    finally:
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE {role}")


def test_a_rule_the_server_refuses_is_named_on_every_source(dsn: str, tmp_path: Path) -> None:
    """A pattern PostgreSQL refuses is a configuration error (exit 3) naming the key, on raw
    and auto as on view build, never the server's bare message."""
    cfg, _old, _new = setup(dsn, tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text(Path(cfg).read_text().replace("^/v1/users/[a-z]+", "^/v1/users/(alice"))
    for args in (["top", "--source", "raw"], ["endpoint", "/healthz", "--source", "raw"]):
        r = cli(str(bad), dsn, "report", *args)
        assert r.code == 3, (args, r.stderr)
        assert "source.endpoint_rules[0].pattern" in r.stderr, r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr
