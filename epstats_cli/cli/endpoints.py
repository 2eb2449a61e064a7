"""`epstats endpoints`: how many distinct endpoints the source holds, and what normalization
(source.endpoint_ids, source.endpoint_rules) makes of them."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from epstats_cli.cli.app import get_app, shown_option


@click.command()
@click.option(
    "--days",
    type=click.IntRange(1, 36600),
    help="The last N days, today included (default: reports.days).",
)
@click.option("--limit", type=click.IntRange(1, 100000), help="Rows (default: reports.limit).")
@shown_option(
    "--sample-rows",
    click.IntRange(1, 100_000_000),
    100_000,
    "Read every row of the window up to about this many (by the planner's estimate); "
    "beyond, a TABLESAMPLE SYSTEM sample of about this many.",
)
def endpoints(days: int | None, limit: int | None, sample_rows: int) -> None:
    """The endpoint column's cardinality, raw and normalized.

    Distinct endpoints in the window and per day, as stored and after normalization (the
    configured one, or what source.endpoint_ids: auto would make of them), and the busiest
    normalized endpoints with their share of requests and how many raw endpoints each
    gathers. A large window is read from a sample, which the footer states. Read-only:
    works on a standby.

    Example: epstats endpoints --days 7
    """
    from epstats_cli import endpoint_stats as core

    app = get_app()
    with app.session() as s:
        rep = core.measure(s, days=days, limit=limit, sample_rows=sample_rows)
    app.out(result(rep, str(app.config.source.table)))


def result(rep: Any, table: str) -> Any:
    """The report as two tables (cardinality, busiest endpoints) and one JSON document."""
    from zoneinfo import ZoneInfo

    from epstats_cli.render import Column, Result, Table

    zone = ZoneInfo(rep.timezone)

    def local(instant: dt.datetime) -> str:
        return f"{instant.astimezone(zone):%Y-%m-%d %H:%M %Z}"

    norm = rep.normalization
    how = (
        f"normalized as configured ({norm.describe()})"
        if rep.configured
        else f"normalized as source.endpoint_ids: auto would ({norm.describe()}; not configured)"
    )
    if rep.sample_percent is None:
        read = f"every row of the window: {rep.rows:,} requests"
    else:
        read = (
            f"a sample (TABLESAMPLE SYSTEM {rep.sample_percent:.4g}%) of about "
            f"{rep.estimated_rows or 0:,} rows: {rep.rows:,} requests; the distinct counts are "
            "the sample's (at most the window's)"
        )
    footer = [
        f"source: {table}, {read}",
        f"window: {local(rep.from_ts)} .. {local(rep.to_ts)} ({rep.timezone})",
        how,
    ]
    if rep.planner_distinct is not None:
        footer.append(
            f"the planner estimates {rep.planner_distinct:,.0f} distinct endpoints in the whole "
            "table (pg_stats, last ANALYZE)"
        )

    def rounded(value: float | None) -> int | None:
        return None if value is None else round(value)

    cardinality = [
        {
            "measure": "distinct endpoints",
            "raw": rep.raw.distinct,
            "normalized": rep.normalized.distinct,
        },
        {
            "measure": "distinct per day, average",
            "raw": rounded(rep.raw.per_day_avg),
            "normalized": rounded(rep.normalized.per_day_avg),
        },
        {
            "measure": "distinct per day, most",
            "raw": rep.raw.per_day_max,
            "normalized": rep.normalized.per_day_max,
        },
    ]
    counts = [
        Column("measure", "Endpoints", wrap=False),
        Column("raw", "Raw", "int"),
        Column("normalized", "Normalized", "int"),
    ]
    top = [
        Column("endpoint", "Endpoint (normalized)", wrap=False),
        Column("requests", "Requests", "int"),
        Column("share", "Share", "pct"),
        Column("raw_endpoints", "Raw endpoints", "int"),
        Column("example", "Example", wrap=False),
    ]
    return Result(
        [
            Table(counts, cardinality, "Endpoint cardinality", footer),
            Table(top, rep.top, f"Top {len(rep.top)} endpoints after normalization"),
        ],
        rep.document(),
    )
