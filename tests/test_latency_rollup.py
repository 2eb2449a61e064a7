"""Issue 15, the rollup side: its latency histograms on real servers, for both strategies, in a
non-UTC source.timezone, against a Python oracle of the raw rows (epstats_cli.latency.bucket):
built, refreshed with late rows, compared exactly by `view verify` (a changed count is a
difference) and by the verify task (which repairs it); a rollup built before the histograms
read, refreshed and verified without them until `view build --replace` adds them; another
view.latency_accuracy refused."""

from __future__ import annotations

import datetime as dt
import json
import random
import zoneinfo
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli.latency import ZERO, bucket
from tests.conftest import run_cli
from tests.rollup_oracle import compare_view, raw_rollup

pytestmark = pytest.mark.one_version  # heavy: the first server version only

TZ = "America/New_York"
ZONE = zoneinfo.ZoneInfo(TZ)
VIEW = "endpoint_daily_stats"
Histograms = dict[tuple[str, dt.date], tuple[list[int], list[int]] | None]


def _cfg(tmp_path: Path, strategy: str, extra: str = "") -> str:
    cfg = tmp_path / "epstats.yaml"
    cfg.write_text(
        f"source: {{timezone: {TZ}}}\nview: {{strategy: {strategy}, lookback: 2d{extra}}}\n"
    )
    return str(cfg)


def _cli(cfg: str, dsn: str, *args: str) -> Any:
    return run_cli("-c", cfg, "--dsn", dsn, *args, env={"PGTZ": "Asia/Tokyo"})


def _json(cfg: str, dsn: str, *args: str, code: int = 0) -> Any:
    r = _cli(cfg, dsn, "--format", "json", *args)
    assert r.code == code, (r.stdout, r.stderr)
    return json.loads(r.stdout)


def _value(rng: random.Random) -> float | None:
    """Zeros, negatives, NULLs, integer and fractional milliseconds, outliers up to a minute."""
    kind = rng.randrange(10)
    if kind == 0:
        return None
    if kind == 1:
        return rng.choice([0.0, -3.0, -0.5])
    if kind == 2:
        return float(rng.randrange(1, 60001))  # up to a minute
    if kind == 3:
        return rng.choice([60000.0, 59999.999, 0.001, 1.0])
    return round(rng.lognormvariate(4, 1.2), 3)


def _rows(rng: random.Random, n: int, now: dt.datetime, hours: float) -> list[tuple[Any, ...]]:
    names = ["/a", "/b", "/c", "/only-nulls"]
    out = []
    for _ in range(n):
        endpoint = rng.choice(names)
        rt = None if endpoint == "/only-nulls" else _value(rng)
        ts = now - dt.timedelta(seconds=rng.uniform(0, hours * 3600))
        out.append((endpoint, ts, rt, rng.choice([200, 200, 404, 503])))
    return out


def _insert(conn: psycopg.Connection[Any], rows: list[tuple[Any, ...]]) -> None:
    """The rows, each response time cast to the column's type (an integer one rounds it)."""
    with conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO requests (endpoint, timestamp, response_time, status) "
            "VALUES (%s, %s, %s::double precision, %s)",
            rows,
        )


def oracle(conn: psycopg.Connection[Any], accuracy: float = 0.01) -> Histograms:
    """Each endpoint-day's histogram from the raw rows as stored (an integer column holds
    them rounded), dated up to the rollup's as-of: (buckets, counts) in bucket order, None
    for a day without a response time."""
    as_of = conn.execute(f"SELECT as_of FROM {VIEW} WHERE endpoint IS NULL").fetchone()
    assert as_of is not None
    counts: dict[tuple[str, dt.date], Counter[int]] = defaultdict(Counter)
    for endpoint, ts, rt in conn.execute("SELECT endpoint, timestamp, response_time FROM requests"):
        if ts > as_of[0]:
            continue
        c = counts[(endpoint, ts.astimezone(ZONE).date())]
        if rt is not None:
            c[bucket(float(rt), accuracy)] += 1
    return {key: (sorted(c), [c[b] for b in sorted(c)]) if c else None for key, c in counts.items()}


