"""What endpoint normalization (source.endpoint_ids: auto) costs a rollup build and a refresh.

Usage: python -m benchmarks.normalize [--rows 10000000] [--days 30] [--ids 1000000]
       [--id-kind decimal|uuid] [--repeat 3] [--explain] [--version 18 | --dsn DSN]

A table like the issue's (issue 18): `rows` rows over `days` days in time order, half of them
on `/users/<id>` with `ids` possible ids, the other half on 50 fixed routes; the timestamp
index; VACUUM ANALYZE. An id is a decimal number, or (--id-kind uuid) a UUID, which `auto`
normalizes by its long form (segment by segment) where a decimal number takes one short
regular expression. Three rollups are built as the incremental strategy builds one (one
INSERT ... SELECT of the aggregate by endpoint and day, serial like every INSERT):
- plain: endpoints as stored (the cost without normalization);
- per-row: `epstats_cli.endpoints.expression` on every row;
- map: `endpoints.fill_lock` and `endpoints.fill` (each distinct raw endpoint that needs the
  long form normalized once into epstats.endpoint_map) and `endpoints.analyze_map`, then the
  aggregate through `endpoints.joined` after `endpoints.planner_settings`; and again with the
  map already filled (a rebuild).
Then one new day of rows is added (ids drawn from the same ones, so most are mapped already)
and each rollup refreshed as `view refresh` does for lookback 2d: delete the days from the
first day to recompute, insert them again, in one transaction (map: fill from those rows
first). Median of `repeat`; the target (issue 18): map build and refresh under 2x plain.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

import psycopg
from psycopg import sql

from benchmarks.common import epstats, machine, median, server, timed

AGGREGATE = """
SELECT {endpoint} AS endpoint, {day} AS day,
       count(*)::bigint AS request_count,
       avg(response_time::double precision) AS avg_response_time,
       max(response_time)::double precision AS max_response_time,
       min(response_time)::double precision AS min_response_time,
       (count(*) FILTER (WHERE status >= 500))::bigint AS error_count,
       sum(response_time::double precision) AS total_response_time,
       count(response_time)::bigint AS response_count,
       max(timestamp) AS max_timestamp
FROM requests {join}
WHERE requests.endpoint IS NOT NULL AND timestamp <= now() AND {since}
GROUP BY 1, 2
"""

LOAD = """
INSERT INTO requests (endpoint, timestamp, response_time, status)
SELECT CASE WHEN g %% 2 = 0
            THEN '/users/' || {id}
            ELSE '/api/v1/route' || (g %% 50)::text END,
       %(start)s::timestamptz + (%(span)s::interval * (g::float8 / %(rows)s)),
       (hashint8(g * 7 + %(seed)s) & 1023)::float8 / 4,
       CASE WHEN (hashint8(g * 13 + %(seed)s) & 63) = 0 THEN 500 ELSE 200 END
