"""Sub-day windows (issue 18, "the last hour"), on real servers: `--hours N` and `--since`/
`--until` with a time, across a local midnight and a DST change (America/New_York's
2026-11-01, Europe/Berlin's 2026-03-29), for raw and auto (the rollup's whole days plus the raw
rows of the partial days, in one statement) against a Python oracle over the rows inserted,
before and after the rollup saw them; `--source view` refuses them; --compare moves an
--hours window back by its length."""

from __future__ import annotations

import datetime as dt
import random
import zoneinfo
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.rollup_oracle import Agg, figures, same_figures
from tests.test_truth import Row, Table, make_table, window_of

pytestmark = pytest.mark.one_version  # heavy: the first server version only

UTC = dt.timezone.utc
ENDPOINTS = ["/a", "/b", "/c"]
# (zone, a past DST change in it, the naive column's zone or None for timestamptz)
ZONES = [
    ("America/New_York", dt.date(2026, 11, 1), None),
    ("Europe/Berlin", dt.date(2026, 3, 29), "America/Chicago"),
]


def oracle(
    rows: list[Row], lo: dt.datetime, hi: dt.datetime, zone: zoneinfo.ZoneInfo
) -> tuple[dict[str, Agg], dict[tuple[str, dt.date], Agg]]:
    """Per endpoint, and per endpoint and local day, of the rows dated in [lo, hi)."""
    per_endpoint: dict[str, Agg] = {}
    per_day: dict[tuple[str, dt.date], Agg] = {}
    for endpoint, instant, rt, status in rows:
        if lo <= instant < hi:
            per_endpoint.setdefault(endpoint, Agg()).add(rt, status)
            per_day.setdefault((endpoint, instant.astimezone(zone).date()), Agg()).add(rt, status)
    return per_endpoint, per_day


def _row(rng: random.Random, instant: dt.datetime) -> Row:
    rt = None if rng.random() < 0.05 else round(rng.lognormvariate(3, 1), 3)
    return (rng.choice(ENDPOINTS), instant, rt, rng.choice([200, 201, 404, 500, 503]))


def dataset(
    rng: random.Random, zone: zoneinfo.ZoneInfo, change: dt.date, now: dt.datetime
) -> list[Row]:
    """Rows over the 4 days around `change` (and on each side of its local midnights, and
    of the change itself), and over the last 3 days up to now."""
    start = dt.datetime.combine(change - dt.timedelta(days=2), dt.time(), zone)
    rows = [_row(rng, start + dt.timedelta(seconds=rng.uniform(0, 4 * 86400))) for _ in range(500)]
    for n in range(-2, 3):
        midnight = dt.datetime.combine(change + dt.timedelta(days=n), dt.time(), zone)
        rows += [_row(rng, midnight + dt.timedelta(seconds=s)) for s in (-1, 0, 1)]
    for hour in range(0, 5):  # the hours of the change, as instants: the gap or the overlap
        noon_before = dt.datetime.combine(change, dt.time(), zone).astimezone(UTC)
        rows += [_row(rng, noon_before + dt.timedelta(hours=hour, minutes=m)) for m in (0, 59)]
    rows += [_row(rng, now - dt.timedelta(seconds=rng.uniform(30, 3 * 86400))) for _ in range(400)]
    return rows


