"""Every number right under real-world data (issue 12), on real servers: naive and aware
timestamps under several session time zones across a DST change, future-dated rows, writers
in flight during a refresh, a changed configuration, columns of the wrong type. A Python
oracle (zoneinfo) over the raw rows checks every number `report top` and `report endpoint`
print, for view, raw and auto."""

from __future__ import annotations

import datetime as dt
import json
import random
import zoneinfo
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.conftest import run_cli
from tests.rollup_oracle import Agg, close, pg_instant, same_figures

pytestmark = pytest.mark.one_version  # heavy: the first server version only

TZ = "America/New_York"
NY = zoneinfo.ZoneInfo(TZ)
UTC = dt.timezone.utc
VIEW = '"Api".endpoint_daily_stats'
ENDPOINTS = ["/a", "/b", "/c", "/d%_"]
# The session's TimeZone must never matter: the database's own default, and two PGTZs.
SESSION_ZONES: list[dict[str, str | None]] = [
    {"PGTZ": None},  # the database default, set to Asia/Tokyo below
    {"PGTZ": "UTC"},
    {"PGTZ": "America/Los_Angeles"},
]

Row = tuple[str, dt.datetime, float | None, int]  # endpoint, instant, response time, status


@dataclass
class Table:
    """A source table, its configuration file, and the rows it holds as instants."""

    conn: psycopg.Connection[Any]
    dsn: str
    cfg: str
    naive_zone: zoneinfo.ZoneInfo | None  # None: a timestamptz column
    rows: list[Row]

    def cli(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        return run_cli("-c", self.cfg, "--dsn", self.dsn, *args, env=env)

    def json(self, *args: str, env: dict[str, str | None] | None = None) -> Any:
        r = self.cli("--format", "json", *args, env=env)
        assert r.code == 0, r.stderr
        return json.loads(r.stdout)

    def insert(self, rows: list[Row]) -> None:
        """COPY rows in (naive columns get the wall-clock time in the naive zone)."""
        with (
            self.conn.cursor() as cur,
            cur.copy(
                'COPY "Api"."Requests" (endpoint, ts, "responseTime", status) FROM STDIN'
            ) as cp,
        ):
            for endpoint, instant, rt, status in rows:
                cp.write_row((endpoint, self.stored(instant), rt, status))
        self.rows += [(e, self.read_back(self.stored(i)), rt, s) for e, i, rt, s in rows]

    def stored(self, instant: dt.datetime) -> dt.datetime:
        if self.naive_zone is None:
            return instant
        return instant.astimezone(self.naive_zone).replace(tzinfo=None)

    def read_back(self, value: dt.datetime) -> dt.datetime:
        """The instant PostgreSQL reads a stored value as (the oracle's view of a row)."""
        return value if self.naive_zone is None else pg_instant(value, self.naive_zone)

    def now(self) -> dt.datetime:
        return self.conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index,no-any-return]

    def as_of(self) -> dt.datetime:
        row = self.conn.execute(
            f"SELECT as_of FROM {VIEW} WHERE endpoint IS NULL AND day IS NULL"
        ).fetchone()
        assert row is not None
        return row[0]  # type: ignore[no-any-return]


def make_table(
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    *,
    naive_zone: str | None,
    strategy: str = "materialized",
    extra: str = "",
    status_type: str = "smallint",
) -> Table:
    ts_type = "timestamp" if naive_zone else "timestamptz"
    conn.execute('CREATE SCHEMA "Api"')
    conn.execute(
        f'CREATE TABLE "Api"."Requests" (endpoint varchar(200) NOT NULL, ts {ts_type} NOT NULL, '
        f'"responseTime" numeric(10, 3), status {status_type})'
    )
    conn.execute('CREATE INDEX ON "Api"."Requests" (ts)')
    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET TimeZone = 'Asia/Tokyo'")
    cfg = tmp_path / "epstats.yaml"
    cfg.write_text(
        "source:\n"
        '  table: \'"Api"."Requests"\'\n'
        "  columns: {timestamp: ts, response_time: responseTime}\n"
        f"  timezone: {TZ}\n"
        f"  naive_timezone: {naive_zone or 'UTC'}\n"
        f"view: {{strategy: {strategy}}}\n"
        "reports: {limit: 100}\n" + extra
    )
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init").code == 0
    return Table(conn, dsn, str(cfg), zoneinfo.ZoneInfo(naive_zone) if naive_zone else None, [])


