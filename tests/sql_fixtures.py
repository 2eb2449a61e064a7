"""Run every SQL file through a real server's parser and planner, against objects that exist.

A statement is tried in a few fixture worlds, each a set of objects its placeholders name:
the materialized rollup and an existing index; a rollup table (for the incremental strategy's
statements); names that do not exist yet (for CREATE). It passes when it runs cleanly in one
of them: SELECT and DML are EXPLAINed, DDL runs inside a rolled-back transaction, and a
statement PostgreSQL refuses inside a transaction block (CONCURRENTLY, VACUUM, CREATE
DATABASE) runs for real on the throwaway database, its objects dropped afterwards. No error
is accepted, so a misspelt table, column or type fails in every world and fails the test.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import latency, queries
from epstats_cli.db import Session
from epstats_cli.schema import source_identifiers

ROLLUP_TABLE = ("public", "sqltest_rollup")
FRESH_VIEW = ("public", "sqltest_fresh")
INDEX = "sqltest_index"
FRESH_INDEX = "sqltest_fresh_index"
A_VIEW = ("public", "sqltest_view")
STATISTICS = ("public", "sqltest_stats")
PARTED = ("public", "sqltest_parted")  # a partitioned table (retention detaches its partition)
PART = ("public", "sqltest_part")
DATABASE = "sqltest_db"

ROLLUP_DEFINITION = sql.SQL(
    "SELECT 'e'::text AS endpoint, current_date AS day, 1::bigint AS request_count, "
    "1.0::float8 AS avg_response_time, 1.0::float8 AS max_response_time, "
    "1.0::float8 AS min_response_time, 0::bigint AS error_count, "
    "1.0::float8 AS total_response_time, 1::bigint AS response_count, "
    "now() AS max_timestamp, 1::bigint AS status_2xx, 0::bigint AS status_3xx, "
    "0::bigint AS status_4xx, 0::bigint AS status_5xx, 0::bigint AS status_other, "
    "NULL::timestamptz AS as_of, NULL::text AS snapshot, "
    "'{1}'::integer[] AS latency_buckets, '{1}'::bigint[] AS latency_counts"
)


def identifiers(session: Session) -> dict[str, Any]:
    """A value for every placeholder any statement uses (the first world's objects)."""
    ids: dict[str, Any] = dict(source_identifiers(session))
    ids.update(
        view=("public", "endpoint_daily_stats"),
        index=INDEX,
        new_name="sqltest_new",
        database=DATABASE,
        column="sqltest_column",
        type=sql.SQL("integer"),
        kind=sql.SQL("MATERIALIZED VIEW"),
        comment=sql.Literal("sqltest"),
        method=sql.SQL("btree"),
        columns=sql.SQL("{}").format(sql.Identifier("endpoint")),
        tz=sql.Literal("UTC"),
        options=sql.SQL("SKIP_LOCKED, ANALYZE"),
        order=sql.SQL("requests DESC, endpoint"),
        error_min=sql.Literal(500),
        day=sql.SQL("current_date"),
        where=sql.SQL("true"),
        since=sql.SQL("true"),
        naive_tz=sql.Literal("UTC"),
        instant=sql.Identifier(source_identifiers(session)["timestamp"]),
        from_ts=sql.SQL("now()"),
        to_ts=sql.SQL("now()"),
        week_ago=sql.SQL("now()"),
        now=sql.SQL("now()"),
        unaggregated=sql.SQL("true"),
        aggregate=ROLLUP_DEFINITION,
        from_day=sql.Literal("2020-01-01"),
        midnight=sql.SQL("now()"),
        definition=ROLLUP_DEFINITION,
        relation=("public", "endpoint_daily_stats"),
        attribute=("public", "endpoint_daily_stats", "endpoint"),
        owner=sql.SQL("CURRENT_USER"),
        unique=sql.SQL(""),
        indexed=sql.SQL("btree (day)"),
        privileges=sql.SQL("SELECT"),
        grantee=sql.SQL("PUBLIC"),
        option=sql.SQL(""),
        views=sql.Identifier(*A_VIEW),
        with_options=sql.SQL(""),
        key=sql.SQL("'e'::text"),
        normalized=sql.SQL("'e'::text"),
        join=sql.SQL(""),
        sample=sql.SQL(""),
        wanted=sql.SQL("true"),
        # what a replacement carries over (keep.py, carry.py)
        settings=sql.SQL("fillfactor = 90"),
        column_settings=sql.SQL("n_distinct = 10"),
        tablespace="pg_default",
        field="endpoint",
        target=sql.Literal(100),
        storage=sql.SQL("MAIN"),
        compression=sql.SQL("pglz"),
        policy="sqltest_policy",
        permissive=sql.SQL("PERMISSIVE"),
        command=sql.SQL("SELECT"),
        roles=sql.SQL("PUBLIC"),
        using=sql.SQL(" USING (true)"),
        check=sql.SQL(""),
        constraint="sqltest_new_check",
        condition=sql.SQL("CHECK (true)"),
        state=sql.SQL("DISABLE"),
        switched=sql.SQL("TRIGGER USER"),
        member=sql.SQL("CONSTRAINT sqltest_check"),
        statistics=STATISTICS,
        identity=sql.SQL("FULL"),
        # the latency histograms (epstats_cli/latency.py)
        bucket=sql.Literal(1),
        value=sql.Literal(1.5),
        ln_gamma=sql.Literal(0.02),
        zero=sql.Literal(-(2**30)),
        negative=sql.Literal(-(2**30) - 2**29),
        below=sql.Literal(-(2**31)),
        beyond=sql.Literal(2**31 - 1),
        # view/verify's rollup
        stored=sql.Identifier("public", "endpoint_daily_stats"),
        # retention (epstats_cli/retention.py): its late rows merged into the rollup table
        before=sql.SQL("true"),
        late=sql.SQL("true"),
        rows=ROLLUP_DEFINITION,
        merge=sql.SQL("DELETE FROM {} WHERE false").format(sql.Identifier(*ROLLUP_TABLE)),
        old=("public", "endpoint_daily_stats"),
        # reports' percentiles read from the histograms (the fragment itself)
        quantiles=latency.quantiles_sql(session, 0.01),
        # a partitioned copy of the source (partition_worlds names them)
        new=("public", "sqltest_new"),
        parent=PARTED,
        partition=PART,
        captured=("public", "sqltest_captured"),
        function=("public", "sqltest_capture"),
        trigger="sqltest_trigger",
        default=("public", "requests"),
        sequence=("public", "sqltest_seq"),
        lower=sql.Literal("2020-01-01T00:00:00+00:00"),
        upper=sql.Literal("2020-01-02T00:00:00+00:00"),
        lower_value=sql.SQL("start::text"),
        upper_value=sql.SQL("start::text"),
        range=sql.SQL("true"),
        reloptions=sql.SQL(""),
        dropped=("public", "sqltest_gone"),
        # a partitioned index and a partition's index to attach to it (index_partitions.py)
        parent_index=("public", "sqltest_pidx"),
        partition_index=("public", "sqltest_cidx"),
    )
    return ids


@dataclass(frozen=True)
class World:
    """Objects to create first, and the placeholder values that name them."""

    name: str
    overrides: dict[str, Any] = field(default_factory=dict)
    setup: Sequence[sql.Composed] = ()


def worlds(session: Session) -> list[World]:
    """The fixture worlds, most common first. The rollup itself comes from `view build`."""
    src = source_identifiers(session)
    table = sql.Identifier(*src["table"])
    timestamp = sql.Identifier(src["timestamp"])
    rollup = sql.Identifier(*ROLLUP_TABLE)
    return [
        World(
            "the materialized rollup and an existing index",
            setup=[
                sql.SQL("CREATE INDEX {} ON {} ({})").format(
                    sql.Identifier(INDEX), table, timestamp
                )
            ],
        ),
        World(
            "a rollup table",
            {"view": ROLLUP_TABLE, "kind": sql.SQL("TABLE")},
            setup=[
                sql.SQL("CREATE TABLE {} AS {} WITH NO DATA").format(rollup, ROLLUP_DEFINITION),
                sql.SQL("CREATE UNIQUE INDEX {} ON {} (endpoint, day)").format(
                    sql.Identifier(INDEX), rollup
                ),
                # what a replacement carries over: a constraint, extended statistics
                sql.SQL("ALTER TABLE {} ADD CONSTRAINT sqltest_check CHECK (true)").format(rollup),
                sql.SQL("CREATE STATISTICS {} ON endpoint, day FROM {}").format(
                    sql.Identifier(*STATISTICS), rollup
                ),
            ],
        ),
        World("the materialized rollup and a new index name", {"index": FRESH_INDEX}),
        World(
            "a view of the rollup",
            {"view": A_VIEW},
            setup=[
                sql.SQL("CREATE VIEW {} AS SELECT * FROM endpoint_daily_stats").format(
                    sql.Identifier(*A_VIEW)
                )
            ],
        ),
        World("names that do not exist yet", {"view": FRESH_VIEW, "index": FRESH_INDEX}),
        World(
            "a partitioned table",
            setup=[
                sql.SQL("CREATE TABLE {} (t timestamptz) PARTITION BY RANGE (t)").format(
                    sql.Identifier(*PARTED)
                ),
                sql.SQL(
                    "CREATE TABLE {} PARTITION OF {} FOR VALUES FROM ('2020-01-01') TO "
                    "('2020-01-02')"
                ).format(sql.Identifier(*PART), sql.Identifier(*PARTED)),
            ],
        ),
        *partition_worlds(table),
    ]


LOOSE = ("public", "sqltest_loose")


def partition_worlds(table: sql.Identifier) -> list[World]:
    """A partitioned copy of the source beside it (partition.py, partition_convert.py,
    partition_ahead.py): with a table to attach, a capture table and its function, a
    sequence; statements that create partitions get fresh names."""
    ts = sql.Identifier("timestamp")
    setup = [
        sql.SQL("CREATE TABLE {} (LIKE {}) PARTITION BY RANGE ({})").format(
            sql.Identifier(*PARTED), table, ts
        ),
        sql.SQL("CREATE TABLE {} (LIKE {})").format(sql.Identifier(*LOOSE), table),
        sql.SQL("CREATE TABLE sqltest_captured (LIKE {}, epstats_captured_id bigserial)").format(
            table
        ),
        sql.SQL(
            "CREATE FUNCTION sqltest_capture() RETURNS trigger LANGUAGE plpgsql "
            "AS $$BEGIN RETURN NULL; END$$"
        ).format(),
        sql.SQL("CREATE SEQUENCE sqltest_seq").format(),
        sql.SQL("ALTER TABLE {} ADD CONSTRAINT sqltest_new_check CHECK (true)").format(table),
    ]
    common: dict[str, Any] = {
        "parent": PARTED,
        "captured": ("public", "sqltest_captured"),
        "function": ("public", "sqltest_capture"),
        "trigger": "sqltest_trigger",
        "default": ("public", "requests"),
        "sequence": ("public", "sqltest_seq"),
        "column": ("public", "requests", "endpoint"),
        "lower": sql.Literal("2020-01-01T00:00:00+00:00"),
        "upper": sql.Literal("2020-01-02T00:00:00+00:00"),
        "lower_value": sql.SQL("start::text"),
        "upper_value": sql.SQL("start::text"),
        "range": sql.SQL("true"),
        "reloptions": sql.SQL(" WITH (fillfactor = 90)"),
        "index": FRESH_INDEX,
    }
    indexed = [
        setup[0],
        sql.SQL("CREATE TABLE sqltest_pchild PARTITION OF {} DEFAULT").format(
            sql.Identifier(*PARTED)
        ),
        sql.SQL("CREATE INDEX sqltest_pidx ON ONLY {} (endpoint)").format(sql.Identifier(*PARTED)),
        sql.SQL("CREATE INDEX sqltest_cidx ON sqltest_pchild (endpoint)").format(),
    ]
    return [
        World("a partitioned index and a partition's index", dict(common), indexed),
        World(
            "a partitioned table and a table to attach",
            {**common, "new": PARTED, "partition": LOOSE},
            setup,
        ),
        World(
            "a partitioned table and fresh names",
            {**common, "new": ("public", "sqltest_new"), "partition": ("public", "sqltest_part")},
            setup,
        ),
    ]


def _cleanup(conn: psycopg.Connection[Any]) -> None:
    """Drop whatever a world or a statement run outside a transaction may have left."""
    for statement in (
        sql.SQL("DROP VIEW IF EXISTS {}").format(sql.Identifier(*A_VIEW)),
        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(INDEX)),
        sql.SQL("DROP INDEX IF EXISTS {}").format(sql.Identifier(FRESH_INDEX)),
        sql.SQL("DROP TABLE IF EXISTS {}").format(sql.Identifier(*ROLLUP_TABLE)),
        sql.SQL("DROP MATERIALIZED VIEW IF EXISTS {}").format(sql.Identifier(*FRESH_VIEW)),
        sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(DATABASE)),
        sql.SQL("DROP TABLE IF EXISTS {}, {}").format(
            sql.Identifier(*PARTED), sql.Identifier(*PART)
        ),
    ):
        conn.execute(statement)


