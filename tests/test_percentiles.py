"""Issue 15: latency percentiles in reports. Every `report top` row and `report endpoint` day
(and its totals) carries p50_ms, p95_ms and p99_ms (and --percentiles' others): `raw` equal to
percentile_disc over the rows the window covers, `view` and `auto` within the rollup's
latency_accuracy of it (relative), for both strategies, in a non-UTC zone with DST, over zeros,
NULLs, integer and fractional milliseconds, outliers up to a minute, late rows (refreshed) and
an unrefreshed tail (auto's), on windows of 1, 7 and 30 days and a sub-day one (--hours).
Also: --sort p50|p95|p99 (and with --compare), --percentiles' keys and its validation, the
table's columns, report endpoint's daily p95, and a rollup built before the histograms."""

from __future__ import annotations

import datetime as dt
import json
import math
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli

pytestmark = pytest.mark.one_version  # heavy: the first server version only

TZ = "America/New_York"
QS = (0.5, 0.95, 0.99)
KEYS = ("p50_ms", "p95_ms", "p99_ms")
EXTRA = (0.9, 0.999)  # --percentiles 90,99.9
EXTRA_KEYS = ("p90_ms", "p99_9_ms")
Row = tuple[str, dt.datetime, float | None, int, int]  # endpoint, ts, ms, status, batch
WORST: dict[str, float] = {}  # the worst relative error seen, per source (README's figure)


def _value(rnd: random.Random, endpoint: str) -> float | None:
    """One response time of an endpoint's distribution (NULLs everywhere but /orders)."""
    if endpoint == "/nulls" or (endpoint != "/orders" and rnd.random() < 0.05):
        return None
    if endpoint == "/orders":  # integer milliseconds, log-normal around 80
        return float(round(rnd.lognormvariate(math.log(80), 1.0)))
    if endpoint == "/search":  # fractional, over four decades
        return round(rnd.lognormvariate(math.log(5), 1.5), 3)
    if endpoint == "/constant":  # one value: its bucket's clamped to the window's min and max
        return 7.0
    if endpoint == "/zeros":  # zeros and small fractions
        return 0.0 if rnd.random() < 0.45 else round(rnd.uniform(0.001, 3), 3)
    if endpoint == "/junk":  # bad data: most response times negative, some zero
        return -round(rnd.lognormvariate(math.log(40), 1.2), 2) if rnd.random() < 0.7 else 0.0
    # /outliers: mostly ~20 ms, 3 % from 10 s to a minute
    if rnd.random() < 0.03:
        return float(rnd.randrange(10_000, 60_001))
    return round(rnd.gauss(20, 3), 1)


WEIGHTS = {
    "/orders": 5,
    "/search": 4,
    "/zeros": 2,
    "/outliers": 3,
    "/nulls": 1,
    "/constant": 1,
    "/junk": 1,
}


def _rows(rnd: random.Random, n: int, newest: dt.datetime, seconds: int, batch: int) -> list[Row]:
    names = [e for e, w in WEIGHTS.items() for _ in range(w)]
    out = []
    for _ in range(n):
        e = rnd.choice(names)
        ts = newest - dt.timedelta(seconds=rnd.uniform(1, seconds))
        out.append((e, ts, _value(rnd, e), rnd.choice([200, 200, 404, 500]), batch))
    return out


def _insert(dsn: str, rows: list[Row]) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO requests (endpoint, timestamp, response_time, status, batch) "
            "VALUES (%s, %s, %s, %s, %s)",
            rows,
        )


def _now(dsn: str) -> dt.datetime:
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index, no-any-return]


def cli(cfg: str, dsn: str, *args: str) -> Any:
    return run_cli("-c", cfg, "--dsn", dsn, *args)


def report(cfg: str, dsn: str, *args: str) -> dict[str, Any]:
    r = cli(cfg, dsn, "--format", "json", "report", *args)
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def _build(dsn: str, tmp_path: Path, strategy: str, accuracy: float) -> str:
    """35 days of rows (batch 1), the rollup built; late rows (batch 2, dated a day ago) then a
    refresh; then a tail the rollup has not aggregated (batch 3, the last minutes)."""
    assert run_cli("--dsn", dsn, "-q", "init", "--with-requests-table").code == 0
    with psycopg.connect(dsn, autocommit=True) as conn:  # which rows the rollup holds
        conn.execute("ALTER TABLE requests ADD COLUMN batch integer")
    rnd = random.Random(1515)
    _insert(dsn, _rows(rnd, 6000, _now(dsn), 35 * 86400, 1))
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"source: {{timezone: {TZ}}}\nreports: {{limit: 100}}\n"
        f"view: {{strategy: {strategy}, latency_accuracy: {accuracy}}}\n"
    )
    r = cli(str(cfg), dsn, "view", "build")
    assert r.code == 0, r.stderr
    late = _rows(rnd, 400, _now(dsn) - dt.timedelta(hours=20), 6 * 3600, 2)
    _insert(dsn, late)
    r = cli(str(cfg), dsn, "view", "refresh")
    assert r.code == 0, r.stderr
    _insert(dsn, _rows(rnd, 400, _now(dsn), 400, 3))  # dated after the refresh's as-of
    return str(cfg)


