"""`epstats status`, `check` and `advise`: render what epstats_cli.health and .advise gather."""

from __future__ import annotations

import datetime as dt
from typing import Any

import click

from epstats_cli.cli.app import get_app, shown_option


def _kv(rows: list[tuple[str, Any, str]]) -> list[dict[str, Any]]:
    from epstats_cli.render import format_cell

    return [{"item": k, "value": format_cell(v, kind)} for k, v, kind in rows]


@click.command()
def status() -> None:
    """One-screen overview: server, database and source-table sizes, rows, vacuum state.

    Reads only the catalog and statistics views (never count(*)), so it is instant on
    any size and works on a hot standby and with a read-only role.

    Example: epstats status --format json
    """
    from epstats_cli.health import status as overview
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        data = _in_zone(overview.gather(s).as_dict(), app.config.source.timezone)
    srv, tbl = data["server"], data["table"]
    kv_cols = [Column("item", "Item"), Column("value", "Value")]
    tables = [
        Table(
            kv_cols,
            _kv(
                [
                    ("server version", srv["server_version"], "text"),
                    ("database", srv["database"], "text"),
                    ("database size", srv["database_bytes"], "bytes"),
                    ("role", "standby (read-only)" if srv["in_recovery"] else "primary", "text"),
                    ("max_connections", srv["max_connections"], "int"),
                ]
            ),
            "Server",
        ),
    ]
    if not tbl["present"]:
        tables.append(
            Table(
                kv_cols,
                [{"item": "table", "value": tbl["name"] + " does not exist"}],
                f"Table {tbl['name']}",
                ["create it with: epstats init --with-requests-table"],
            )
        )
    else:
        dead_ratio = None
        live, dead = tbl["live_tuples"] or 0, tbl["dead_tuples"] or 0
        if live + dead:
            dead_ratio = dead / (live + dead)
        tables.append(
            Table(
                kv_cols,
                _kv(
                    [
                        ("estimated rows", tbl["estimated_rows"], "int"),
                        ("heap size", tbl["heap_bytes"], "bytes"),
                        ("index size", tbl["index_bytes"], "bytes"),
                        ("toast size", tbl["toast_bytes"], "bytes"),
                        ("total size", tbl["total_bytes"], "bytes"),
                        ("dead tuples", dead, "int"),
                        ("dead tuple ratio", dead_ratio, "pct"),
                        ("modified since analyze", tbl["modified_since_analyze"], "int"),
                        ("last vacuum", tbl["last_vacuum"], "ts"),
                        ("last autovacuum", tbl["last_autovacuum"], "ts"),
                        ("last analyze", tbl["last_analyze"], "ts"),
                        ("last autoanalyze", tbl["last_autoanalyze"], "ts"),
                        ("transaction id age", tbl["xid_age"], "int"),
                    ]
                ),
                f"Table {tbl['name']}",
                ["estimated rows come from the catalog (reltuples)"],
            )
        )
        tables += _more_tables(data)
    app.out(Result(tables, data))


