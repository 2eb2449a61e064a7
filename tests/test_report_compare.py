"""`report top` answering the next question, on real servers: --min-requests, --asc and
--compare (with endpoints seen in only one of the two windows), every row checked against a
Python oracle over the raw rows, for view, raw and auto, on an aware and a naive column."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.rollup_oracle import (
    Agg,
    change,
    close,
    figures,
    ranked,
    ranked_by_change,
    same_figures,
    shifted,
)
from tests.test_truth import NY, Row, Table, expected, make_table, window_of

pytestmark = pytest.mark.one_version  # heavy: the first server version only

COMMON = ["/a", "/b", "/c"]
ERROR_ODDS = {"/a": 0.004, "/b": 0.007, "/c": 0.01, "/gone": 0.01, "/new": 0.01}


def _status(rng: random.Random, endpoint: str) -> int:
    return 503 if rng.random() < ERROR_ODDS[endpoint] else rng.choice([200, 201, 404])


def _at(day: dt.date, rng: random.Random) -> dt.datetime:
    """A random instant of a New York day."""
    start = dt.datetime.combine(day, dt.time(), NY)
    end = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), NY)
    return start + (end - start) * rng.random()


def dataset(rng: random.Random, now: dt.datetime) -> list[Row]:
    """62 days of /a /b /c; /gone only in the days before the windows the tests compare
    (days -13..-8 and -27..-21), /new only in them (days -6..0 and -20..-14); /rare: 32
    requests, 1 error, in the last 7 days (the issue's endpoint that should not top an error
    rate); rows on day -7 just before and after the time of day a window ending now is cut at."""
    today = now.astimezone(NY).date()

    def day(n: int) -> dt.date:
        return today - dt.timedelta(days=n)

    rows: list[Row] = []
    for _ in range(2400):
        instant = now - dt.timedelta(seconds=rng.uniform(120, 62 * 86400))
        endpoint = rng.choice(COMMON)
        mean = {"/a": 2.0, "/b": 3.0, "/c": 2.5}[endpoint]
        rt = None if rng.random() < 0.03 else round(rng.lognormvariate(mean, 0.8), 3)
        rows.append((endpoint, instant, rt, _status(rng, endpoint)))
    for endpoint, days in (("/gone", [*range(8, 14), *range(21, 28)]), ("/new", range(0, 21))):
        for n in days:
            if endpoint == "/new" and 7 <= n <= 13:
                continue
            for _ in range(12):
                instant = min(_at(day(n), rng), now - dt.timedelta(seconds=60))
                rows.append((endpoint, instant, round(5 + rng.random(), 3), _status(rng, endpoint)))
    rows += [
        ("/rare", min(_at(day(i % 7), rng), now - dt.timedelta(seconds=60)), 1.0, 200)
        for i in range(31)
    ]
    rows.append(("/rare", now - dt.timedelta(seconds=90), 1.0, 500))
    # day -7, the last day of --days 7's previous window: counted up to now's time of day only
    cut = shifted(now, 7, NY)
    midnight = dt.datetime.combine(day(6), dt.time(), NY)
    if midnight - cut > dt.timedelta(minutes=10):
        rows.append(("/a", cut - dt.timedelta(minutes=5), 4321.0, 200))  # in
        rows.append(("/a", cut + (midnight - cut) / 2, 9876.0, 500))  # in neither window
    return rows


@pytest.fixture(params=[None, "America/Chicago"], ids=["timestamptz", "naive-chicago"])
def table(
    request: pytest.FixtureRequest, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> tuple[Table, dt.datetime]:
    t = make_table(dsn, conn, tmp_path, naive_zone=request.param)
    rng = random.Random(14)
    t.insert(dataset(rng, t.now()))
    assert t.cli("view", "build").code == 0
    as_of = t.as_of()
    # written since the refresh: auto adds them, view does not
    now = t.now()
    t.insert(
        [(e, as_of + (now - as_of) * (i + 1) / 9, 7.0 + i, 200) for i, e in enumerate(["/new"] * 8)]
    )
    return t, as_of


def check_top(
    t: Table,
    as_of: dt.datetime,
    source: str,
    window: list[str],
    *,
    sort: str = "requests",
    ascending: bool = False,
    min_requests: int | None = None,
    limit: int = 100,
    compare: bool = False,
) -> dict[str, Any]:
    """One `report top` against the oracle: the rows, their order and, with --compare, the
    previous window, each row's figures there, the change, and the order by that change."""
    args = ["report", "top", "--source", source, "--sort", sort, "--limit", str(limit), *window]
    args += ["--asc"] * ascending + ["--compare"] * compare
    args += ["--min-requests", str(min_requests)] if min_requests is not None else []
    doc: dict[str, Any] = t.json(*args)
    lo, hi = window_of(doc)
    until = as_of if source == "view" else None
    now, _ = expected(t.rows, lo, hi, until)
    want = ranked(now, sort, ascending, min_requests, limit)
    before: dict[str, Agg] = {}
    if compare:
        last = (hi - dt.timedelta(microseconds=1)).astimezone(NY).date()
        days = (last - lo.astimezone(NY).date()).days + 1  # the window's days, both counted
        plo, phi = shifted(lo, days, NY), shifted(hi, days, NY)
        assert window_of({"window": doc["previous_window"]}) == (plo, phi)
        before, _ = expected(t.rows, plo, phi, until)
        want = ranked_by_change(now, before, sort, ascending, min_requests, limit)
    else:
        assert "previous_window" not in doc
    assert [r["endpoint"] for r in doc["rows"]] == want, (source, args)
    for row in doc["rows"]:
        current = figures(now.get(row["endpoint"]))
        assert same_figures(row, current), (source, args, row)
        if compare:
            previous = figures(before.get(row["endpoint"]))
            assert same_figures(row["previous"], previous), (source, args, row)
            for key, value in change(current, previous).items():
                assert close(row["change"][key], value), (source, args, row, key)
        else:
            assert "previous" not in row and "change" not in row
    return doc