def stored(conn: psycopg.Connection[Any]) -> Histograms:
    rows = conn.execute(
        f"SELECT endpoint, day, latency_buckets, latency_counts FROM {VIEW} "
        "WHERE endpoint IS NOT NULL"
    ).fetchall()
    for _e, _d, buckets, counts in rows:
        assert (buckets is None) == (counts is None)
        assert buckets is None or len(buckets) == len(counts) > 0
    return {(e, d): None if b is None else (b, c) for e, d, b, c in rows}


@pytest.mark.parametrize(
    ("strategy", "column_type"),
    [
        ("incremental", "double precision"),
        ("materialized", "double precision"),
        ("incremental", "numeric(12,3)"),
        ("materialized", "integer"),
    ],
)
def test_histograms_equal_the_oracle(
    strategy: str, column_type: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, strategy)
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    conn.execute(f"ALTER TABLE requests ALTER COLUMN response_time TYPE {column_type}")
    rng = random.Random(15)
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    _insert(conn, _rows(rng, 3000, now, 10 * 24))
    r = _cli(cfg, dsn, "view", "build")
    assert r.code == 0, r.stderr
    want = oracle(conn)
    assert stored(conn) == want
    assert any(v is None for v in want.values())  # a day of NULL response times only
    assert any(v is not None and ZERO in v[0] for v in want.values())  # zeros
    assert any(v is not None and v[0][0] < ZERO for v in want.values())  # negatives
    # rows of the last hours and late rows of yesterday (within the lookback), refreshed in
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    late = [(e, ts - dt.timedelta(hours=26), rt, s) for e, ts, rt, s in _rows(rng, 300, now, 2)]
    _insert(conn, _rows(rng, 400, now, 3) + late)
    r = _cli(cfg, dsn, "view", "refresh")
    assert r.code == 0, r.stderr
    assert stored(conn) == oracle(conn)
    if column_type == "double precision":  # (the figures' oracle reads floats)
        assert compare_view(conn, VIEW, raw_rollup(conn, TZ)) == []
    doc = _json(cfg, dsn, "view", "verify", "--days", "15")
    assert doc["ok"] and doc["differences"] == []
    if strategy != "incremental":
        return
    # a changed count is a difference, of the histogram alone
    day = (now - dt.timedelta(days=5)).astimezone(ZONE).date()
    conn.execute(
        f"UPDATE {VIEW} SET latency_counts[1] = latency_counts[1] + 1 "
        "WHERE endpoint = '/a' AND day = %s",
        (day,),
    )
    doc = _json(cfg, dsn, "view", "verify", "--days", "15", code=1)
    [diff] = doc["differences"]
    assert (diff["endpoint"], diff["day"], diff["histogram_differs"]) == ("/a", str(day), True)
    assert diff["view_requests"] == diff["raw_requests"]
    assert diff["view_latency_counts"][0] == diff["raw_latency_counts"][0] + 1
    # the verify task finds it (the day is settled: before the lookback) and repairs it
    task = _json(cfg, dsn, "maintain", "--force", "verify", "--only", "verify")
    assert f"repaired {day}" in task["tasks"][-1]["reason"], task["tasks"][-1]
    assert stored(conn) == oracle(conn)
    assert _json(cfg, dsn, "view", "verify", "--days", "15")["ok"]