def _window(doc: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    w = doc["window"]
    return dt.datetime.fromisoformat(w["from"]), dt.datetime.fromisoformat(w["to"])


def exact(
    dsn: str,
    lo: dt.datetime,
    hi: dt.datetime,
    batches: list[int],
    qs: tuple[float, ...] = QS,
    endpoint: str | None = None,
) -> dict[Any, list[float | None]]:
    """percentile_disc over the rows of [lo, hi) in `batches`: per endpoint, or (`endpoint`)
    per local day of that endpoint, with the whole window under None."""
    by = "endpoint" if endpoint is None else f"(timestamp AT TIME ZONE '{TZ}')::date"
    query = (
        f"SELECT {by} AS k, percentile_disc(%(qs)s::float8[]) WITHIN GROUP "
        "(ORDER BY response_time) FROM requests WHERE timestamp >= %(lo)s AND timestamp < %(hi)s"
        " AND batch = ANY(%(b)s) AND (%(e)s::text IS NULL OR endpoint = %(e)s::text) "
        f"GROUP BY GROUPING SETS (({by}), ())"
    )
    params = {"qs": list(qs), "lo": lo, "hi": hi, "b": batches, "e": endpoint}
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(query, params).fetchall()
    return {k: (v or [None] * len(qs)) for k, v in rows}


def within(got: float | None, want: float | None, accuracy: float, source: str) -> bool:
    """`got` equals `want` (raw) or is within `accuracy` of it, relative (view, auto)."""
    if want is None or got is None:
        return got is None and want is None
    if source == "raw":
        return got == want
    error = abs(got - want) / abs(want) if want else abs(got)
    WORST[source] = max(WORST.get(source, 0.0), error)
    return error <= accuracy * (1 + 1e-9)


BATCHES = {"view": [1, 2], "auto": [1, 2, 3], "raw": [1, 2, 3]}


@pytest.mark.parametrize(("strategy", "accuracy"), [("materialized", 0.01), ("incremental", 0.02)])
def test_percentiles_match_percentile_disc(
    strategy: str, accuracy: float, dsn: str, tmp_path: Path
) -> None:
    WORST.clear()
    cfg = _build(dsn, tmp_path, strategy, accuracy)
    windows: list[tuple[str, ...]] = [("--days", "1"), ("--days", "7"), ("--days", "30")]
    for source in ("view", "auto", "raw"):
        for win in windows + ([("--hours", "30")] if source != "view" else []):
            doc = report(cfg, dsn, "top", "--source", source, *win)
            lo, hi = _window(doc)
            want = exact(dsn, lo, hi, BATCHES[source])
            assert {x["endpoint"] for x in doc["rows"]} == {k for k in want if k is not None}
            for row in doc["rows"]:
                for key, value in zip(KEYS, want[row["endpoint"]], strict=True):
                    assert within(row[key], value, accuracy, source), (source, win, row, key)
            assert all(x[k] is None for x in doc["rows"] if x["endpoint"] == "/nulls" for k in KEYS)
            assert all(
                x[k] == 7.0 for x in doc["rows"] if x["endpoint"] == "/constant" for k in KEYS
            )
            # report endpoint: each day's percentiles and the window's (the totals)
            for name in ("/search", "/outliers"):
                doc = report(cfg, dsn, "endpoint", name, "--source", source, *win)
                days = exact(dsn, lo, hi, BATCHES[source], endpoint=name)
                for day in doc["rows"]:
                    values = days.get(dt.date.fromisoformat(day["day"]), [None] * 3)
                    for key, value in zip(KEYS, values, strict=True):
                        assert within(day[key], value, accuracy, source), (source, win, day)
                for key, value in zip(KEYS, days[None], strict=True):
                    assert within(doc["totals"][key], value, accuracy, source), (source, win)
        # --percentiles: the others as keys of their own, read the same way
        doc = report(
            cfg, dsn, "top", "--source", source, "--days", "30", "--percentiles", "90,99.9"
        )
        want = exact(dsn, *_window(doc), BATCHES[source], qs=EXTRA)
        for row in doc["rows"]:
            assert list(row).count("p95_ms") == 1
            for key, value in zip(EXTRA_KEYS, want[row["endpoint"]], strict=True):
                assert within(row[key], value, accuracy, source), (source, row, key)
    assert WORST["view"] <= accuracy and WORST["auto"] <= accuracy
    print(f"worst relative error ({strategy}, accuracy {accuracy}): {WORST}")


def test_sort_by_a_percentile_and_its_change(dsn: str, tmp_path: Path) -> None:
    cfg = _build(dsn, tmp_path, "incremental", 0.01)
    for source in ("view", "auto", "raw"):
        for sort, key in (("p50", "p50_ms"), ("p95", "p95_ms"), ("p99", "p99_ms")):
            doc = report(cfg, dsn, "top", "--source", source, "--sort", sort)
            got = [(x[key], x["endpoint"]) for x in doc["rows"]]
            values = sorted((x for x in got if x[0] is not None), key=lambda x: (-x[0], x[1]))
            assert got == values + [x for x in got if x[0] is None]  # NULLs last
            assert got[-1][1] == "/nulls"
            doc = report(cfg, dsn, "top", "--source", source, "--sort", sort, "--asc")
            assert [x["endpoint"] for x in doc["rows"]][:-1] == [e for _v, e in reversed(values)]
            doc = report(cfg, dsn, "top", "--source", source, "--sort", sort, "--limit", "2")
            assert [x["endpoint"] for x in doc["rows"]] == [e for _v, e in values[:2]]
            # others read beside it do not move it in the statement's array
            doc = report(
                cfg, dsn, "top", "--source", source, "--sort", sort, "--percentiles", "1,90"
            )
            assert [(x[key], x["endpoint"]) for x in doc["rows"]] == got
        # raw ranks by the exact p95
        if source == "raw":
            doc = report(cfg, dsn, "top", "--source", "raw", "--sort", "p95", "--days", "7")
            want = exact(dsn, *_window(doc), BATCHES["raw"])
            ranked = sorted(
                (e for e in want if e is not None and want[e][1] is not None),
                key=lambda e: (-(want[e][1] or 0), e),
            )
            assert [x["endpoint"] for x in doc["rows"]][:-1] == ranked
    # --compare: the percentiles' previous values and their change (a ratio); --sort p95 ranks
    # by it
    doc = report(cfg, dsn, "top", "--source", "auto", "--compare", "--sort", "p95", "--days", "7")
    prev = doc["previous_window"]
    lo, hi = dt.datetime.fromisoformat(prev["from"]), dt.datetime.fromisoformat(prev["to"])
    then = exact(dsn, lo, hi, BATCHES["auto"])
    for row in doc["rows"]:
        for key, value in zip(KEYS, then.get(row["endpoint"], [None] * 3), strict=True):
            assert within(row["previous"][key], value, 0.01, "auto"), (row, key)
            if row[key] is not None and value:  # a previous value of 0 has no ratio
                assert row["change"][key] == pytest.approx(row[key] / row["previous"][key])
            elif value == 0:
                assert row["change"][key] is None
    changes = [x["change"]["p95_ms"] for x in doc["rows"]]
    known = [c for c in changes if c is not None]
    assert known == sorted(known, reverse=True) and changes[: len(known)] == known
    text = cli(cfg, dsn, "report", "top", "--compare", "--sort", "p95", "--days", "7").stdout
    header = next(line for line in text.splitlines() if line.startswith("Endpoint"))
    assert "P95 ms" in header and "Prev p95 ms" in header and "P95 ratio" in header


def test_table_json_csv_and_the_daily_p95(dsn: str, tmp_path: Path) -> None:
    cfg = _build(dsn, tmp_path, "materialized", 0.01)
    text = cli(cfg, dsn, "report", "top", "--days", "7").stdout
    header = next(line for line in text.splitlines() if line.startswith("Endpoint"))
    words = header.split()
    at = words.index("Errors")
    assert words[at : at + 9] == ["Errors", "Error", "rate", "P50", "ms", "P95", "ms", "P99", "ms"]
    text = cli(cfg, dsn, "report", "top", "--days", "7", "--percentiles", "90,99.9").stdout
    header = next(line for line in text.splitlines() if line.startswith("Endpoint")).split()
    assert [w for w in header if w.startswith("P") and w[1].isdigit()] == [
        "P50",
        "P90",
        "P95",
        "P99",
        "P99.9",
    ]
    doc = report(cfg, dsn, "top", "--days", "7", "--percentiles", "99.9, 90 ,95")
    for row in doc["rows"]:
        figures = [k for k in row if k.startswith("p") and k.endswith("_ms")]
        assert figures == ["p50_ms", "p90_ms", "p95_ms", "p99_ms", "p99_9_ms"]
    r = cli(cfg, dsn, "--format", "csv", "report", "top", "--days", "7")
    assert r.code == 0 and {"p50_ms", "p95_ms", "p99_ms"} <= set(
        r.stdout.splitlines()[0].split(",")
    )
    # report endpoint: the day's p95 beside the bar of requests
    text = cli(cfg, dsn, "report", "endpoint", "/search", "--days", "7").stdout
    header = next(line for line in text.splitlines() if line.startswith("Day")).split()
    assert header[:4] == ["Day", "Requests/day", "P95", "ms"]
    doc = report(cfg, dsn, "endpoint", "/search", "--days", "7", "--percentiles", "90")
    assert all({"p50_ms", "p90_ms", "p95_ms", "p99_ms"} <= set(x) for x in doc["rows"])
    assert {"p50_ms", "p90_ms", "p95_ms", "p99_ms"} <= set(doc["totals"])
    doc = report(cfg, dsn, "endpoint", "/nulls", "--days", "7")
    assert all(x[k] is None for x in doc["rows"] for k in KEYS) and doc["totals"]["p95_ms"] is None


@pytest.mark.parametrize(
    "bad", ["0", "101", "abc", "50,,90", "-5", "nan", "100.5", "1e-300", "99.99999", "\u0665\u0660"]
)
def test_percentiles_option_refuses_bad_values(bad: str) -> None:
    r = run_cli("report", "top", "--percentiles", bad)
    assert r.code == 2, (r.code, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1 and "--percentiles" in r.stderr
    r = run_cli("report", "endpoint", "/x", "--percentiles", bad)
    assert r.code == 2 and len(r.stderr.strip().splitlines()) == 1


def test_a_rollup_without_histograms(dsn: str, tmp_path: Path) -> None:
    """An earlier epstats's rollup: no percentiles from view or auto (None, one footer line
    naming `view build --replace`), --sort p95 refused in one line (exit 3) on both; raw still
    exact; nothing else changes."""
    cfg = _build(dsn, tmp_path, "incremental", 0.01)
    before = report(cfg, dsn, "top", "--source", "view")
    with psycopg.connect(dsn, autocommit=True) as conn:  # as the previous epstats built it
        conn.execute(
            "ALTER TABLE endpoint_daily_stats DROP COLUMN latency_buckets, "
            "DROP COLUMN latency_counts"
        )
    for source in ("view", "auto"):
        doc = report(cfg, dsn, "top", "--source", source)
        assert all(x[k] is None for x in doc["rows"] for k in KEYS)
        if source == "view":
            strip = [{k: v for k, v in x.items() if k not in KEYS} for x in doc["rows"]]
            assert strip == [{k: v for k, v in x.items() if k not in KEYS} for x in before["rows"]]
        notes = [n for n in doc["notes"] if "latency histograms" in n]
        assert len(notes) == 1 and "epstats view build --replace" in notes[0]
        text = cli(cfg, dsn, "report", "top", "--source", source).stdout
        assert sum("no latency histograms" in line for line in text.splitlines()) == 1
        doc = report(cfg, dsn, "endpoint", "/search", "--source", source)
        assert all(x[k] is None for x in doc["rows"] for k in KEYS)
        assert all(doc["totals"][k] is None for k in KEYS)
        doc = report(cfg, dsn, "top", "--source", "auto", "--compare")
        assert all(
            x["previous"][k] is None and x["change"][k] is None for x in doc["rows"] for k in KEYS
        )
        for sort in ("p50", "p95", "p99"):
            r = cli(cfg, dsn, "report", "top", "--source", source, "--sort", sort)
            assert r.code == 3 and "view build --replace" in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1
    doc = report(cfg, dsn, "top", "--source", "raw", "--sort", "p95")
    want = exact(dsn, *_window(doc), BATCHES["raw"])
    assert all(x["p95_ms"] == want[x["endpoint"]][1] for x in doc["rows"])
    assert not any("latency histograms" in n for n in doc["notes"])