def test_min_requests_and_asc(table: tuple[Table, dt.datetime]) -> None:
    t, as_of = table
    for source in ("raw", "view", "auto"):
        doc = check_top(t, as_of, source, ["--days", "7"], sort="error_rate")
        assert doc["rows"][0]["endpoint"] == "/rare"  # 1 error in 32 requests
        doc = check_top(t, as_of, source, ["--days", "7"], sort="error_rate", min_requests=100)
        assert "/rare" not in [r["endpoint"] for r in doc["rows"]]
        for sort in ("requests", "avg", "max", "errors", "error_rate"):
            check_top(t, as_of, source, ["--days", "30"], sort=sort, ascending=True)
        doc = check_top(t, as_of, source, ["--days", "7"], ascending=True, limit=2)
        assert doc["rows"][0]["endpoint"] == "/rare"  # the quietest
        check_top(t, as_of, source, ["--days", "7"], sort="avg", min_requests=33, ascending=True)


def test_compare_a_window_that_ends_now(table: tuple[Table, dt.datetime]) -> None:
    """--days 7: the previous window is days -13..-7, day -7 up to now's time of day; /new is
    only in the current window, /gone only in the previous one."""
    t, as_of = table
    for source in ("raw", "auto"):
        doc = check_top(t, as_of, source, ["--days", "7"], sort="avg", compare=True)
        rows = {r["endpoint"]: r for r in doc["rows"]}
        assert set(rows) == {*COMMON, "/gone", "/new", "/rare"}
        assert all(v is None for v in rows["/gone"]["change"].values())
        assert rows["/gone"]["requests"] is None and rows["/gone"]["previous"]["requests"] > 0
        assert rows["/new"]["previous"] == dict.fromkeys(rows["/new"]["previous"])
        # by the change in avg, biggest increase first; those seen in one window only last
        order = [r["endpoint"] for r in doc["rows"]]
        assert order[-3:] == ["/gone", "/new", "/rare"] and set(order[:3]) == set(COMMON)
        avg = [rows[e]["change"]["avg_ms"] for e in order[:3]]
        assert avg == sorted(avg, reverse=True)
        if any(rt == 4321.0 for _e, _i, rt, _s in t.rows):  # the cut is inside day -7
            assert rows["/a"]["previous"]["max_ms"] == 4321.0
        # --min-requests applies to the current window: it drops /rare and /gone
        doc = check_top(
            t, as_of, source, ["--days", "7"], sort="error_rate", min_requests=40, compare=True
        )
        assert {r["endpoint"] for r in doc["rows"]} == {*COMMON, "/new"}
        check_top(t, as_of, source, ["--days", "30"], limit=2, compare=True, ascending=True)
        for sort in ("requests", "avg", "max", "errors", "error_rate"):
            for ascending in (False, True):
                check_top(
                    t, as_of, source, ["--days", "7"], sort=sort, ascending=ascending, compare=True
                )
        check_top(t, as_of, source, ["--days", "7"], sort="max", limit=2, compare=True)
    # an option conflict: a usage error, one line saying what to use instead
    r = t.cli("report", "top", "--days", "7", "--compare", "--source", "view")
    assert r.code == 2 and "use --source auto (or raw)" in r.stderr, r.stderr
    assert r.stderr.count("\n") == 1 and "Usage:" not in r.stderr
    text = t.cli("report", "top", "--days", "7", "--compare", "--sort", "avg").stdout
    assert "5 endpoints by change in avg (biggest increase first)" in text
    assert "1 seen only in the previous window" in text and "compared with:" in text
    assert "Prev requests" in text and "Error rate Δ pp" in text and "Max ratio" not in text
    text = t.cli("report", "top", "--days", "7", "--compare", "--sort", "max", "--asc").stdout
    assert "by change in max (biggest decrease first)" in text and "Max ratio" in text
    csv = t.cli("--format", "csv", "report", "top", "--days", "7", "--compare").stdout
    assert csv.splitlines()[0] == (
        "endpoint,requests,previous_requests,change_requests,avg_ms,previous_avg_ms,"
        "change_avg_ms,min_ms,max_ms,previous_max_ms,change_max_ms,errors,previous_errors,"
        "change_errors,error_rate,previous_error_rate,change_error_rate"
        + "".join(f",p{q}_ms,previous_p{q}_ms,change_p{q}_ms" for q in (50, 95, 99))
        + "".join(
            f",status_{c},previous_status_{c},change_status_{c}"
            for c in ("2xx", "3xx", "4xx", "5xx", "other")
        )
    )


