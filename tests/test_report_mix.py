"""Issue 18, phase 2b: the status mix in reports. Every `report top` row and `report endpoint`
day carries status_2xx .. status_other, equal to an oracle over the raw rows and adding up to
`requests`, on view, raw and auto; `--sort 4xx|5xx` (and --asc) orders as the oracle does;
--compare gives each class its previous count and the difference; a rollup built without the
classes (an earlier epstats) reports no mix and says so, and refuses --sort 4xx (exit 3)."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.test_report_normalized import (
    CLASSES,
    Row,
    by_day,
    by_endpoint,
    cli,
    insert,
    report,
    same,
    window,
)

pytestmark = pytest.mark.one_version  # heavy: the first server version only

# Fixed routes (normalization off), each with its own mix: the 4xx and 5xx orders differ.
ROUTES: dict[str, list[int | None]] = {
    "/a": [200, 200, 404, 500],
    "/b": [200, 404, 404, 429, 301],
    "/c": [503, 500, 200, 102, None],
    "/d": [200, 200, 200, 204, 304],
    "/e": [404, 500, 700, 200],
    "/f": [401, 403, 200, 502, 504, 200],
}


def _rows(rnd: random.Random, now: dt.datetime, n: int, minutes: int) -> list[Row]:
    out: list[Row] = []
    for _ in range(n):
        route = rnd.choice(sorted(ROUTES))
        ts = now - dt.timedelta(minutes=rnd.randrange(1, minutes))
        out.append((route, ts, float(rnd.randrange(1, 500)), rnd.choice(ROUTES[route])))
    return out


def _setup(
    dsn: str, tmp_path: Path, days: int = 12, strategy: str = "materialized"
) -> tuple[str, list[Row], list[Row]]:
    """A rollup over `days` days, then rows newer than its as-of (what auto adds)."""
    assert run_cli("--dsn", dsn, "-q", "init", "--with-requests-table").code == 0
    with psycopg.connect(dsn) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    old = _rows(random.Random(1803), now, 3000, 60 * 24 * days)
    insert(dsn, old)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "source: {timezone: America/New_York}\nreports: {days: 7}\n"
        f"view: {{strategy: {strategy}}}\n"
    )
    r = cli(str(cfg), dsn, "view", "build")
    assert r.code == 0, r.stderr
    with psycopg.connect(dsn) as conn:
        now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
    new = _rows(random.Random(7), now, 300, 9)  # within view.commit_delay: auto's
    insert(dsn, new)
    return str(cfg), old, new


def _norm_free(rows: list[Row], lo: dt.datetime, hi: dt.datetime) -> dict[str, dict[str, Any]]:
    """The oracle's figures per route (fixed routes: normalization changes none)."""
    return by_endpoint(rows, lo, hi)


@pytest.mark.parametrize("source", ["view", "raw", "auto"])
def test_the_mix_equals_the_oracle_and_adds_up(source: str, dsn: str, tmp_path: Path) -> None:
    cfg, old, new = _setup(dsn, tmp_path)
    rows = old if source == "view" else old + new
    doc = report(cfg, dsn, "top", "--source", source)
    want = _norm_free(rows, *window(doc))
    assert {x["endpoint"] for x in doc["rows"]} == set(want)
    for row in doc["rows"]:
        assert set(CLASSES) <= set(row) and same(row, want[row["endpoint"]])
        assert sum(row[c] for c in CLASSES) == row["requests"]
    # report endpoint: every day, and the totals
    doc = report(cfg, dsn, "endpoint", "/c", "--source", source)
    days = by_day(rows, "/c", *window(doc))
    for day in doc["rows"]:
        assert sum(day[c] for c in CLASSES) == day["requests"]
        assert all(day[c] == days[day["day"]][c] for c in CLASSES) if day["requests"] else True
    assert all(doc["totals"][c] == want["/c"][c] for c in CLASSES)
    assert sum(doc["totals"][c] for c in CLASSES) == doc["totals"]["requests"]


