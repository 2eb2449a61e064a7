"""`epstats view build|refresh|status|verify`."""

from __future__ import annotations

import datetime as dt

import click

from epstats_cli.cli.app import get_app

STRATEGIES = ("materialized", "incremental")


@click.group()
def view() -> None:
    """Build, refresh, inspect and verify the daily-stats rollup (endpoint_daily_stats).

    Example: epstats view status
    """


@view.command("build")
@click.option(
    "--strategy",
    type=click.Choice(STRATEGIES),
    help="materialized (the guide's view) or incremental (a table refreshed by day). "
    "Default: view.strategy.",
)
@click.option(
    "--replace", is_flag=True, help="Build a new rollup beside the existing one and swap it in."
)
@click.option(
    "--keep-retired",
    is_flag=True,
    help="With --replace: accept new parameters although days up to the retention horizon "
    "keep the old ones (their raw rows are retired); records from which day the new ones hold.",
)
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
def build_cmd(strategy: str | None, replace: bool, keep_retired: bool, dry_run: bool) -> None:
    """Create the rollup from the raw rows, in one transaction.

    An existing view (for example the guide's, made by hand) is left alone unless
    --replace: then the new one is built beside it and swapped in within one short
    transaction, so readers always see a complete view.

    With retention (source.retention), the days up to the retention horizon are carried
    over from the old rollup (their raw rows are gone); a change of the parameters it was
    built with is refused unless --keep-retired.

    Example: epstats view build --strategy incremental --replace
    """
    if keep_retired and not replace:
        raise click.UsageError("--keep-retired goes with --replace")
    from epstats_cli import rollup
    from epstats_cli.cli.tasks import show_tasks

    app = get_app()
    with app.session() as s:
        executor = app.executor(s, dry_run, record=True)
        results = rollup.build(
            s, strategy, replace, dry_run, executor=executor, keep_retired=keep_retired
        )
    show_tasks(app, results, "view build", dry_run)


@view.command("refresh")
@click.option("--full", is_flag=True, help="Incremental: recompute every day.")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="DATE",
    help="Incremental: recompute from this day on (backfills).",
)
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
def refresh_cmd(full: bool, since: dt.datetime | None, dry_run: bool) -> None:
    """Bring the rollup up to date.

    materialized: REFRESH MATERIALIZED VIEW CONCURRENTLY (plain the first time).
    incremental: recompute only the days that can still change (view.lookback), in one
    short transaction. Concurrent refreshes run one after the other.

    Example: epstats view refresh --since 2026-11-01
    """
    from epstats_cli import rollup
    from epstats_cli.cli.tasks import show_tasks

    if full and since:
        raise click.UsageError("--full and --since exclude each other")
    app = get_app()
    with app.session() as s:
        result = rollup.refresh(
            s,
            full=full,
            since=since.date() if since else None,
            dry_run=dry_run,
            executor=app.executor(s, dry_run, record=True),
        )
    show_tasks(app, [result], "view refresh", dry_run)


@view.command("status")
def status_cmd() -> None:
    """What the rollup is, what it lacks, how fresh it is. Read-only.

    Example: epstats view status --format json
    """
    from zoneinfo import ZoneInfo

    from epstats_cli import rollup
    from epstats_cli.db import now as db_now
    from epstats_cli.render import Column, Result, Table, format_cell

    app = get_app()
    with app.session() as s:
        info = rollup.facts(s)
        now, _hour = db_now(s)
    mismatch = rollup.parameter_mismatch(info, app.config)
    d = info.as_dict()
    d["configured_strategy"] = app.config.view.strategy
    d["age_seconds"] = (now - info.as_of).total_seconds() if info.as_of and now else None
    d["parameter_mismatch"] = mismatch
    params = info.parameters or {}
    rows = [
        ("name", d["name"], "text"),
        ("exists", info.exists, "bool"),
        ("kind", d["kind"], "text"),
        ("built by epstats", d["built_by_epstats"], "bool"),
        ("strategy", info.strategy, "text"),
        ("time zone of days", info.timezone, "text"),
        ("naive timestamps are in", params.get("naive_timezone"), "text"),
        ("errors: status >=", params.get("error_status_min"), "text"),
        ("latency histograms", _histograms(info.histograms, params), "text"),
        ("populated", info.populated, "bool"),
        ("rows", info.row_count, "int"),
        ("days", f"{info.first_day} .. {info.last_day}" if info.first_day else None, "text"),
        ("size", info.size_bytes, "bytes"),
        ("complete through (as of)", info.as_of, "ts"),
        ("newest row aggregated", info.newest, "ts"),
        ("last refresh by epstats", info.refreshed_at, "ts"),
        ("last refresh took", _seconds(info.refresh_seconds), "text"),
        ("days settled through", info.settled_through, "text"),
        ("retention horizon (rollup alone through)", info.retired_through, "text"),
    ]
    footer = []
    if not info.exists:
        footer.append("build it with: epstats view build")
    elif info.lacks:
        footer.append("lacks: " + "; ".join(info.lacks))
        footer.append("fix with: epstats view build --replace")
    if info.exists and info.missing_latency:
        footer.append(
            f"{info.name} has no latency histograms ({', '.join(info.missing_latency)}): "
            "reports show no percentiles from it; `epstats view build --replace` adds them"
        )
    footer += mismatch + ([info.mark_unreadable] if info.mark_unreadable else [])
    zone = ZoneInfo(info.timezone or app.config.source.timezone)  # times in the rollup's zone

    def shown(value: object, kind: str) -> str:
        if kind == "ts" and isinstance(value, dt.datetime):
            value = value.astimezone(zone)
        return format_cell(value, kind)

    table = Table(
        [Column("item", "Item"), Column("value", "Value")],
        [{"item": k, "value": shown(v, kind)} for k, v, kind in rows],
        f"Rollup {info.name}",
        footer,
    )
    app.out(Result([table], d))