def _in_zone(value: Any, timezone: str) -> Any:
    """Every timestamp in a document, shown in `timezone` (source.timezone: the zone of days),
    whatever the session's TimeZone."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)

    def convert(v: Any) -> Any:
        if isinstance(v, dt.datetime) and v.tzinfo is not None:
            return v.astimezone(zone)
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, list):
            return [convert(x) for x in v]
        return v

    return convert(value)


def _more_tables(data: dict[str, Any]) -> list[Any]:
    """Indices, rollup and maintenance sections of `status`."""
    from epstats_cli.render import Column, Table, format_cell

    tables = []
    idx = data.get("indexes")
    if isinstance(idx, list):
        rows = [
            dict(r, valid="MISSING" if r.get("missing") else format_cell(r["valid"], "bool"))
            for r in idx
        ]
        tables.append(
            Table(
                [
                    Column("name", "Index", wrap=False),
                    Column("columns", "Columns"),
                    Column("method", "Method"),
                    Column("valid", "Valid"),
                    Column("size_bytes", "Size", "bytes"),
                    Column("scans", "Scans", "int"),
                    Column("redundant_of", "Redundant of", wrap=False),
                    Column("recommended", "Recommended", "bool"),
                ],
                rows,
                "Indices",
            )
        )
    elif idx:
        tables.append(Table([Column("item", "Indices")], [{"item": idx}]))
    rollup = data.get("rollup")
    if isinstance(rollup, dict):
        if not rollup["usable"]:
            kv = [("rollup", rollup["why"], "text")]
        else:
            lag = rollup["oldest_unaggregated"]
            age = rollup["unaggregated_age_seconds"] or 0.0
            kv = [
                ("strategy", rollup["strategy"], "text"),
                ("built by epstats", rollup["built_by_epstats"], "bool"),
                ("rows", rollup["rows"], "int"),
                ("size", rollup["size_bytes"], "bytes"),
                ("watermark", rollup["watermark"], "ts"),
                (
                    "freshness",
                    "up to date"
                    if lag is None
                    else f"rows from {format_cell(lag, 'ts')} on not aggregated "
                    f"({age / 60:,.0f} min)",
                    "text",
                ),
            ]
        tables.append(
            Table(
                [Column("item", "Item"), Column("value", "Value")],
                _kv(kv),
                f"Rollup {rollup['name']}",
            )
        )
    elif rollup:
        tables.append(Table([Column("item", "Rollup")], [{"item": rollup}]))
    maint = data.get("maintenance")
    if isinstance(maint, list):
        tables.append(
            Table(
                [
                    Column("task", "Task"),
                    Column("last_run", "Last run", "ts"),
                    Column("last_status", "Status"),
                    Column("next_due", "Next due", "ts"),
                    Column("why", "Due?"),
                ],
                [dict(m, why=("due now: " if m["due_now"] else "") + m["why"]) for m in maint],
                "Maintenance",
            )
        )
    elif maint:
        tables.append(Table([Column("item", "Maintenance")], [{"item": maint}]))
    return tables


@click.command()
@click.option(
    "--only",
    metavar="NAMES",
    help="Only these checks (comma-separated): connect, analyze_age, vacuum_age, "
    "dead_tuples, xid_age, invalid_indexes, missing_indexes, redundant_indexes, "
    "view_staleness, future_rows, late_rows, maintain_failed, table_bloat, index_bloat.",
)
def check(only: str | None) -> None:
    """Health checks for monitoring, with Nagios exit codes and performance data.

    Prints one line (EPSTATS OK|WARNING|CRITICAL|UNKNOWN - ... | perfdata), then the
    detail table on a terminal. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; a server
    that cannot be reached is CRITICAL. Thresholds: the check: section of the config.

    Example: epstats check --only analyze_age,invalid_indexes
    """
    import sys

    from epstats_cli import health
    from epstats_cli.errors import ConfigError, ConnectError, EpstatsError
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    names = [n.strip() for n in (only or "").split(",") if n.strip()]
    unknown = sorted(set(names) - set(health.CHECKS))
    if unknown:
        raise click.BadParameter(
            f"unknown check {', '.join(unknown)} (checks: {', '.join(health.CHECKS)})",
            param_hint="--only",
        )
    try:
        with app.session() as s:
            results = health.run_checks(s, names)
    except ConfigError as exc:
        results = [health.CheckResult("config", health.State.UNKNOWN, "; ".join(exc.problems))]
    except ConnectError as exc:
        results = [health.CheckResult("connect", health.State.CRITICAL, exc.message)]
    except EpstatsError as exc:
        results = [health.CheckResult("epstats", health.State.UNKNOWN, exc.message)]
    state = health.overall(results)
    line = health.nagios_line(results)
    if app.fmt == "json":
        app.out(
            Result(
                [],
                {
                    "status": state.name,
                    "line": line,
                    "checks": [r.as_dict() for r in results],
                },
            ),
            force=True,
        )
    else:
        click.echo(line)
        if sys.stdout.isatty() or app.verbose:
            rows = [r.as_dict() for r in results]
            app.out(
                Result(
                    [
                        Table(
                            [
                                Column("name", "Check", wrap=False),
                                Column("state", "State", wrap=False),
                                Column("summary", "Detail"),
                            ],
                            rows,
                        )
                    ]
                )
            )
    raise click.exceptions.Exit(int(state))


@click.command()
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "json", "yaml"]),
    help="yaml: Kubernetes manifests (Deployment/StatefulSet resources, HPA, PDB).",
)
@click.option(
    "--heavy-analysis",
    is_flag=True,
    help="The API runs heavy statistical analysis (256Mi per pod).",
)
@click.option("--redis-persistence", is_flag=True, help="Redis persists data to disk.")
@shown_option("--pods", click.IntRange(1, 1000), 3, "API pods that share the traffic.")
def advise(fmt: str | None, heavy_analysis: bool, redis_persistence: bool, pods: int) -> None:
    """Resource, pool and layout recommendations from measured size and traffic.

    Measures the database and table size, growth, request rate (average and peak hour
    over the last 7 days) and the read/write mix, then applies the performance guide's
    sizing rules, each shown with its input. Read-only.

    Example: epstats advise --format yaml > k8s/endpoint-stats.yaml
    """
    from epstats_cli.advise import rules
    from epstats_cli.advise.measure import measure
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    fmt = fmt or app.fmt
    with app.session() as s:
        measured = measure(s)
    advice = rules.advise(measured, rules.Options(heavy_analysis, redis_persistence, pods))
    if fmt == "yaml":
        import yaml

        docs = rules.kubernetes(advice)
        header = (
            f"# epstats advise: {measured.peak_rps:,.1f} req/s peak, database "
            f"{measured.database_bytes / rules.GIB:,.2f} GB\n"
        )
        click.echo(header + yaml.safe_dump_all(docs, sort_keys=False), nl=False)
        return
    rows = [
        {
            "area": a.area,
            "rule": a.rule,
            "measured": a.measured,
            "recommendation": a.recommendation,
            "level": a.level,
        }
        for a in advice
    ]
    doc = {
        "measured": vars(measured),
        "advice": [dict(r, values=a.values) for r, a in zip(rows, advice, strict=True)],
    }
    table = Table(
        [
            Column("area", "Area", wrap=False),
            Column("measured", "Measured"),
            Column("recommendation", "Recommendation"),
            Column("rule", "Rule"),
        ],
        rows,
        "epstats advise",
        ["rules: the performance tuning guide; GB = 1024^3 bytes"],
    )
    if fmt == "json":
        app.fmt = "json"
    app.out(Result([table], doc))