def test_compare_whole_days(table: tuple[Table, dt.datetime]) -> None:
    """--since/--until: the previous window is the same number of whole days right before, from
    the rollup for view and auto."""
    t, as_of = table
    today = t.now().astimezone(NY).date()
    since, until = str(today - dt.timedelta(days=20)), str(today - dt.timedelta(days=14))
    for source in ("view", "raw", "auto"):
        doc = check_top(t, as_of, source, ["--since", since, "--until", until], compare=True)
        assert {r["endpoint"] for r in doc["rows"]} == {*COMMON, "/new", "/gone"}
        lo, _hi = window_of(doc)
        assert window_of({"window": doc["previous_window"]})[1] == lo
        for i, sort in enumerate(("requests", "avg", "max", "errors", "error_rate")):
            window = ["--since", since, "--until", until]
            check_top(t, as_of, source, window, sort=sort, ascending=i % 2 == 1, compare=True)
        check_top(
            t,
            as_of,
            source,
            ["--since", since, "--until", until],
            sort="error_rate",
            ascending=True,
            min_requests=10,
            compare=True,
        )
    # across the DST change: 2026-11-01 has 25 hours in New York, the days before it 24
    doc = t.json("report", "top", "--since", "2026-11-01", "--until", "2026-11-02", "--compare")
    lo, hi = window_of(doc)
    plo, phi = window_of({"window": doc["previous_window"]})
    assert (hi - lo, phi - plo, phi) == (dt.timedelta(hours=49), dt.timedelta(hours=48), lo)


def test_compare_reads_the_previous_window_from_the_rollup(
    table: tuple[Table, dt.datetime],
) -> None:
    """view and auto read the previous window's whole days from the rollup: with /gone's raw
    rows deleted after the build they still show its previous figures, raw no longer does;
    a --since with a time of day compares the same hours, from the raw rows."""
    t, as_of = table
    today = t.now().astimezone(NY).date()
    check_top(t, as_of, "auto", ["--since", f"{today - dt.timedelta(days=2)} 09:30"], compare=True)
    closed = [
        "--since",
        str(today - dt.timedelta(days=20)),
        "--until",
        str(today - dt.timedelta(days=14)),
    ]
    windows = {"view": closed, "auto": ["--days", "7"]}
    before = {
        s: t.json("report", "top", "--compare", "--source", s, *w) for s, w in windows.items()
    }
    t.conn.execute("""DELETE FROM "Api"."Requests" WHERE endpoint = '/gone'""")
    for source, window in windows.items():
        doc = t.json("report", "top", "--compare", "--source", source, *window)
        gone = [r for r in doc["rows"] if r["endpoint"] == "/gone"]
        assert gone and gone == [r for r in before[source]["rows"] if r["endpoint"] == "/gone"]
        assert gone[0]["previous"]["requests"] > 0
    doc = t.json("report", "top", "--compare", "--source", "raw", "--days", "7")
    assert "/gone" not in {r["endpoint"] for r in doc["rows"]}