def _histograms(present: bool, params: dict[str, object]) -> str | None:
    """Whether the rollup keeps latency histograms, and of what accuracy."""
    if not present:
        return "none (epstats view build --replace adds them)" if params else None
    accuracy = params.get("latency_accuracy")
    return "yes" if not isinstance(accuracy, float | int) else f"yes, within {accuracy:.1%}"


def _seconds(value: float | None) -> str | None:
    """A duration with its unit: 1.61 s."""
    return None if value is None else f"{value:,.2f} s"


@view.command("verify")
@click.option(
    "--days", type=click.IntRange(1, 36600), help="Window: the last N days (default: reports.days)."
)
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d"]),
    metavar="DATE",
    help="Window: from this day to today.",
)
def verify_cmd(days: int | None, since: dt.datetime | None) -> None:
    """Prove the rollup equals a from-scratch aggregation of the raw rows; exit 1 if not.

    Counts, errors, minimum and maximum must match exactly and sums within 1e-9
    relative, for every endpoint and day of the window, and so must every bucket and
    count of its latency histograms (when it has them). Raw rows the rollup has not
    aggregated yet (dated after its as-of, or written by a transaction still open
    during its refresh) are not expected in it and are only counted. An endpoint-day that
    differs only by rows changed since the refresh (an UPDATE, pg_repack) is not an
    error: it is listed apart, as --source auto counts those rows twice until the next
    refresh. A rollup built with other parameters than the configuration's is refused
    (exit 3).

    Example: epstats view verify --days 7
    """
    from epstats_cli import replica, reports, rollup
    from epstats_cli.render import Column, Result, Table, local_time

    app = get_app()
    if days is not None and since is not None:
        raise click.UsageError("--days excludes --since")
    with app.session() as s:
        where = replica.measure(s)  # on database.replica_dsn when set: how far behind
        # the same window as reports: whole days in source.timezone, by the server's clock
        win = reports.window(s, days, since.date() if since else None, None)
        from_day, today = win.from_day, win.to_day
        result = rollup.verify(s, from_day, today)
        from_day = result.from_day  # after the retention horizon
    cols = [
        Column("endpoint", "Endpoint"),
        Column("day", "Day"),
        Column("view_requests", "View requests", "int"),
        Column("raw_requests", "Raw requests", "int"),
        Column("view_errors", "View errors", "int"),
        Column("raw_errors", "Raw errors", "int"),
        Column("view_min", "View min ms", "ms"),
        Column("raw_min", "Raw min ms", "ms"),
        Column("view_max", "View max ms", "ms"),
        Column("raw_max", "Raw max ms", "ms"),
        Column("view_total", "View total ms", "ms"),
        Column("raw_total", "Raw total ms", "ms"),
        Column("histogram_differs", "Histogram differs", "bool"),
    ]
    ok = not result.differences
    tz = app.config.source.timezone  # verify refuses a rollup built for another zone
    through = local_time(result.as_of, tz, seconds=True) if result.as_of else "never refreshed"
    footer = [
        f"window {from_day} .. {today} ({tz}); "
        f"complete through {through}; {result.pending_rows:,} raw rows not aggregated yet",
        "OK: the rollup equals the raw rows"
        if ok
        else f"{len(result.differences)} endpoint-days differ: run `epstats view refresh` "
        "(--since DATE for days outside the lookback)",
    ]
    if result.retention_horizon is not None:
        footer.append(
            f"retention horizon {result.retention_horizon}: days up to it are kept by the "
            "rollup alone (their raw rows are retired) and are not compared"
        )
    if result.rewritten:
        which = ", ".join(f"{d['endpoint']} {d['day']}" for d in result.rewritten[:5])
        more = f" and {len(result.rewritten) - 5} more" if len(result.rewritten) > 5 else ""
        footer.append(
            f"{len(result.rewritten)} endpoint-days ({which}{more}) hold rows changed since the "
            "last refresh (an UPDATE, pg_repack) and dated within view.commit_delay before "
            "it: the rollup is right, but --source auto counts those rows twice until the "
            "next refresh (`epstats view refresh`)"
        )
    footer += where.notes
    doc = {
        "ok": ok,
        "window": {"from": from_day, "to": today},
        "as_of": result.as_of,
        "pending_rows": result.pending_rows,
        "differences": result.differences,
        "rewritten": result.rewritten,
        "replica_lag_s": where.lag_s,
        "retention_horizon": result.retention_horizon,
    }
    # an empty table still gives CSV its header row; people read the footer alone
    tables = [
        Table(cols, result.differences, "view verify: differences", footer, shown_empty=False)
    ]
    try:
        app.out(Result(tables, doc, messages=[] if not ok else footer), force=not ok)
    finally:  # said on stderr even when stdout cannot be written (a full disk)
        if not ok:
            click.echo(
                f"epstats: error: {len(result.differences)} endpoint-days of the rollup "
                "differ from the raw rows",
                err=True,
            )
    if not ok:
        raise click.exceptions.Exit(1)