def history(rng: random.Random, now: dt.datetime, n: int) -> list[Row]:
    """n rows over the last 35 days, plus rows at New York's midnights and DST end (2026-11-01
    06:00 UTC) and in Chicago's repeated hour."""
    rows: list[Row] = []
    for _ in range(n):
        instant = now - dt.timedelta(seconds=rng.uniform(60, 35 * 86400))
        rt = None if rng.random() < 0.05 else round(rng.lognormvariate(3, 1), 3)
        rows.append((rng.choice(ENDPOINTS), instant, rt, rng.choice([200, 201, 404, 500, 503])))
    edges = [
        dt.datetime(2026, 11, 1, 3, 59, 59, tzinfo=UTC),  # Oct 31, 23:59:59 EDT
        dt.datetime(2026, 11, 1, 4, 0, 0, tzinfo=UTC),  # Nov 1, 00:00 EDT
        dt.datetime(2026, 11, 1, 5, 30, tzinfo=UTC),  # 01:30 EDT
        dt.datetime(2026, 11, 1, 6, 30, tzinfo=UTC),  # 01:30 EST (again); 00:30 CST
        dt.datetime(2026, 11, 1, 7, 15, tzinfo=UTC),  # 01:15 CST (Chicago's repeated hour)
        dt.datetime(2026, 11, 2, 4, 59, 59, tzinfo=UTC),  # Nov 1, 23:59:59 EST
        dt.datetime(2026, 11, 2, 5, 0, 0, tzinfo=UTC),  # Nov 2, 00:00 EST
    ]
    rows += [("/dst", t, 10.0 + i, 500 if i % 2 else 200) for i, t in enumerate(edges)]
    return rows


def fresh(rng: random.Random, after: dt.datetime, until: dt.datetime, n: int) -> list[Row]:
    """n rows dated after `after`, up to `until` (written since the last refresh)."""
    return [
        (rng.choice(ENDPOINTS), after + (until - after) * (i + 1) / (n + 1), 1.0 + i, 503)
        for i in range(n)
    ]


def expected(
    rows: list[Row],
    lo: dt.datetime,
    hi: dt.datetime,
    until: dt.datetime | None = None,
    error_min: int = 500,
) -> tuple[dict[str, Agg], dict[tuple[str, dt.date], Agg]]:
    """The oracle: per endpoint, and per endpoint and New York day, of the rows dated in
    [lo, hi) (and up to `until`, what the rollup holds)."""
    per_endpoint: dict[str, Agg] = {}
    per_day: dict[tuple[str, dt.date], Agg] = {}
    for endpoint, instant, rt, status in rows:
        if lo <= instant < hi and (until is None or instant <= until):
            per_endpoint.setdefault(endpoint, Agg()).add(rt, status, error_min)
            day = instant.astimezone(NY).date()
            per_day.setdefault((endpoint, day), Agg()).add(rt, status, error_min)
    return per_endpoint, per_day


def same(row: dict[str, Any], e: Agg) -> bool:
    return (
        (row["requests"], row["errors"], row["min_ms"], row["max_ms"])
        == (e.requests, e.errors, e.min, e.max)
        and close(row["avg_ms"], e.total / e.responses if e.responses else None)
        and close(row["error_rate"], e.errors / e.requests if e.requests else None)
    )


