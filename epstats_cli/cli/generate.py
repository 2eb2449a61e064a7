"""`epstats generate` (and `epstats demo`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import click

from epstats_cli.cli.app import App, get_app, shown_option


@contextmanager
def _batch_progress(app: App, total: int) -> Iterator[Callable[[int, int], None] | None]:
    if not app.show_progress():
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    with Progress(
        "generating",
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=app.err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("rows", total=total)
        yield lambda done, _total: progress.update(task, completed=done)


F = TypeVar("F", bound=Callable[..., Any])


def _rows_and_days(minimum_rows: int, rows_help: str, days_help: str) -> Callable[[F], F]:
    """--rows and --days, shared by generate and demo."""

    def add(fn: F) -> F:
        fn = click.option(
            "--days", type=click.IntRange(1, 3650), default=60, show_default=True, help=days_help
        )(fn)
        return click.option(
            "--rows",
            type=click.IntRange(minimum_rows),
            default=1_000_000,
            show_default=True,
            help=rows_help,
        )(fn)

    return add


@click.command()
@_rows_and_days(
    1,
    "How many requests to generate.",
    "Spread over this many days, ending at the start of the current hour.",
)
@shown_option("--endpoints", click.IntRange(1, 10000), 20, "How many distinct endpoints.")
@shown_option("--error-rate", click.FloatRange(0, 0.5), 0.01, "Average share of 5xx responses.")
@shown_option("--seed", int, 1, "The same seed (and --until) gives the same rows.")
@click.option(
    "--until",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S%z", "%Y-%m-%d %H:%M:%S%z"]),
    help="End of the generated period (default: the start of the current hour).",
)
@click.option("--truncate", is_flag=True, help="Empty the table first.")
@click.option("--create-table", is_flag=True, help="Create the table if it does not exist.")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
def generate(
    rows: int,
    days: int,
    endpoints: int,
    error_rate: float,
    seed: int,
    until: dt.datetime | None,
    truncate: bool,
    create_table: bool,
    dry_run: bool,
) -> None:
    """Load synthetic requests, generated inside the server (fast, no client round trips).

    A few hot endpoints and a long tail, log-normal latencies with a distinct median
    per endpoint, a daily traffic cycle and a mix of 4xx and 5xx statuses, into the
    configured table and columns. All in one transaction: Ctrl-C leaves nothing behind.

    Example: epstats generate --rows 10000000 --days 60 --seed 7
    """
    from epstats_cli import synth
    from epstats_cli.render import Result

    app = get_app()
    if until is not None and until.tzinfo is None:
        until = until.replace(tzinfo=dt.timezone.utc)
    opts = synth.GenerateOptions(
        rows, days, endpoints, error_rate, seed, until, truncate, create_table
    )
    with app.session() as s, _batch_progress(app, rows) as on_batch:
        result = synth.generate(s, opts, app.executor(s, dry_run, record=True), on_batch)
    table = str(app.config.source.table)
    doc = {
        "table": table,
        "rows": result.rows,
        "seconds": round(result.seconds, 3),
        "from": result.start,
        "to": result.until,
        "seed": seed,
        "sql": result.sql if dry_run else None,
    }
    if dry_run:
        messages = ["dry run: nothing was changed; the SQL follows", ""]
        messages += [t + ";" for t in result.sql]
    else:
        rate = result.rows / result.seconds if result.seconds else 0
        messages = [
            f"generated {result.rows:,} rows into {table} in {result.seconds:.1f}s "
            f"({rate:,.0f} rows/s), {result.start:%Y-%m-%d %H:%M} .. "
            f"{result.until:%Y-%m-%d %H:%M %Z}"
        ]
    app.out(Result([], doc, messages))


@click.command()
@_rows_and_days(1000, "Synthetic requests to load.", "Spread over this many days.")
@click.option(
    "--reset",
    is_flag=True,
    help="Wipe the demo (the embedded server and its data, or with --dsn the "
    "epstats_demo schema) and stop.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List the steps (as epstats commands) and where they would run (with --reset: what "
    "it would stop and delete); start nothing, change nothing.",
)
def demo(rows: int, days: int, reset: bool, dry_run: bool) -> None:
    """The whole job on an embedded PostgreSQL, no set-up.

    Starts (or reuses) a local server, then: init, generate data, build the indices
    and the daily rollup, run maintenance, print the top endpoints and the health
    check, each step with its time. With --dsn it runs against that server instead,
    in its own schema epstats_demo, and never touches your tables.

    Example: epstats demo --rows 200000
    """
    import os

    from epstats_cli import demo as core
    from epstats_cli import embedded
    from epstats_cli.cli.report import top_result
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    where = core.Where(app.dsn_option or os.environ.get("EPSTATS_DSN") or "embedded")
    program = core.program()
    if dry_run and reset:
        click.echo(f"epstats demo --reset would, on {where.description}:")
        for line in core.reset_plan(where):
            click.echo(f"  {line}")
        click.echo("dry run: nothing was stopped, deleted or changed")
        return
    if dry_run:
        flag = "--dsn embedded" if where.embedded else "--dsn $EPSTATS_DSN"
        click.echo(f"epstats demo would run, on {where.description}:")
        for line in core.commands(rows, days):
            click.echo(f"  {program} {flag} {line}")
        click.echo("dry run: nothing was started or changed")
        return
    if reset:
        wiped = core.reset(app.config, where, fix=app.session_fix(None))
        if where.embedded:
            click.echo(
                f"embedded server in {embedded.pgdata()} "
                + ("stopped and deleted" if wiped else "was not there")
            )
        else:
            click.echo(f"dropped schema {core.SCHEMA}")
        return
    app.use_config(core.demo_config(app.config, where))
    click.echo(
        "epstats demo"
        + (" on the embedded PostgreSQL" if where.embedded else f" in {where.description}")
    )

    def show(step: core.DemoStep) -> None:
        click.echo(f"  ✓ {step.name:<16} {step.seconds:6.1f}s  {step.detail}")

    run = core.run(app.config, where, rows, days, show, log=app.note, fix=app.session_fix(None))
    click.echo()
    app.out(top_result(app, run.top, "requests"))
    checks = [r.as_dict() for r in run.checks]
    app.out(
        Result(
            [
                Table(
                    [
                        Column("name", "Check", wrap=False),
                        Column("state", "State"),
                        Column("summary", "Detail"),
                    ],
                    checks,
                    "epstats check",
                )
            ]
        )
    )
    click.echo(f"\ndone in {run.seconds:.1f}s.")
    click.echo("Connect with psql:\n  " + core.psql_command(run.dsn, where))
    click.echo("Try next:")
    for line in core.next_commands(where, program):
        click.echo("  " + line)
