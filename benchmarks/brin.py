"""The timestamp index chosen by measurement (issue 17): its size against a btree's, what the
measurement costs, the newest/oldest-timestamp queries of the tool without a btree on the
timestamp, and the INSERT throughput of a steady writer with the guide's three btree indices
against epstats's recommended set.

Usage: python -m benchmarks.brin [--rows 10000000] [--days 60] [--inserts 20000] [--repeat 5]

Setup: `rows` requests over `days` days up to now (`epstats generate`, whose rows are not in
time order: the measurement is taken and timed on it as it is), then the table rewritten in
time order (CLUSTER on a btree of the timestamp, which is weighed and dropped: what an API that
appends its log writes), measured again, and `indexes apply` (the chosen timestamp index and
the (endpoint, timestamp) btree). A copy of the table carries the guide's three btrees
(timestamp, endpoint, (endpoint, timestamp)). With $EPSTATS_BENCH_DSN a database already
loaded is reused.

Then: the tool's newest/oldest-timestamp reads (ingest_stalled's newest row, future_rows,
verify's oldest day), each timed as the tool runs it (median of `repeat`) with only the BRIN
and the composite btree, against the unbounded max()/min() they replace; and a steady writer
(autocommit, dated now; one row per INSERT as the API writes, `inserts` rows, then 1,000 rows
per INSERT, 10x as many rows: the indices' own cost without the round trips) on each table,
alternately (each first in every other round), `repeat` rounds: rows per second, median.
Last, the measurement again: the writers' rows went partly into the free space VACUUM had
recorded in old pages, which is what `indexes status` warns of.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable
from typing import Any

import psycopg

from benchmarks.common import arguments, epstats, load, machine, median, server
from epstats_cli import index_method, source
from epstats_cli.catalog import source_oid
from epstats_cli.config import Config
from epstats_cli.db import connect
from epstats_cli.health import server_facts

GUIDE = "requests_guide"


def _size(conn: psycopg.Connection[Any], name: str) -> int:
    row = conn.execute("SELECT pg_relation_size(%s::regclass)", (name,)).fetchone()
    assert row is not None
    return int(row[0])


def _mb(n: float) -> str:
    return f"{n / 1048576:.1f} MB" if n >= 1048576 else f"{n / 1024:.0f} kB"


def _ts_method(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT pg_get_indexdef('idx_requests_timestamp'::regclass)").fetchone()
    assert row is not None
    return str(row[0])


def _writer(dsn: str, table: str, rows: int, batch: int = 1) -> float:
    """Rows per second of one connection inserting `batch` rows per statement, autocommit."""
    with psycopg.connect(dsn, autocommit=True) as c:
        q = (
            f'INSERT INTO {table} (endpoint, "timestamp", response_time, status) '
            "SELECT '/api/v1/e' || ((%s + g) %% 97), now(), g %% 500, 200 "
            "FROM generate_series(1, %s) g"
        )
        start = time.perf_counter()
        for i in range(rows // batch):
            c.execute(q, (i, batch))
        return rows / (time.perf_counter() - start)


def _measure(dsn: str) -> dict[str, Any]:
    """The measurement alone, timed in process: what it chose and read."""
    session = connect(Config(), dsn)
    try:
        oid = source_oid(session)
        began = time.perf_counter()
        choice = index_method.measure(session, oid, "timestamp")
        ms = (time.perf_counter() - began) * 1000
    finally:
        session.conn.close()
    assert choice is not None
    return {"ms": round(ms), "choice": choice.method, "reason": choice.reason} | dict(
        choice.measurement
    )


def _timed(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up
    runs = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - began)
    return median(runs) * 1000


def main() -> None:
    parser = arguments(__doc__, repeat=5)
    parser.add_argument("--inserts", type=int, default=20_000)
    args = parser.parse_args()
    with server(args.version) as dsn, psycopg.connect(dsn, autocommit=True) as conn:
        base = ["--dsn", dsn]
        loaded = conn.execute(
            "SELECT to_regclass('requests') IS NOT NULL AND to_regclass(%s) IS NOT NULL", (GUIDE,)
        ).fetchone()
        setup = time.perf_counter()
        scattered: dict[str, Any] = {}
        btree_size = 0
        if not (loaded and loaded[0]):
            now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
            load(base, args.rows, args.days, now.strftime("%Y-%m-%d %H:%M:%S%z"))
            conn.execute("VACUUM ANALYZE requests")
            scattered = _measure(dsn)
            conn.execute('CREATE INDEX bench_ts_btree ON requests ("timestamp")')
            btree_size = _size(conn, "bench_ts_btree")
            conn.execute("CLUSTER requests USING bench_ts_btree")
            conn.execute("DROP INDEX bench_ts_btree")
            conn.execute("VACUUM ANALYZE requests")
        setup = time.perf_counter() - setup
        ordered = _measure(dsn)
        rows = conn.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'requests'")
        count = rows.fetchone()[0]  # type: ignore[index]

        began = time.perf_counter()
        plan = json.loads(epstats(*base, "--format", "json", "indexes", "plan").stdout)
        plan_s = time.perf_counter() - began
        rec = {r["name"]: r for r in plan["recommended"]}["idx_requests_timestamp"]
        measurement = rec.get("measurement", {})
        epstats(*base, "-q", "indexes", "apply")
        chosen = _ts_method(conn)
        chosen_size = _size(conn, "idx_requests_timestamp")
        table_size = _size(conn, "requests")

        if conn.execute("SELECT to_regclass(%s)", (GUIDE,)).fetchone() == (None,):
            conn.execute(f"CREATE TABLE {GUIDE} (LIKE requests INCLUDING DEFAULTS)")
            conn.execute(f"INSERT INTO {GUIDE} SELECT * FROM requests")
            conn.execute(f'CREATE INDEX {GUIDE}_ts ON {GUIDE} ("timestamp")')
            conn.execute(f"CREATE INDEX {GUIDE}_ep ON {GUIDE} (endpoint)")
            conn.execute(f'CREATE INDEX {GUIDE}_ep_ts ON {GUIDE} (endpoint, "timestamp")')
            conn.execute(f"VACUUM ANALYZE {GUIDE}")
        version = conn.info.server_version

        # the tool's reads of the newest and oldest timestamps, as it runs them
        session = connect(Config(), dsn)
        basis = source.Basis.of(session.config, source.check_columns(session))
        reads = {
            "ingest_stalled: newest row (window 1h)": lambda: server_facts.newest_row(session),
            "future_rows": lambda: source.future_extent(session),
            "verify: oldest raw day": lambda: source.first_day(session, basis, dt.date.min),
            "unbounded max(timestamp) (not used)": lambda: conn.execute(
                'SELECT max("timestamp") FROM requests'
            ).fetchone(),
            "unbounded min(timestamp) (not used)": lambda: conn.execute(
                'SELECT min("timestamp") FROM requests'
            ).fetchone(),
        }
        read_ms = {name: _timed(fn, args.repeat) for name, fn in reads.items()}
        guide_read = _timed(
            lambda: conn.execute(f'SELECT max("timestamp") FROM {GUIDE}').fetchone(), args.repeat
        )
        session.conn.close()

        rates: dict[tuple[str, int], list[float]] = {}
        for batch in (1, 1000):
            _writer(dsn, "requests", 1000, batch)  # warm-up
            _writer(dsn, GUIDE, 1000, batch)
            pair = [("epstats", "requests"), ("guide", GUIDE)]
            for turn in range(args.repeat):  # each first in every other round
                for name, table in pair if turn % 2 else pair[::-1]:
                    rate = _writer(dsn, table, args.inserts * (batch // 100 or 1), batch)
                    rates.setdefault((name, batch), []).append(rate)
        after = _measure(dsn)
        indexes = {
            t: conn.execute(
                "SELECT string_agg(regexp_replace(pg_get_indexdef(i.indexrelid), '.* USING ', ''),"
                " '; ' ORDER BY c.relname) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass",
                (t,),
            ).fetchone()[0]  # type: ignore[index]
            for t in ("requests", GUIDE)
        }

    print(
        f"machine: {machine()}; PostgreSQL {version}; rows: {count:,} over {args.days} days "
        f"(table {_mb(table_size)}); setup {setup:.0f} s; median of {args.repeat}"
    )
    print(f"indexes plan (with the measurement): {plan_s * 1000:.0f} ms, whole process")
    if scattered:
        print(f"measured as generated (not in time order): {json.dumps(scattered)}")
    print(f"measured in time order: {json.dumps(ordered)}")
    print(f"plan's measurement: {json.dumps(measurement)}")
    print(f"chosen: {chosen}")
    if btree_size:
        print(
            f"timestamp index size: chosen {_mb(chosen_size)} vs btree {_mb(btree_size)} "
            f"({btree_size / max(chosen_size, 1):.0f}x smaller)"
        )
    print("\nnewest/oldest-timestamp reads, BRIN + (endpoint, timestamp) btree only:")
    for name, ms in read_ms.items():
        print(f"  {name:<42}{ms:>10.1f} ms")
    print(f"  {'max(timestamp), guide table (btree)':<42}{guide_read:>10.1f} ms")
    print(f"\nmeasured again after the writers: {json.dumps(after)}")
    print(f"\nguide's three btrees: {indexes[GUIDE]}")
    print(f"epstats's set: {indexes['requests']}")
    for batch in (1, 1000):
        g, e = median(rates[("guide", batch)]), median(rates[("epstats", batch)])
        rows = args.inserts * (batch // 100 or 1)
        what = "one row per INSERT (the API's writer)" if batch == 1 else f"{batch} rows per INSERT"
        print(f"\nsteady writer, {what}, {rows:,} rows a round:")
        print(f"  guide {g:,.0f} rows/s, epstats {e:,.0f} rows/s: epstats / guide {e / g:.2f}x")
        for name in ("guide", "epstats"):
            values = rates[(name, batch)]
            print(f"  {name} rounds: {', '.join(f'{v:,.0f}' for v in values)}")


if __name__ == "__main__":
    main()