def window_of(doc: dict[str, Any]) -> tuple[dt.datetime, dt.datetime]:
    return (
        dt.datetime.fromisoformat(doc["window"]["from"]),
        dt.datetime.fromisoformat(doc["window"]["to"]),
    )


def check_reports(
    t: Table,
    window: list[str],
    env: dict[str, str | None],
    as_of: dt.datetime,
    error_min: int = 500,
    configured_error_min: int | None = None,
) -> None:
    """`report top` and `report endpoint` for every source agree with the oracle (raw with
    the configured error threshold, view and auto with the rollup's own)."""
    for source in ("raw", "view", "auto"):
        doc = t.json("report", "top", "--source", source, *window, env=env)
        lo, hi = window_of(doc)
        assert lo.astimezone(NY).time() == dt.time(0), lo  # local midnight
        until = as_of if source == "view" else None
        threshold = configured_error_min or error_min if source == "raw" else error_min
        per_endpoint, per_day = expected(t.rows, lo, hi, until, threshold)
        got = {r["endpoint"]: r for r in doc["rows"]}
        assert set(got) == set(per_endpoint), (source, env)
        for name, e in per_endpoint.items():
            assert same(got[name], e), (source, env, name, got[name], e)
        for name in ("/dst", "/d%_"):
            if name not in per_endpoint:
                continue
            doc = t.json("report", "endpoint", name, "--source", source, *window, env=env)
            # every New York day of the window, in order, a day without requests with 0
            first = lo.astimezone(NY).date()
            last = (hi - dt.timedelta(microseconds=1)).astimezone(NY).date()
            every = [first + dt.timedelta(days=i) for i in range((last - first).days + 1)]
            assert [r["day"] for r in doc["rows"]] == [d.isoformat() for d in every], source
            for r in doc["rows"]:
                e = per_day.get((name, dt.date.fromisoformat(r["day"])), Agg())
                assert same(r, e), (source, env, name, r, e)
            if name == "/dst" and len(every) > 3:  # only around 2026-11-01: quiet days shown
                assert sum(r["requests"] == 0 for r in doc["rows"]) >= len(every) - 3
            assert doc["totals"]["requests"] == per_endpoint[name].requests


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
@pytest.mark.parametrize("naive_zone", [None, "UTC", "America/Chicago"])
def test_reports_equal_the_oracle_in_every_session_zone(
    naive_zone: str | None,
    strategy: str,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    t = make_table(dsn, conn, tmp_path, naive_zone=naive_zone, strategy=strategy)
    rng = random.Random(12)
    t.insert(history(rng, t.now(), 3000))
    r = t.cli("view", "build", env={"PGTZ": "America/Los_Angeles"})
    assert r.code == 0, r.stderr
    as_of = t.as_of()
    # written since the refresh (dated after its as-of), and rows from the future
    t.insert(fresh(rng, as_of, t.now(), 40))
    future = t.now() + dt.timedelta(days=365)
    t.insert([("/a", future, 1.0, 200), ("/b", t.now() + dt.timedelta(minutes=3), 1.0, 200)])
    for env in SESSION_ZONES:
        check_reports(t, ["--days", "30"], env, as_of)
        check_reports(t, ["--days", "1"], env, as_of)
    # a closed window across the DST change: --until is inclusive
    check_reports(t, ["--since", "2026-10-31", "--until", "2026-11-01"], SESSION_ZONES[2], as_of)
    doc = t.json("report", "top", "--since", "2026-10-31", "--until", "2026-11-01")
    lo, hi = window_of(doc)
    assert (hi - lo) == dt.timedelta(hours=49)  # Nov 1 has 25 hours in New York
    # the footer: the future rows, and the window's instants
    doc = t.json("report", "top")
    assert doc["future_rows"]["count"] == 2
    assert dt.datetime.fromisoformat(doc["future_rows"]["latest"]) == t.read_back(t.stored(future))
    text = t.cli("report", "top").stdout
    assert "2 rows are dated in the future, up to" in text
    assert f"{future.astimezone(NY):%Y-%m-%d %H:%M}" in text
    # after a refresh the rollup holds every row up to now, and verify agrees
    assert t.cli("view", "refresh", env={"PGTZ": "UTC"}).code == 0
    as_of = t.as_of()
    check_reports(t, ["--days", "30"], SESSION_ZONES[0], as_of)
    verify = t.json("view", "verify", "--days", "40", env={"PGTZ": "Pacific/Chatham"})
    assert verify["ok"] and verify["pending_rows"] == 0


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_a_future_row_does_not_hide_fresh_rows(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    t = make_table(dsn, conn, tmp_path, naive_zone="UTC", strategy=strategy)
    t.insert(history(random.Random(2), t.now(), 1000))
    year = t.now() + dt.timedelta(days=365)
    t.insert([("/a", year, 1.0, 200)])
    assert t.cli("view", "build").code == 0
    now = t.now()
    t.insert(
        [
            ("/a", now - dt.timedelta(milliseconds=i), 5.0, 503 if i % 2 else 200)
            for i in range(5000)
        ]
    )
    # rows a few minutes ahead (clock skew) are in no window either
    t.insert([("/a", t.now() + dt.timedelta(minutes=4), 1.0, 200)])
    raw = t.json("report", "top", "--days", "1", "--source", "raw")
    auto = t.json("report", "top", "--days", "1")
    view = t.json("report", "top", "--days", "1", "--source", "view")
    # the same rows, figures equal up to the order a float sum was taken in
    assert [r["endpoint"] for r in auto["rows"]] == [r["endpoint"] for r in raw["rows"]]
    assert all(same_figures(a, r) for a, r in zip(auto["rows"], raw["rows"], strict=True))
    lo, hi = window_of(auto)
    per_endpoint, _ = expected(t.rows, lo, hi)
    assert [r["requests"] for r in auto["rows"] if r["endpoint"] == "/a"] == [
        per_endpoint["/a"].requests
    ]
    assert auto["rows_newer_than_watermark"] >= 5000
    assert auto["future_rows"]["count"] == 2
    view_a = next(r for r in view["rows"] if r["endpoint"] == "/a")
    assert view_a["requests"] == per_endpoint["/a"].requests - 5000
    assert dt.datetime.fromisoformat(view["watermark"]) <= now  # the as-of, not the future row


def test_naive_bounds_use_the_index(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Bounds are converted on the value's side: the window and the future rows are index
    ranges of a naive column, never a scan of every row."""
    t = make_table(dsn, conn, tmp_path, naive_zone="America/Chicago")
    conn.execute(
        'INSERT INTO "Api"."Requests" SELECT \'/x\', '
        "(now() AT TIME ZONE 'America/Chicago') - g * interval '1 second', 1, 200 "
        "FROM generate_series(1, 20000) g"
    )
    conn.execute('ANALYZE "Api"."Requests"')
    from epstats_cli import config, source
    from epstats_cli.db import connect

    cfg = config.load(t.cfg)
    s = connect(cfg, dsn)
    try:
        basis = source.Basis.of(cfg, source.check_columns(s))
        query = s.statement(
            "source/future_rows",
            table=("Api", "Requests"),
            timestamp="ts",
            instant=source.instant(s, basis),
            now=source.bound(s, basis, source.NOW),
        )
        from psycopg import sql

        plan = "\n".join(r[0] for r in s.conn.execute(sql.SQL("EXPLAIN ") + query).fetchall())
        assert "Index" in plan and "Seq Scan" not in plan, plan
        assert source.future_rows(s) == (0, None)
    finally:
        s.conn.close()


def _auto_requests(t: Table, endpoint: str = "/w") -> int:
    doc = t.json("report", "top", "--days", "2")
    return sum(r["requests"] for r in doc["rows"] if r["endpoint"] == endpoint)


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
@pytest.mark.parametrize("naive_zone", [None, "America/Chicago"])
def test_a_writer_open_across_a_refresh_counts_once_it_commits(
    naive_zone: str | None,
    strategy: str,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    t = make_table(dsn, conn, tmp_path, naive_zone=naive_zone, strategy=strategy)
    t.insert(history(random.Random(3), t.now(), 500))
    assert t.cli("view", "build").code == 0
    ts = "now()" if naive_zone is None else f"now() AT TIME ZONE '{naive_zone}'"
    insert = f'INSERT INTO "Api"."Requests" VALUES (\'/w\', {ts}, 7, 200)'
    with psycopg.connect(dsn, autocommit=True) as writer:
        writer.execute("BEGIN")
        writer.execute(insert)  # dated at the writer's now(): before the refresh's as-of
        conn.execute(insert)  # committed before the refresh: aggregated by it
        r = t.cli("view", "refresh")  # never waits for the writer
        assert r.code == 0, r.stderr
        assert _auto_requests(t) == 1
        writer.execute("COMMIT")
    # counted the moment it commits, without another refresh, and never twice
    assert _auto_requests(t) == 2
    doc = t.json("report", "top", "--days", "2", "--source", "view")
    assert sum(r["requests"] for r in doc["rows"] if r["endpoint"] == "/w") == 1
    verify = t.json("view", "verify", "--days", "2")
    assert verify["ok"] and verify["pending_rows"] == 1
    assert t.cli("view", "refresh").code == 0
    assert _auto_requests(t) == 2
    doc = t.json("report", "top", "--days", "2", "--source", "view")
    assert sum(r["requests"] for r in doc["rows"] if r["endpoint"] == "/w") == 2


@pytest.mark.parametrize("isolation", ["READ COMMITTED", "REPEATABLE READ"])
@pytest.mark.parametrize("concurrently", [False, True])
def test_refresh_by_hand_records_what_it_saw(
    concurrently: bool,
    isolation: str,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    """Inside a DBA's REFRESH MATERIALIZED VIEW, now() is the transaction's start and
    pg_current_snapshot() the snapshot the query reads with: a writer that commits between
    the transaction's start and the REFRESH is counted once in either isolation level, and one
    still open during it is counted by auto when it commits."""
    t = make_table(dsn, conn, tmp_path, naive_zone=None)
    t.insert(history(random.Random(4), t.now(), 500))
    assert t.cli("view", "build").code == 0
    insert = 'INSERT INTO "Api"."Requests" VALUES (\'/w\', now(), 7, 200)'
    with (
        psycopg.connect(dsn, autocommit=True) as dba,
        psycopg.connect(dsn, autocommit=True) as early,
        psycopg.connect(dsn, autocommit=True) as late,
    ):
        early.execute("BEGIN")
        early.execute(insert)  # dated before the DBA's transaction starts
        late.execute("BEGIN")
        late.execute(insert)
        dba.execute(f"BEGIN ISOLATION LEVEL {isolation}")
        started = dba.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        early.execute("COMMIT")  # after the DBA's start, before the REFRESH
        how = "CONCURRENTLY " if concurrently else ""
        dba.execute(f"REFRESH MATERIALIZED VIEW {how}{VIEW}")
        dba.execute("COMMIT")
        assert t.as_of() == started
        assert _auto_requests(t) == 1  # early's row: in the rollup or added, never both
        late.execute("COMMIT")
    assert _auto_requests(t) == 2
    verify = t.json("view", "verify", "--days", "2")
    assert verify["ok"], verify["differences"]


def test_a_subtransaction_open_across_a_refresh_waits_for_the_next_one(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The documented limitation: pg_current_snapshot() lists no subtransactions, so a row
    inserted under a SAVEPOINT of a transaction open during the refresh looks seen by it. It
    is counted from the next refresh on, and never twice."""
    t = make_table(dsn, conn, tmp_path, naive_zone=None)
    t.insert(history(random.Random(5), t.now(), 200))
    assert t.cli("view", "build").code == 0
    with psycopg.connect(dsn, autocommit=True) as writer:
        writer.execute("BEGIN")
        writer.execute('INSERT INTO "Api"."Requests" VALUES (\'/w\', now(), 7, 200)')
        writer.execute("SAVEPOINT s")
        writer.execute('INSERT INTO "Api"."Requests" VALUES (\'/w\', now(), 7, 200)')
        conn.execute('INSERT INTO "Api"."Requests" VALUES (\'/v\', now(), 7, 200)')  # xmax on
        assert t.cli("view", "refresh").code == 0
        writer.execute("COMMIT")
    assert _auto_requests(t) == 1  # the top-level row; the subtransaction's waits
    assert t.cli("view", "refresh").code == 0
    assert _auto_requests(t) == 2


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_a_changed_configuration_is_tracked(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    t = make_table(dsn, conn, tmp_path, naive_zone=None, strategy=strategy)
    t.insert(history(random.Random(6), t.now(), 2000))
    assert t.cli("view", "build").code == 0
    as_of = t.as_of()
    t.insert(fresh(random.Random(7), as_of, t.now(), 30))
    text = (
        Path(t.cfg)
        .read_text()
        .replace(f"timezone: {TZ}\n", f"timezone: {TZ}\n  error_status_min: 400\n", 1)
    )
    Path(t.cfg).write_text(text)
    # reports keep the rollup's own threshold (500) for the rollup and its raw part alike
    check_reports(t, ["--days", "30"], SESSION_ZONES[1], as_of, 500, configured_error_min=400)
    doc = t.json("report", "top")
    assert doc["rollup_parameters"]["error_status_min"] == 500
    assert "error_status_min 500 (configured 400)" in t.cli("report", "top").stdout
    raw = t.json("report", "top", "--source", "raw")
    assert raw["rollup_parameters"] is None
    lo, hi = window_of(raw)
    per_endpoint, _ = expected(t.rows, lo, hi, error_min=400)
    assert all(same(r, per_endpoint[r["endpoint"]]) for r in raw["rows"])
    # view status shows it; refresh and verify refuse with exit 3, naming the key
    status = t.json("view", "status")
    assert status["parameter_mismatch"] == [
        'source.error_status_min: "Api".endpoint_daily_stats was built with error_status_min '
        "500, the configuration says 400: run `epstats view build --replace`"
    ]
    for command in (("view", "refresh"), ("view", "verify")):
        r = t.cli(*command)
        assert r.code == 3, r.stderr
        assert "built with error_status_min 500, the configuration says 400" in r.stderr
        assert "epstats view build --replace" in r.stderr and "Traceback" not in r.stderr
    assert t.cli("view", "build").code == 1  # exists, built otherwise: --replace
    assert t.cli("view", "build", "--replace").code == 0
    assert t.json("view", "status")["parameter_mismatch"] == []
    assert t.cli("view", "refresh").code == 0
    check_reports(t, ["--days", "30"], SESSION_ZONES[0], t.as_of(), error_min=400)


def test_a_rollup_of_an_earlier_epstats_must_be_rebuilt(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    t = make_table(dsn, conn, tmp_path, naive_zone=None)
    t.insert(history(random.Random(8), t.now(), 300))
    assert t.cli("view", "build").code == 0
    # as an earlier epstats left it: its mark in the comment, none in epstats.rollup_state
    conn.execute(
        f"COMMENT ON MATERIALIZED VIEW {VIEW} IS "
        f"'epstats rollup: strategy=materialized timezone={TZ} version=1'"
    )
    conn.execute("UPDATE epstats.rollup_state SET relation_oid = NULL, parameters = NULL")
    status = t.json("view", "status")
    assert status["built_by_epstats"] and status["parameters"] is None
    assert "recorded no parameters" in status["parameter_mismatch"][0]
    r = t.cli("view", "refresh")
    assert r.code == 3 and "recorded no parameters" in r.stderr
    assert "epstats view build --replace" in r.stderr
    assert t.cli("view", "build", "--replace").code == 0
    assert t.cli("view", "refresh").code == 0


@pytest.mark.parametrize(
    ("column", "ddl", "shown", "accepted"),
    [
        ("status", "status text", "text", "an integer type"),
        ("responseTime", '"responseTime" interval', "interval", "an integer, numeric or floating"),
        ("ts", "ts date", "date", "timestamp with time zone or timestamp without time zone"),
        ("endpoint", "endpoint integer", "integer", "a text type"),
    ],
)
def test_a_column_of_the_wrong_type_is_named(
    column: str,
    ddl: str,
    shown: str,
    accepted: str,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> None:
    t = make_table(dsn, conn, tmp_path, naive_zone=None)
    name, _type = ddl.split(" ", 1)
    conn.execute(f'ALTER TABLE "Api"."Requests" DROP COLUMN {name}')
    conn.execute(f'ALTER TABLE "Api"."Requests" ADD COLUMN {ddl}')
    for command in (
        ("report", "top"),
        ("report", "top", "--source", "raw"),
        ("report", "endpoint", "/a"),
        ("view", "build"),
        ("view", "refresh"),
        ("view", "verify"),
    ):
        r = t.cli(*command)
        assert r.code == 3, (command, r.stderr)
        assert f'column \'{column}\' of "Api"."Requests" is {shown}; expected {accepted}' in (
            r.stderr
        ), r.stderr
        assert r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_every_accepted_type_reads(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    conn.execute("CREATE DOMAIN code AS integer CHECK (VALUE BETWEEN 100 AND 599)")
    conn.execute('CREATE SCHEMA "Api"')
    conn.execute(
        'CREATE TABLE "Api"."Requests" (endpoint name, ts timestamptz, "responseTime" real, '
        "status code)"
    )
    conn.execute(
        "INSERT INTO \"Api\".\"Requests\" VALUES ('/n', now() - interval '1 minute', 2.5, 503)"
    )
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        'source: {table: \'"Api"."Requests"\', columns: {timestamp: ts, '
        "response_time: responseTime}}\n"
    )
    t = Table(conn, dsn, str(cfg), None, [])
    assert t.cli("init").code == 0  # epstats.rollup_state records the rollup's parameters
    assert t.cli("view", "build").code == 0
    for source in ("raw", "view", "auto"):
        rows = t.json("report", "top", "--source", source)["rows"]
        assert [(r["endpoint"], r["requests"], r["errors"], r["max_ms"]) for r in rows] == [
            ("/n", 1, 1, 2.5)
        ]


@pytest.mark.parametrize(
    ("snapshot", "xmin", "full"),
    [
        ("1000:1005:1000", 1003, 1003),  # the first epoch
        ("1000:1005:1000", 1010, 1010),  # after xmax
        ("4294967290:4294967300:", 4294967295, 4294967295),  # the old epoch, before xmax
        ("4294967290:4294967300:", 2, 4294967298),  # the new epoch, before xmax
        ("4294967290:4294967300:", 10, 4294967306),  # the new epoch, after xmax
        ("8589934590:8589934600:", 4294967294, 8589934590),  # epoch 1 seen from epoch 2
    ],
)
def test_xmin_as_xid8_across_epochs(
    snapshot: str, xmin: int, full: int, conn: psycopg.Connection[Any]
) -> None:
    from psycopg import sql

    from epstats_cli import queries

    fragment = queries.get("fragments/xmin_xid8")
    query = sql.SQL("SELECT {}::text FROM (SELECT %(xmin)s::text::xid AS xmin) AS row").format(
        fragment
    )
    got = conn.execute(query, {"snapshot": snapshot, "xmin": xmin}).fetchone()
    assert got is not None and int(got[0]) == full
