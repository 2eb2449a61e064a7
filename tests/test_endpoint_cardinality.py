"""Issue 18, phase 2b: distinct endpoints per day on real servers. `check endpoint_cardinality`
warns on raw paths with ids (with the hint to normalize) and not once they are normalized
(from the rollup, or from the raw rows without one); 0 turns it off; `status` shows the figure,
as stored and normalized; `advise` says when the rollup would outgrow (or has outgrown) the
raw rows; a large day is estimated from its newest rows (the estimator is tested alone too)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import cardinality
from epstats_cli.advise.measure import measure as advise_measure
from epstats_cli.advise.rules import advise
from epstats_cli.config import load
from epstats_cli.db import session
from tests.conftest import run_cli

IDS = 200  # distinct /users/<id> endpoints a day, past the tests' warning level of 50
HINT = "source.endpoint_ids: auto"


def _setup(
    dsn: str, tmp_path: Path, extra: str = "", levels: str = "{warning: 50, critical: 0}"
) -> str:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"view: {{strategy: incremental}}\ncheck: {{endpoint_cardinality: {levels}}}\n{extra}"
    )
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    return str(cfg)


def _paths(conn: psycopg.Connection[Any], ago: str = "1 minute", ids: int = IDS) -> None:
    """`ids` raw paths /users/<n> and /healthz, all at one instant (one day, whatever the
    hour), twice each."""
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp, response_time, status) "
        "SELECT e, now() - %s::interval, 5, 200 "
        "FROM (SELECT '/users/' || g AS e FROM generate_series(1, %s) g "
        "      UNION ALL SELECT '/healthz') AS p, generate_series(1, 2)",
        (ago, ids),
    )


def _check(cfg: str, dsn: str) -> tuple[int, dict[str, Any], str]:
    r = run_cli(
        "-c", cfg, "--dsn", dsn, "--format", "json", "check", "--only", "endpoint_cardinality"
    )
    doc = json.loads(r.stdout)
    (result,) = doc["checks"]
    return r.code, result, doc["line"]


def test_raw_paths_with_ids_warn_with_the_hint(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _setup(dsn, tmp_path)
    _paths(conn)
    code, result, line = _check(cfg, dsn)
    assert code == 1 and result["state"] == "WARNING", result
    assert result["value"] == IDS + 1
    assert result["summary"].startswith(f"{IDS + 1:,} distinct endpoints per day (raw rows of ")
    assert HINT in result["summary"] and "epstats endpoints" in result["summary"]
    assert f"endpoint_cardinality={IDS + 1};50;" in line
    # the same from a rollup built without normalization: its rows of the day
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    code, result, _line = _check(cfg, dsn)
    assert code == 1 and result["value"] == IDS + 1
    assert "the rollup's rows of " in result["summary"] and HINT in result["summary"]


def test_a_critical_level_and_zero_turning_it_off(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _setup(dsn, tmp_path, levels="{warning: 50, critical: 100}")
    _paths(conn)
    code, result, _line = _check(cfg, dsn)
    assert code == 2 and result["state"] == "CRITICAL" and result["critical"] == 100
    Path(cfg).write_text("check: {endpoint_cardinality: {warning: 0, critical: 0}}\n")
    code, result, _line = _check(cfg, dsn)
    assert code == 0 and result["summary"] == "off (check.endpoint_cardinality is 0)"
    # the default: 10,000 a day, no critical level
    Path(cfg).write_text("")
    code, result, _line = _check(cfg, dsn)
    assert code == 0 and (result["warning"], result["critical"]) == (10_000, None)


@pytest.mark.parametrize("rollup", [True, False], ids=["rollup", "raw rows"])
def test_normalized_endpoints_do_not_warn(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, rollup: bool
) -> None:
    cfg = _setup(dsn, tmp_path, "source: {endpoint_ids: auto}\n")
    _paths(conn)
    if rollup:
        assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    code, result, _line = _check(cfg, dsn)
    assert code == 0 and result["state"] == "OK", result
    assert result["value"] == 2  # /users/{id} and /healthz
    assert result["summary"].startswith("2 distinct endpoints normalized (auto) per day (")
    assert ("the rollup's rows of " in result["summary"]) == rollup
    if not rollup:
        assert result["summary"].endswith(f"; {IDS + 1:,} as stored")


def test_status_shows_the_endpoints_per_day(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _setup(dsn, tmp_path)
    _paths(conn)
    doc = json.loads(run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "status").stdout)
    e = doc["endpoints"]
    assert (e["raw_per_day"], e["normalized_per_day"], e["normalization"]) == (IDS + 1, None, "off")
    assert (e["requests_per_day"], e["method"], e["estimated"]) == (2 * (IDS + 1), "rows", False)
    table = run_cli("-c", cfg, "--dsn", dsn, "status").stdout
    assert "Endpoints" in table and "distinct per day, as stored" in table and "201" in table
    # normalized, with a rollup: both figures (the raw rows give both)
    Path(cfg).write_text("view: {strategy: incremental}\nsource: {endpoint_ids: auto}\n")
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    doc = json.loads(run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "status").stdout)
    e = doc["endpoints"]
    assert (e["raw_per_day"], e["normalized_per_day"], e["normalization"]) == (IDS + 1, 2, "auto")
    # the judged figure is check's (the rollup's, exact), the stored one from the raw rows
    assert e["method"] == "rollup" and e["from"].startswith("the rollup's rows of"), e
    assert e["raw_from"].startswith("raw rows of"), e
    r = run_cli("-c", cfg, "--dsn", dsn, "-v", "check", "--only", "endpoint_cardinality")
    assert e["from"] in r.stdout, (e, r.stdout)
    text = run_cli("-c", cfg, "--dsn", dsn, "--format", "openmetrics", "status").stdout
    assert 'epstats_endpoints_per_day{table="public.requests",endpoints="stored"} 201' in text
    assert 'epstats_endpoints_per_day{table="public.requests",endpoints="normalized"} 2' in text


def _growth(dsn: str, cfg: str) -> tuple[Any, Any]:
    with session(load(cfg, {}), dsn) as s:
        m = advise_measure(s)
    found = [a for a in advise(m) if "rollup saves little" in a.rule]
    return m, (found[0] if found else None)


def test_advise_says_the_rollup_outgrows_the_raw_rows(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _setup(dsn, tmp_path)
    # every request a path of its own: one rollup row per raw row, every day
    for day in range(1, 4):
        conn.execute(
            "INSERT INTO requests (endpoint, timestamp, response_time, status) "
            "SELECT '/users/' || %s || '-' || g, now() - %s * interval '1 day', 5, 200 "
            "FROM generate_series(1, 100) g",
            (day, day),
        )
    m, advice = _growth(dsn, cfg)  # no rollup: what one would hold
    assert m.rollup_rows_source == "projected" and advice.level == "warning"
    assert "would be larger than the raw table" in advice.recommendation
    assert HINT in advice.recommendation
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build").code == 0
    m, advice = _growth(dsn, cfg)  # the rollup's own rows of its last complete days
    assert (m.rollup_rows_source, m.rollup_rows_per_day, m.rollup_raw_rows_per_day) == (
        "rollup",
        100,
        100,
    )
    assert advice.level == "warning" and "is larger than the raw table" in advice.recommendation
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "advise")
    said = [a for a in json.loads(r.stdout)["advice"] if "rollup saves little" in a["rule"]]
    assert said and said[0]["level"] == "warning"
    # normalized, the rollup holds one endpoint a day: it saves
    Path(cfg).write_text("view: {strategy: incremental}\nsource: {endpoint_ids: auto}\n")
    conn.execute("UPDATE requests SET endpoint = '/users/' || split_part(endpoint, '-', 2)")
    assert run_cli("-c", cfg, "--dsn", dsn, "view", "build", "--replace").code == 0
    m, advice = _growth(dsn, cfg)
    assert (m.rollup_rows_per_day, advice.level, advice.recommendation) == (1, "info", "no change")


def test_a_large_day_is_estimated_from_its_newest_rows(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _setup(dsn, tmp_path)
    # 20,000 rows over the last 10 minutes: 1,000 ids, each in 20 rows, and one /healthz
    conn.execute(
        "INSERT INTO requests (endpoint, timestamp, response_time, status) "
        "SELECT CASE WHEN g % 2 = 0 THEN '/healthz' ELSE '/users/' || (g % 1000) END, "
        "now() - (g % 600) * interval '1 second', 5, 200 FROM generate_series(1, 20000) g"
    )
    conn.execute("ANALYZE requests")
    monkeypatch.setattr(cardinality, "EXACT_ROWS", 1000)
    monkeypatch.setattr(cardinality, "SLICE_ROWS", 5000)
    with session(load(cfg, {}), dsn) as s:
        found = cardinality.measure(s)
    assert found.method == "newest rows" and found.rows_read is not None
    assert 1000 <= found.rows_read <= 20000  # a slice of the newest rows, not all of them
    assert found.day is None and "estimated from the newest" in found.how()
    # 501 distinct endpoints (odd ids and /healthz): seen again and again, not scaled up
    assert 400 <= found.endpoints <= 520, found


@pytest.mark.parametrize(
    ("distinct", "once", "read", "day_rows", "expected"),
    [
        (1000, 1000, 1000, 50_000.0, 50_000),  # every value new: as many as the day's rows
        (10, 0, 1000, 50_000.0, 10),  # every value seen again: no more than seen
        (0, 0, 0, 50_000.0, 0),
        (500, 250, 1000, 1000.0, 500),  # the whole day read: exact
    ],
)
def test_the_day_s_estimate(
    distinct: int, once: int, read: int, day_rows: float, expected: int
) -> None:
    assert cardinality.per_day(distinct, once, read, day_rows) == expected