def _make_old(conn: psycopg.Connection[Any], strategy: str) -> None:
    """The rollup as an epstats before the histograms built it: without the two columns, its
    recorded parameters without latency_accuracy."""
    if strategy == "incremental":
        conn.execute(f"ALTER TABLE {VIEW} DROP COLUMN latency_buckets, DROP COLUMN latency_counts")
    else:  # the same definition without them (a materialized view's columns cannot be dropped)
        definition = conn.execute("SELECT pg_get_viewdef(%s::regclass)", (VIEW,)).fetchone()
        columns = conn.execute(
            "SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute "
            "WHERE attrelid = %s::regclass AND attnum > 0 AND attname NOT LIKE 'latency%%'",
            (VIEW,),
        ).fetchone()
        assert definition is not None and columns is not None
        conn.execute(f"DROP MATERIALIZED VIEW {VIEW}")
        body = definition[0].rstrip().rstrip(";")
        conn.execute(f"CREATE MATERIALIZED VIEW {VIEW} AS SELECT {columns[0]} FROM ({body}) AS d")
        conn.execute(f"CREATE UNIQUE INDEX {VIEW}_endpoint_day_key ON {VIEW} (endpoint, day)")
        conn.execute(f"CREATE INDEX {VIEW}_day_idx ON {VIEW} (day)")
    conn.execute(
        "UPDATE epstats.rollup_state SET relation_oid = %s::regclass::oid, "
        "parameters = parameters - 'latency_accuracy'",
        (VIEW,),
    )


@pytest.mark.parametrize("strategy", ["incremental", "materialized"])
def test_a_rollup_built_before_the_histograms(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, strategy)
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    rng = random.Random(7)
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    _insert(conn, _rows(rng, 1500, now, 6 * 24))
    assert _cli(cfg, dsn, "view", "build").code == 0
    _make_old(conn, strategy)
    status = _json(cfg, dsn, "view", "status")
    assert status["latency_histograms"] is False
    assert status["parameter_mismatch"] == []  # no recorded latency_accuracy: no mismatch
    text = _cli(cfg, dsn, "view", "status").stdout
    assert "no latency histograms" in text and "epstats view build --replace" in text, text
    # refresh, view verify and the verify task keep working on it, without histograms
    _insert(conn, _rows(rng, 200, now, 2))
    r = _cli(cfg, dsn, "view", "refresh")
    assert r.code == 0, r.stderr
    assert compare_view(conn, VIEW, raw_rollup(conn, TZ)) == []
    doc = _json(cfg, dsn, "view", "verify", "--days", "10")
    assert doc["ok"], doc["differences"]
    task = _json(cfg, dsn, "maintain", "--force", "verify", "--only", "verify")
    assert task["tasks"][-1]["status"] == "ok", task["tasks"][-1]
    # a plain build says it exists without them; --replace builds the new one with them
    r = _cli(cfg, dsn, "view", "build")
    assert r.code != 0 and "without latency histograms" in r.stderr, r.stderr
    r = _cli(cfg, dsn, "view", "build", "--replace")
    assert r.code == 0, r.stderr
    assert stored(conn) == oracle(conn)
    status = _json(cfg, dsn, "view", "status")
    assert status["latency_histograms"] is True and status["parameter_mismatch"] == []
    assert status["parameters"]["latency_accuracy"] == 0.01


def test_another_latency_accuracy_is_a_parameter_mismatch(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, "incremental")
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    _insert(conn, _rows(random.Random(3), 500, now, 48))
    assert _cli(cfg, dsn, "view", "build").code == 0
    other = _cfg(tmp_path, "incremental", ", latency_accuracy: 0.02")
    for command in (("view", "refresh"), ("maintain", "--force", "refresh", "--only", "refresh")):
        r = _cli(other, dsn, *command)
        assert r.code == 3 and "view.latency_accuracy" in r.stderr, (command, r.stderr)
    status = _json(other, dsn, "view", "status")
    assert any("view.latency_accuracy" in m and "0.01" in m for m in status["parameter_mismatch"])
    # rebuilt with it: histograms of the new accuracy, recorded
    assert _cli(other, dsn, "view", "build", "--replace").code == 0
    assert stored(conn) == oracle(conn, 0.02)
    assert _cli(other, dsn, "view", "refresh").code == 0