@pytest.mark.parametrize("source", ["view", "raw", "auto"])
def test_sort_by_a_status_class(source: str, dsn: str, tmp_path: Path) -> None:
    cfg, old, new = _setup(dsn, tmp_path)
    rows = old if source == "view" else old + new
    for sort, key in (("4xx", "status_4xx"), ("5xx", "status_5xx")):
        doc = report(cfg, dsn, "top", "--source", source, "--sort", sort)
        want = _norm_free(rows, *window(doc))
        desc = sorted(want, key=lambda e: (-want[e][key], e))
        assert [x["endpoint"] for x in doc["rows"]] == desc
        doc = report(cfg, dsn, "top", "--source", source, "--sort", sort, "--asc")
        assert [x["endpoint"] for x in doc["rows"]] == sorted(want, key=lambda e: (want[e][key], e))
        doc = report(cfg, dsn, "top", "--source", source, "--sort", sort, "--limit", "2")
        assert [x["endpoint"] for x in doc["rows"]] == desc[:2]
    text = cli(cfg, dsn, "report", "top", "--source", source, "--sort", "5xx").stdout
    assert "Top 6 endpoints by 5xx" in text
    header = next(line for line in text.splitlines() if line.startswith("Endpoint"))
    assert header.split()[-2:] == ["4xx", "5xx"]
    text = cli(cfg, dsn, "report", "endpoint", "/b", "--source", source).stdout
    header = next(line for line in text.splitlines() if line.startswith("Day"))
    assert header.split()[-5:] == ["2xx", "3xx", "4xx", "5xx", "Other"]


def test_compare_gives_the_mix_its_previous_counts(dsn: str, tmp_path: Path) -> None:
    cfg, old, new = _setup(dsn, tmp_path, days=16)
    for source in ("auto", "raw"):  # a window that ends now: auto reads its last day raw
        doc = report(cfg, dsn, "top", "--source", source, "--compare", "--sort", "4xx")
        now = _norm_free(old + new, *window(doc))
        prev = doc["previous_window"]
        lo, hi = dt.datetime.fromisoformat(prev["from"]), dt.datetime.fromisoformat(prev["to"])
        then = _norm_free(old + new, lo, hi)
        for row in doc["rows"]:
            e = row["endpoint"]
            for c in CLASSES:
                assert row[c] == now[e][c] and row["previous"][c] == then[e][c]
                assert row["change"][c] == now[e][c] - then[e][c]
        changes = [(-x["change"]["status_4xx"], x["endpoint"]) for x in doc["rows"]]
        assert changes == sorted(changes)


def test_a_rollup_without_status_classes(dsn: str, tmp_path: Path) -> None:
    """An earlier epstats's rollup: no mix from it (None, with a note naming the fix), not a
    partial one from auto's newer rows; --sort 4xx|5xx refused in one line (exit 3); raw
    still has the mix."""
    cfg, old, new = _setup(dsn, tmp_path, strategy="incremental")
    with psycopg.connect(dsn, autocommit=True) as conn:  # as the previous epstats built it
        for c in CLASSES:
            conn.execute(f"ALTER TABLE endpoint_daily_stats DROP COLUMN {c}")
    for source in ("view", "auto"):
        doc = report(cfg, dsn, "top", "--source", source)
        want = _norm_free(old if source == "view" else old + new, *window(doc))
        assert {x["endpoint"]: x["requests"] for x in doc["rows"]} == {
            e: w["requests"] for e, w in want.items()
        }
        assert all(x[c] is None for x in doc["rows"] for c in CLASSES)
        assert any("no status classes" in n and "--replace" in n for n in doc["notes"])
        doc = report(cfg, dsn, "endpoint", "/a", "--source", source)
        assert all(x[c] is None for x in doc["rows"] for c in CLASSES)
        assert all(doc["totals"][c] is None for c in CLASSES)
        for sort in ("4xx", "5xx"):
            r = cli(cfg, dsn, "report", "top", "--source", source, "--sort", sort)
            assert r.code == 3 and "view build --replace" in r.stderr, r.stderr
            assert len(r.stderr.strip().splitlines()) == 1
    doc = report(cfg, dsn, "top", "--source", "auto", "--compare")
    assert all(
        x["previous"][c] is None and x["change"][c] is None for x in doc["rows"] for c in CLASSES
    )
    doc = report(cfg, dsn, "top", "--source", "raw", "--sort", "4xx")
    assert all(sum(x[c] for c in CLASSES) == x["requests"] for x in doc["rows"])