@pytest.fixture(params=ZONES, ids=[z[0] for z in ZONES])
def table(
    request: pytest.FixtureRequest, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> tuple[Table, zoneinfo.ZoneInfo, dt.date]:
    name, change, naive = request.param
    t = make_table(dsn, conn, tmp_path, naive_zone=naive)
    cfg = Path(t.cfg)
    cfg.write_text(cfg.read_text().replace("timezone: America/New_York", f"timezone: {name}"))
    zone = zoneinfo.ZoneInfo(name)
    rng = random.Random(18)
    t.insert(dataset(rng, zone, change, t.now()))
    assert t.cli("view", "build").code == 0
    return t, zone, change


def check(t: Table, zone: zoneinfo.ZoneInfo, source: str, window: list[str]) -> dict[str, Any]:
    """`report top` and `report endpoint /a` of one source and window against the oracle."""
    doc: dict[str, Any] = t.json("report", "top", "--source", source, *window)
    lo, hi = window_of(doc)
    per_endpoint, _ = oracle(t.rows, lo, hi, zone)
    got = {r["endpoint"]: r for r in doc["rows"]}
    assert set(got) == set(per_endpoint), (source, window)
    for name, agg in per_endpoint.items():
        assert same_figures(got[name], figures(agg)), (source, window, name, got[name], agg)
    days = t.json("report", "endpoint", "/a", "--source", source, *window)
    if "--hours" not in window:  # the same window (--hours: one hour up to its own now)
        assert window_of(days) == (lo, hi) and days["parts"] == doc["parts"]
    lo, hi = window_of(days)
    _, per_day = oracle(t.rows, lo, hi, zone)
    first, last = (
        lo.astimezone(zone).date(),
        (hi - dt.timedelta(microseconds=1)).astimezone(zone).date(),
    )
    assert [r["day"] for r in days["rows"]] == [
        (first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)
    ]
    for r in days["rows"]:
        want = per_day.get(("/a", dt.date.fromisoformat(r["day"])), Agg())
        assert same_figures(r, figures(want)), (source, window, r, want)
    return doc


def parts_of(doc: dict[str, Any]) -> list[tuple[str, dt.datetime, dt.datetime]]:
    return [
        (p["source"], dt.datetime.fromisoformat(p["from"]), dt.datetime.fromisoformat(p["to"]))
        for p in doc["parts"]
    ]


def test_times_across_midnight_and_dst_equal_the_oracle(
    table: tuple[Table, zoneinfo.ZoneInfo, dt.date],
) -> None:
    """--since/--until with times around a DST change: auto reads the whole days from the rollup
    (the 23- or 25-hour day of the change among them) and the head and tail from the raw rows;
    raw and auto equal the oracle; a window inside one day reads only raw rows."""
    t, zone, change = table
    d = change.isoformat()
    before, after = (change - dt.timedelta(days=2)).isoformat(), (change + dt.timedelta(days=1))
    windows = [
        ["--since", f"{before}T15:00", "--until", f"{after}T03:00"],  # head, 2 days, tail
        ["--since", f"{d} 00:30", "--until", f"{d}T04:00"],  # inside the day of the change
        ["--since", f"{before}T23:59", "--until", f"{d}T00:01"],  # head, 1 day, tail
        ["--since", f"{before}T21:00", "--until", f"{after}"],  # head, whole days to the end
        ["--since", before, "--until", f"{d}T23:30"],  # whole days, tail
    ]
    for window in windows:
        docs = {source: check(t, zone, source, window) for source in ("raw", "auto")}
        assert docs["raw"]["window"] == docs["auto"]["window"]
        assert [p["source"] for p in docs["raw"]["parts"]] == ["raw"]
    # the first: Berlin's change day has 23 hours, New York's 25, both from the rollup
    auto = t.json("report", "top", *windows[0])
    lo, hi = window_of(auto)
    local = [x.astimezone(zone) for x in (lo, hi)]
    assert [(x.date(), x.time()) for x in local] == [
        (change - dt.timedelta(days=2), dt.time(15)),
        (after, dt.time(3)),
    ]
    (s1, f1, t1), (s2, f2, t2), (s3, f3, t3) = parts_of(auto)
    assert (s1, s2, s3) == ("raw", "view", "raw") and (f1, t1, t2, t3) == (lo, f2, f3, hi)
    assert auto["parts"][1]["first_day"] == (change - dt.timedelta(days=1)).isoformat()
    assert auto["parts"][1]["last_day"] == d
    day = dt.datetime.combine(change, dt.time(), zone).astimezone(UTC)
    length = dt.datetime.combine(after, dt.time(), zone).astimezone(UTC) - day  # 23 or 25 h
    assert length != dt.timedelta(hours=24)
    assert t2 - f2 == dt.timedelta(hours=24) + length
    inside = t.json("report", "top", *windows[1])
    assert [p["source"] for p in inside["parts"]] == ["raw"]
    text = t.cli("report", "top", *windows[0]).stdout
    assert "parts: raw rows " in text and f"..24:00; rollup {auto['parts'][1]['first_day']}" in text


def test_auto_reads_whole_days_from_the_rollup_and_partial_days_from_raw_rows(
    table: tuple[Table, zoneinfo.ZoneInfo, dt.date],
) -> None:
    """After the build, a row deleted from a whole day is still counted by auto (the rollup's
    day) but not by raw; a row added to the head's day is counted by both (the raw rows)."""
    t, zone, change = table
    before, after = (change - dt.timedelta(days=2)).isoformat(), (change + dt.timedelta(days=1))
    window = ["--since", f"{before}T15:00", "--until", f"{after}T03:00"]
    doc = t.json("report", "top", "--source", "auto", *window)
    whole = dt.datetime.combine(change - dt.timedelta(days=1), dt.time(12), zone)
    gone = [r for r in t.rows if r[0] == "/a" and abs(r[1] - whole) < dt.timedelta(hours=10)]
    assert gone
    stored = [t.stored(r[1]) for r in gone]
    t.conn.execute(
        'DELETE FROM "Api"."Requests" WHERE endpoint = %s AND ts = ANY(%s)', ["/a", stored]
    )
    t.rows = [r for r in t.rows if r not in gone]
    late = dt.datetime.combine(change - dt.timedelta(days=2), dt.time(20), zone)
    t.insert([("/a", late, 1.0, 200)])
    auto = t.json("report", "top", "--source", "auto", *window)
    raw = t.json("report", "top", "--source", "raw", *window)
    first, now, by_raw = (
        {x["endpoint"]: x["requests"] for x in d["rows"]} for d in (doc, auto, raw)
    )
    assert now["/a"] == first["/a"] + 1  # the deleted rows from the rollup, the late one raw
    assert by_raw["/a"] == now["/a"] - len(gone)


def test_hours_equal_the_oracle_before_and_after_a_refresh(
    table: tuple[Table, zoneinfo.ZoneInfo, dt.date],
) -> None:
    """--hours 1, 30 and 50 (across local midnights) equal the oracle for raw and auto, with rows
    the rollup has not aggregated (counted once) and after a refresh; report endpoint too."""
    t, zone, _change = table
    as_of = t.as_of()
    now = t.now()
    rng = random.Random(7)
    t.insert([_row(rng, as_of + (now - as_of) * (i + 1) / 12) for i in range(10)])
    for refreshed in (False, True):
        if refreshed:
            assert t.cli("view", "refresh").code == 0
            t.insert([_row(rng, t.now() - dt.timedelta(milliseconds=5))])
        for hours in ("1", "30", "50"):
            docs = {s: check(t, zone, s, ["--hours", hours]) for s in ("raw", "auto")}
            lo, hi = window_of(docs["auto"])
            assert hi - lo == dt.timedelta(hours=int(hours))
            if hours == "50":  # 2 local midnights: a raw head, then whole days to now
                assert [p["source"] for p in docs["auto"]["parts"]] == ["raw", "view"]
                assert docs["auto"]["parts"][1]["to"] == docs["auto"]["window"]["to"]
            if hours == "1" and lo.astimezone(zone).date() == hi.astimezone(zone).date():
                assert [p["source"] for p in docs["auto"]["parts"]] == ["raw"]


def test_compare_moves_an_hours_window_back_by_its_length(
    table: tuple[Table, zoneinfo.ZoneInfo, dt.date],
) -> None:
    t, zone, _change = table
    for source, hours in (("raw", "2"), ("auto", "2"), ("auto", "40")):
        doc = t.json("report", "top", "--source", source, "--hours", hours, "--compare")
        lo, hi = window_of(doc)
        plo, phi = window_of({"window": doc["previous_window"]})
        assert (phi, hi - lo, phi - plo) == (lo, dt.timedelta(hours=int(hours)), hi - lo)
        now, _ = oracle(t.rows, lo, hi, zone)
        then, _ = oracle(t.rows, plo, phi, zone)
        for row in doc["rows"]:
            assert same_figures(row, figures(now.get(row["endpoint"]))), row
            assert same_figures(row["previous"], figures(then.get(row["endpoint"]))), row
    text = t.cli("report", "top", "--hours", "40", "--compare").stdout
    assert "compared with:" in text and "(the 40 hours right before; raw rows" in text


def test_sub_day_windows_are_checked(table: tuple[Table, zoneinfo.ZoneInfo, dt.date]) -> None:
    """One-line usage errors (exit 2): view with a time of day, unparsable values, an empty
    window, --hours with --days; a local midnight is a whole day for view."""
    t, _zone, change = table
    d = change.isoformat()
    bad = [
        (["report", "top", "--source", "view", "--hours", "1"], "needs --source auto"),
        (["report", "top", "--source", "view", "--since", f"{d}T09:30"], "needs --source auto"),
        (
            ["report", "endpoint", "/a", "--source", "view", "--since", d, "--until", f"{d} 10:00"],
            "needs --source auto",
        ),
        (["report", "top", "--since", "2026-11-27T9h30"], "--since '2026-11-27T9h30' is neither"),
        (["report", "top", "--since", d, "--until", "tomorrow"], "--until 'tomorrow' is neither"),
        (
            ["report", "top", "--since", f"{d}T10:00", "--until", f"{d}T09:00"],
            "the window would be empty",
        ),
        (
            ["report", "top", "--since", f"{d}T10:00", "--until", f"{d}T10:00"],
            "the window would be empty",
        ),
        (["report", "top", "--hours", "1", "--days", "2"], "--hours excludes"),
        (["report", "endpoint", "/a", "--hours", "0"], "--hours"),
        (["report", "top", "--since", "2099-01-01T10:00"], "--since is after now"),
    ]
    gap = {"Europe/Berlin": "2026-03-29", "America/New_York": "2026-03-08"}[_zone.key]
    for source in ("auto", "raw"):  # 02:30 is skipped: it reads as 03:30, after 03:00
        bad.append(
            (
                [
                    *("report", "top", "--source", source, "--since", f"{gap}T02:30"),
                    *("--until", f"{gap}T03:00"),
                ],
                "a local time in the hour a DST change skips is read as the hour after it",
            )
        )
    for args, said in bad:
        r = t.cli(*args)
        assert r.code == 2 and said in r.stderr, (args, r.stderr)
        if "--hours excludes" not in said and "0" not in args:
            assert r.stderr.count("\n") == 1 and "Usage:" not in r.stderr, r.stderr
    nxt = (change + dt.timedelta(days=1)).isoformat()
    whole = t.json(
        "report", "top", "--source", "view", "--since", f"{d}T00:00", "--until", f"{nxt}T00:00"
    )
    same = t.json("report", "top", "--source", "view", "--since", d, "--until", d)
    assert whole["window"] == same["window"] and whole["rows"] == same["rows"]
    assert [p["source"] for p in same["parts"]] == ["view"]