FROM generate_series(1, %(rows)s) AS g
"""
# The id of a /users/<id> row: one of %(ids)s, as a decimal number or as a UUID.
IDS = {
    "decimal": "(1 + (hashint8(g + %(seed)s) & 2147483647) %% %(ids)s)::text",
    "uuid": "md5((1 + (hashint8(g + %(seed)s) & 2147483647) %% %(ids)s)::text)::uuid::text",
}


EXPLAIN = False  # --explain: print each build's plan
WORK_MEM: str | None = None  # --work-mem: every session's work_mem (default: the server's)


def _session(dsn: str, ids: str) -> Any:
    from epstats_cli.config import Config, SourceConfig
    from epstats_cli.db import connect

    session = connect(Config(source=SourceConfig(endpoint_ids=ids)), dsn)
    if WORK_MEM:
        session.conn.execute(sql.SQL("SET work_mem = {}").format(sql.Literal(WORK_MEM)))
    return session


def _day_and_basis(session: Any) -> tuple[sql.Composable, Any]:
    from epstats_cli import source

    basis = source.Basis.of(session.config, source.check_columns(session))
    return source.day(session, basis), basis


def _aggregate(session: Any, variant: str, since: sql.Composable) -> sql.Composed:
    from epstats_cli import endpoints

    norm = endpoints.Normalization.of(session.config)
    day, _basis = _day_and_basis(session)
    raw = sql.SQL("requests.endpoint::text")
    endpoint: sql.Composable
    join: sql.Composable
    if variant == "plain":
        endpoint, join = raw, sql.SQL("")
    elif variant == "per-row":
        endpoint, join = endpoints.expression(session, norm, raw), sql.SQL("")
    else:
        j = endpoints.joined(session, norm, raw)
        endpoint, join = j.endpoint, j.join
    return sql.SQL(AGGREGATE).format(endpoint=endpoint, day=day, join=join, since=since)


def _fill(session: Any, since: sql.Composable) -> float:
    from epstats_cli import endpoints

    norm = endpoints.Normalization.of(session.config)
    lock, lock_params = endpoints.fill_lock(session, norm)
    query, params = endpoints.fill(session, norm, since)

    def run() -> None:
        with session.conn.transaction():
            session.conn.execute(lock, lock_params)
            session.conn.execute(query, params)

    return timed(run)


def _since(first_day: dt.date | None) -> sql.Composable:
    if first_day is None:
        return sql.SQL("true")
    return sql.SQL("timestamp >= {}::timestamptz").format(sql.Literal(first_day.isoformat()))


def build(session: Any, variant: str, table: str) -> float:
    """Create the rollup table anew and fill it (the build); seconds."""
    conn = session.conn
    conn.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(table)))
    query = _aggregate(session, variant, sql.SQL("true"))
    conn.execute(sql.SQL("CREATE TABLE {} AS {} WITH NO DATA").format(sql.Identifier(table), query))
    insert = sql.SQL("INSERT INTO {} {}").format(sql.Identifier(table), query)
    return timed(lambda: _run(session, variant, [insert]))


def _run(session: Any, variant: str, statements: list[sql.Composed]) -> None:
    """The statements in one transaction, after the planner settings for a join on the map."""
    from epstats_cli import endpoints

    conn = session.conn
    with conn.transaction():
        if variant == "map":
            for setting in endpoints.planner_settings(session):
                conn.execute(setting)
        if EXPLAIN:
            plan = conn.execute(sql.SQL("EXPLAIN ") + statements[-1]).fetchall()
            print(f"-- {variant}:\n" + "\n".join(r[0][:120] for r in plan), flush=True)
        for statement in statements:
            conn.execute(statement)


def refresh(session: Any, variant: str, table: str, first_day: dt.date) -> float:
    """Delete the days from first_day on and insert them again, in one transaction."""
    since = _since(first_day)
    query = _aggregate(session, variant, since)
    delete = sql.SQL("DELETE FROM {} WHERE day >= {}").format(
        sql.Identifier(table), sql.Literal(first_day)
    )
    insert = sql.SQL("INSERT INTO {} {}").format(sql.Identifier(table), query)

    return timed(lambda: _run(session, variant, [delete, insert]))


def scenario(dsn: str, rows: int, days: int, ids: int, repeat: int, id_kind: str) -> dict[str, Any]:
    from epstats_cli import endpoints

    epstats("--dsn", dsn, "-q", "init", "--with-requests-table")
    plain = _session(dsn, "off")
    auto = _session(dsn, "auto")
    conn = plain.conn
    now = conn.execute("SELECT date_trunc('day', now())").fetchone()[0]
    start = now - dt.timedelta(days=days)
    span = dt.timedelta(days=days - 1)
    print(f"loading {rows:,} rows over {days} days ...", flush=True)
    load_sql = LOAD.replace("{id}", IDS[id_kind])
    load = timed(
        lambda: conn.execute(
            load_sql, {"seed": 1, "ids": ids, "start": start, "span": span, "rows": rows}
        )
    )
    conn.execute("CREATE INDEX idx_requests_timestamp ON requests (timestamp)")
    conn.execute("VACUUM ANALYZE requests")
    distinct = conn.execute("SELECT count(DISTINCT endpoint) FROM requests").fetchone()[0]
    print(f"loaded in {load:.1f}s: {distinct:,} distinct endpoints", flush=True)

    out: dict[str, Any] = {"rows": rows, "days": days, "distinct": distinct, "ids": id_kind}
    b: dict[str, list[float]] = {k: [] for k in ("plain", "per-row", "fill", "join", "warm")}
    for i in range(repeat):
        auto.conn.execute("TRUNCATE epstats.endpoint_map")
        b["plain"].append(build(plain, "plain", "r_plain"))
        b["fill"].append(
            _fill(auto, sql.SQL("timestamp <= now()"))
            + timed(lambda: auto.conn.execute(endpoints.analyze_map(auto)))
        )
        b["join"].append(build(auto, "map", "r_map"))
        b["warm"].append(_fill(auto, sql.SQL("timestamp <= now()")) + build(auto, "map", "r_map"))
        b["per-row"].append(build(auto, "per-row", "r_row"))
        print(f"build {i + 1}/{repeat}: " + ", ".join(f"{k} {v[-1]:.2f}s" for k, v in b.items()))
    out["build"] = {k: median(v) for k, v in b.items()}
    out["rollup_rows"] = {
        t: conn.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(t))).fetchone()[0]
        for t in ("r_plain", "r_map", "r_row")
    }
    out["map_rows"] = conn.execute("SELECT count(*) FROM epstats.endpoint_map").fetchone()[0]

    # one new day, then refreshes over the last 2 days (lookback 2d)
    new_rows = rows // days
    conn.execute(
        load_sql,
        {"seed": 2, "ids": ids, "start": now, "span": dt.timedelta(hours=23), "rows": new_rows},
    )
    conn.execute("ANALYZE requests")
    first_day = (now - dt.timedelta(days=1)).date()
    since = _since(first_day)
    r: dict[str, list[float]] = {k: [] for k in ("plain", "per-row", "fill", "join")}
    for i in range(repeat):
        # the map as the build left it: the new day's unseen ids are mapped by each refresh's fill
        auto.conn.execute(
            "DELETE FROM epstats.endpoint_map AS m WHERE NOT EXISTS (SELECT FROM requests AS q "
            "WHERE q.endpoint = m.raw AND q.timestamp < %s)",
            (now,),
        )
        r["plain"].append(refresh(plain, "plain", "r_plain", first_day))
        r["fill"].append(_fill(auto, since))
        r["join"].append(refresh(auto, "map", "r_map", first_day))
        r["per-row"].append(refresh(auto, "per-row", "r_row", first_day))
        print(f"refresh {i + 1}/{repeat}: " + ", ".join(f"{k} {v[-1]:.3f}s" for k, v in r.items()))
    out["refresh"] = {k: median(v) for k, v in r.items()}
    out["refresh_rows"] = new_rows
    plain.conn.close()
    auto.conn.close()
    return out


def report(res: dict[str, Any]) -> None:
    b, r = res["build"], res["refresh"]
    print()
    print(
        f"{res['rows']:,} rows over {res['days']} days, {res['ids']} ids, "
        f"{res['distinct']:,} distinct endpoints; "
        f"rollup rows: plain {res['rollup_rows']['r_plain']:,}, "
        f"normalized {res['rollup_rows']['r_map']:,}; map {res['map_rows']:,} paths"
    )
    print(f"{'':34} {'build s':>10} {'x plain':>8} {'refresh s':>10} {'x plain':>8}")

    def line(name: str, build_s: float, refresh_s: float | None) -> None:
        rs = f"{refresh_s:10.3f} {refresh_s / r['plain']:7.2f}x" if refresh_s is not None else ""
        print(f"{name:34} {build_s:10.2f} {build_s / b['plain']:7.2f}x {rs}")

    line("plain (no normalization)", b["plain"], r["plain"])
    line("per-row regexp_replace", b["per-row"], r["per-row"])
    line("map: fill", b["fill"], r["fill"])
    line("map: aggregate through the join", b["join"], r["join"])
    map_build, map_refresh = b["fill"] + b["join"], r["fill"] + r["join"]
    line("map: fill + join (total)", map_build, map_refresh)
    line("map: rebuild, map already filled", b["warm"], None)
    for what, ratio in (("build", map_build / b["plain"]), ("refresh", map_refresh / r["plain"])):
        verdict = "PASS" if ratio < 2 else "FAIL"
        print(f"map {what}: {ratio:.2f}x plain (target < 2x): {verdict}")
    print(json.dumps(res, default=str))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--ids", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--id-kind", choices=sorted(IDS), default="decimal")
    parser.add_argument("--explain", action="store_true", help="print each build's plan")
    parser.add_argument("--work-mem", help="work_mem for every variant, e.g. 64MB")
    parser.add_argument("--version", type=int, default=18, help="throwaway server's version")
    parser.add_argument("--dsn", help="an existing server (a database bench_normalize is made)")
    args = parser.parse_args()
    global EXPLAIN, WORK_MEM
    EXPLAIN, WORK_MEM = args.explain, args.work_mem
    print(f"machine: {machine()}; work_mem: {args.work_mem or 'the server default'}")
    if args.dsn:
        ctx: Any = _given(args.dsn)
    else:
        ctx = server(args.version)
    with ctx as admin_dsn:
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            print(admin.execute("SELECT version()").fetchone()[0])  # type: ignore[index]
            admin.execute("DROP DATABASE IF EXISTS bench_normalize")
            admin.execute("CREATE DATABASE bench_normalize")
        params = psycopg.conninfo.conninfo_to_dict(admin_dsn)
        params["dbname"] = "bench_normalize"
        dsn = psycopg.conninfo.make_conninfo(**params)  # type: ignore[arg-type]
        res = scenario(dsn, args.rows, args.days, args.ids, args.repeat, args.id_kind)
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute("DROP DATABASE IF EXISTS bench_normalize")
    report(res)


def _given(dsn: str) -> Any:
    from contextlib import nullcontext

    return nullcontext(dsn)


if __name__ == "__main__":
    main()
