"""`epstats status` and `check`: render what epstats_cli.health gathers and judges."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from epstats_cli.cli.app import App, get_app, stdout_to_devnull


def _kv(rows: list[tuple[str, Any, str]]) -> list[dict[str, Any]]:
    from epstats_cli.render import format_cell

    return [{"item": k, "value": format_cell(v, kind)} for k, v, kind in rows]


@click.command()
def status() -> None:
    """One-screen overview: server, database and source-table sizes, rows, vacuum state,
    distinct endpoints per day.

    Reads the catalog and statistics views (never count(*)) and, for the endpoints, the
    rollup's recent days or a bounded range of the newest rows, so it is quick on any size
    and works on a hot standby and with a read-only role.

    Example: epstats status --format json
    """
    from epstats_cli.health import status as overview
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        data = _in_zone(overview.gather(s).as_dict(), app.config.source.timezone)
    if app.fmt == "openmetrics":
        from epstats_cli.health.openmetrics import status_metrics

        click.echo(status_metrics(data), nl=False)
        return
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
        *_role_settings_table(data["role_settings"]),
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


def _role_settings_table(settings: list[dict[str, Any]] | str) -> list[Any]:
    """What the role and database would impose, against what epstats uses for itself."""
    from epstats_cli.render import Column, Table

    if isinstance(settings, str):
        return [Table([Column("item", "Settings of the role")], [{"item": settings}])]
    columns = [
        Column("name", "Setting", wrap=False),
        Column("role_value", "The role gets"),
        Column("source", "From"),
        Column("epstats_value", "epstats uses"),
    ]
    footer = [
        "epstats sets these for its own statements (database.statement_timeout, lock_timeout)"
    ]
    return [Table(columns, settings, "Settings the role brings along", footer)]


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
                (
                    "watermark",
                    rollup["watermark"] or "never refreshed",
                    "ts" if rollup["watermark"] else "text",
                ),
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
    tables += _endpoints_table(data.get("endpoints"))
    return tables


def _endpoints_table(endpoints: dict[str, Any] | str | None) -> list[Any]:
    """Distinct endpoints per day, as stored and normalized: each is a row of the rollup."""
    from epstats_cli.render import Column, Table

    if isinstance(endpoints, str):
        return [Table([Column("item", "Endpoints")], [{"item": endpoints}])]
    if endpoints is None:
        return []
    kv = [
        ("distinct per day, as stored", endpoints["raw_per_day"], "int"),
        (
            "distinct per day, normalized",
            endpoints["normalized_per_day"]
            if endpoints["normalized_per_day"] is not None
            else "normalization off (source.endpoint_ids, endpoint_rules)",
            "int" if endpoints["normalized_per_day"] is not None else "text",
        ),
        ("requests per day", endpoints["requests_per_day"], "int"),
        ("from", endpoints["from"], "text"),
    ]
    return [
        Table(
            [Column("item", "Item"), Column("value", "Value")],
            _kv(kv),
            "Endpoints",
            ["each distinct endpoint is a row of the rollup every day (epstats endpoints)"],
        )
    ]


@click.command()
@click.option(
    "--only",
    metavar="NAMES",
    help="Only these checks (comma-separated): connect, analyze_age, vacuum_age, "
    "dead_tuples, xid_age, invalid_indexes, missing_indexes, redundant_indexes, "
    "view_staleness, future_rows, late_rows, maintain_failed, table_bloat, index_bloat, pooler, "
    "long_transactions, ingest_stalled, connections, replication_lag, database_size, "
    "sequence_exhaustion, endpoint_cardinality, latency_p95, partition_runway.",
)
def check(only: str | None) -> None:
    """Health checks for monitoring, with Nagios exit codes and performance data.

    Prints one line (EPSTATS OK|WARNING|CRITICAL|UNKNOWN - ... | perfdata), then the
    detail table on a terminal. Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; a server
    that cannot be reached is CRITICAL; a usage or configuration error is UNKNOWN.
    Thresholds: the check: section of the config. --format openmetrics prints the states
    and perfdata as gauges for Prometheus (node_exporter's textfile collector).

    Example: epstats check --only analyze_age,invalid_indexes
    """
    import psycopg

    from epstats_cli import health
    from epstats_cli.errors import ConfigError, ConnectError, EpstatsError, from_exception

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
    except psycopg.Error as exc:  # not WARNING (exit 1): the checks could not run
        mapped = from_exception(exc)
        message = mapped.message if mapped is not None else str(exc)
        results = [health.CheckResult("epstats", health.State.UNKNOWN, message)]
    raise click.exceptions.Exit(_show_checks(app, results))


# The State column's colours (the console drops them for --no-color, NO_COLOR or a pipe).
STATE_STYLES = {"OK": "green", "WARNING": "yellow", "CRITICAL": "bold red", "UNKNOWN": "magenta"}


def _show_checks(app: App, results: list[Any]) -> int:
    """Print the plugin output (the line, or the JSON document) and return the exit code: the
    state, also when the reader closed the pipe before reading it all (`check | head -c 3`,
    `check | true`), where any other command ends with 0."""
    from epstats_cli import health

    state = health.overall(results)
    try:
        _print_checks(app, results, state)
        sys.stdout.flush()
    except BrokenPipeError:
        stdout_to_devnull()
    return int(state)


def _print_checks(app: App, results: list[Any], state: Any) -> None:
    from epstats_cli import health
    from epstats_cli.render import Column, Result, Table

    line = health.nagios_line(results)
    if app.fmt == "openmetrics":
        from epstats_cli.health.openmetrics import check_metrics

        click.echo(check_metrics(results), nl=False)
        return
    if app.fmt == "json":
        doc = {
            "state": state.name,
            "status": state.name,
            "line": line,
            "checks": [r.as_dict() for r in results],
        }
        app.out(Result([], doc), force=True)
        return
    click.echo(line)
    if sys.stdout.isatty() or app.verbose:
        columns = [
            Column("name", "Check", wrap=False),
            Column("state", "State", wrap=False, styles=STATE_STYLES),
            Column("summary", "Detail"),
        ]
        app.out(Result([Table(columns, [r.as_dict() for r in results])]))


def check_usage_error(group: click.Group, args: list[str], exc: click.UsageError) -> int | None:
    """For `check`, a usage error is UNKNOWN (3) with the plugin's output (Nagios reads exit 2
    as CRITICAL): printed, and its exit code returned; None for any other command."""
    from epstats_cli import health

    command, fmt = _invoked(group, args)
    ctx = exc.ctx
    if ctx is not None and ctx.command is not group:
        # refused by a command: the top-level `check` itself (a subcommand of the group), not
        # another command also named check (`config check`)
        parent = ctx.parent
        in_check = ctx.command.name == "check" and parent is not None and parent.command is group
    else:  # refused by the group, before a command ran: the command named on the line
        in_check = command == "check"
    if not in_check:
        return None
    app = ctx.find_object(App) if ctx is not None else None
    if app is None:
        app = App(fmt=fmt if fmt in ("table", "json", "openmetrics") else "table")
    message = " ".join(exc.format_message().split())
    result = health.CheckResult("usage", health.State.UNKNOWN, f"{message} (epstats check --help)")
    return _show_checks(app, [result])


def _invoked(group: click.Group, args: list[str]) -> tuple[str | None, str]:
    """The command named in a command line, and its --format, read past the group's options
    (those that take a value skip it) without click, which has just refused the line."""
    takes_value = {
        name
        for p in group.params
        if isinstance(p, click.Option) and not p.is_flag and not p.count
        for name in p.opts
    }
    fmt, i = "table", 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return (args[i + 1] if i + 1 < len(args) else None), fmt
        if not arg.startswith("-") or arg == "-":
            return arg, fmt
        name, eq, value = arg.partition("=")
        if name in takes_value and not eq:
            value = args[i + 1] if i + 1 < len(args) else ""
            i += 1
        if name == "--format":
            fmt = value
        i += 1
    return None, fmt