def _run(
    conn: psycopg.Connection[Any],
    world: World,
    query: sql.Composed,
    params: dict[str, Any],
    explain: bool,
) -> None:
    """Run one statement in one world; raises whatever the server says."""
    try:
        with conn.transaction(force_rollback=True):
            for statement in world.setup:
                conn.execute(statement)
            conn.execute(sql.SQL("EXPLAIN ") + query if explain else query, params)
        return
    except psycopg.errors.ActiveSqlTransaction:
        pass  # refused before analysis: only a real run says whether it is right
    try:
        _cleanup(conn)
        for statement in world.setup:
            conn.execute(statement)
        conn.execute(query, params)
    finally:
        _cleanup(conn)


def check_statement(session: Session, name: str, version: int) -> None:
    """Parse, analyse and plan one statement on this server; AssertionError if no world fits."""
    text = queries.path_for(name, version).read_text()
    needed = set(re.findall(r"(?<!\{)\{(\w+)\}", text))
    base = identifiers(session)
    missing = needed - set(base)
    assert not missing, f"{name}: no test value for placeholders {missing}"
    params = {p: None for p in re.findall(r"%\((\w+)\)s", text)}
    body = re.sub(r"--[^\n]*\n", "", text).lstrip()
    explain = re.match(r"(SELECT|WITH|INSERT|UPDATE|DELETE)\b", body, re.I) is not None
    conn = session.conn
    failures: list[str] = []
    for world in worlds(session):
        ids = {**base, **world.overrides}
        query = queries.get(name, version, **{k: ids[k] for k in needed})
        try:
            _run(conn, world, query, params, explain)
        except psycopg.Error as exc:
            failures.append(f"{world.name}: {type(exc).__name__}: {exc}")
            continue
        return
    raise AssertionError(
        f"{name} failed on {version} in every fixture world:\n" + "\n".join(failures)
    )
