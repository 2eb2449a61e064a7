"""`epstats generate` (and `epstats demo`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING

import click

from epstats_cli.cli.app import App, get_app

if TYPE_CHECKING:
    from epstats_cli.db import Session
    from epstats_cli.history import TaskResult


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


@click.command()
@click.option(
    "--rows",
    type=click.IntRange(1),
    default=1_000_000,
    show_default=True,
    help="How many requests to generate.",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=60,
    show_default=True,
    help="Spread over this many days, ending at the start of the current hour.",
)
@click.option(
    "--endpoints",
    type=click.IntRange(1, 10000),
    default=20,
    show_default=True,
    help="How many distinct endpoints.",
)
@click.option(
    "--error-rate",
    type=click.FloatRange(0, 0.5),
    default=0.01,
    show_default=True,
    help="Average share of 5xx responses.",
)
@click.option(
    "--seed",
    type=int,
    default=1,
    show_default=True,
    help="The same seed (and --until) gives the same rows.",
)
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
        result = synth.generate(s, opts, dry_run, on_batch)
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
@click.option(
    "--rows",
    type=click.IntRange(1000),
    default=1_000_000,
    show_default=True,
    help="Synthetic requests to load.",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=60,
    show_default=True,
    help="Spread over this many days.",
)
@click.option(
    "--reset",
    is_flag=True,
    help="Wipe the demo (the embedded server and its data, or with --dsn the "
    "epstats_demo schema) and stop.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="List the steps (as epstats commands) and where they would run; "
    "start nothing, change nothing.",
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
    import time
    from dataclasses import replace

    from epstats_cli import config as config_mod
    from epstats_cli import embedded

    app = get_app()
    target = app.dsn_option or os.environ.get("EPSTATS_DSN") or "embedded"
    on_embedded = target.strip() == "embedded"
    if dry_run:
        where = (
            f"the embedded server in {embedded.pgdata()}"
            if on_embedded
            else f"schema epstats_demo of {_where(target)}"
        )
        flag = "--dsn embedded" if on_embedded else "--dsn $EPSTATS_DSN"
        click.echo(f"epstats demo would run, on {where}:")
        for line in (
            "init --with-requests-table",
            f"generate --rows {rows} --days {days} --truncate",
            "indexes apply",
            "view build (--replace when it exists)",
            "maintain",
            "report top --days 30",
            "check",
        ):
            click.echo(f"  epstats {flag} {line}")
        click.echo("dry run: nothing was started or changed")
        return
    if reset:
        if on_embedded:
            wiped = embedded.reset()
            click.echo(
                f"embedded server in {embedded.pgdata()} "
                + ("stopped and deleted" if wiped else "was not there")
            )
        else:
            from epstats_cli import schema

            with app.session() as s:
                schema.drop_demo(s)
            click.echo("dropped schema epstats_demo")
        return
    cfg = app.config
    if not on_embedded:
        # never the user's own table: a schema of the demo's own
        cfg = replace(
            cfg,
            source=replace(cfg.source, table=config_mod.QualifiedName("epstats_demo", "requests")),
        )
        app.use_config(cfg)
    app.dsn_option = target
    steps: list[tuple[str, float, str]] = []

    def step(name: str, fn: Callable[[], str]) -> None:
        start = time.monotonic()
        detail = fn()
        seconds = time.monotonic() - start
        steps.append((name, seconds, detail))
        click.echo(f"  ✓ {name:<16} {seconds:6.1f}s  {detail}")

    click.echo(
        "epstats demo"
        + (
            " on the embedded PostgreSQL"
            if on_embedded
            else f" in schema epstats_demo of {_where(target)}"
        )
    )
    started = time.monotonic()
    dsn_holder: list[str] = []
    step("server", lambda: _start(app, dsn_holder))
    app.dsn_option = dsn_holder[0]
    with app.session() as s:
        _run_demo(app, s, rows, days, step)
    total = time.monotonic() - started
    click.echo(f"\ndone in {total:.1f}s.")
    _next_steps(app, dsn_holder[0], on_embedded)


def _where(dsn: str) -> str:
    from epstats_cli.db import target

    return target(dsn)


def _start(app: App, holder: list[str]) -> str:
    dsn = app.dsn()  # starts or reuses the embedded server when asked for
    holder.append(dsn)
    from epstats_cli import db

    with db.session(app.config, dsn) as s:
        return f"PostgreSQL {s.server.version}"


def _run_demo(
    app: App, s: Session, rows: int, days: int, step: Callable[[str, Callable[[], str]], None]
) -> None:
    from epstats_cli import health, indexes, maintenance, reports, rollup, schema, synth
    from epstats_cli.cli.report import top_result
    from epstats_cli.errors import OperationFailed
    from epstats_cli.render import Column, Result, Table

    table = str(app.config.source.table)

    def fail_on(results: Sequence[TaskResult]) -> None:
        bad = [r for r in results if r.status == "failed"]
        if bad:
            raise OperationFailed("; ".join(f"{r.task} {r.target}: {r.reason}" for r in bad))

    def do_init() -> str:
        created = [st.object for st in schema.init(s, True, False) if not st.present]
        return "created " + ", ".join(created) if created else "schema and table present"

    def do_generate() -> str:
        res = synth.generate(s, synth.GenerateOptions(rows, days, truncate=True))
        return f"{res.rows:,} requests over {days} days into {table}"

    def do_indexes() -> str:
        _plan, results = indexes.apply(s)
        fail_on(results)
        built = [r.target for r in results if r.task == "create"]
        return "built " + ", ".join(built) + " CONCURRENTLY" if built else "already present"

    def do_view() -> str:
        exists = rollup.facts(s).exists
        results = rollup.build(s, replace=exists)
        fail_on(results)
        info = rollup.facts(s)
        return f"{info.name}: {info.row_count:,} endpoint-days ({info.strategy})"

    def do_maintain() -> str:
        report = maintenance.maintain(s, maintenance.MaintainOptions())
        fail_on(report.results)
        done = sorted({r.task for r in report.results if r.status == "ok"})
        return "ran " + ", ".join(done) if done else "nothing due (it ran a moment ago)"

    report_holder: list[object] = []

    def do_report() -> str:
        rep = reports.top(s, days=30)
        report_holder.append(rep)
        return f"top {len(rep.rows)} endpoints in {rep.seconds * 1000:.1f} ms ({rep.source})"

    check_holder: list[health.CheckResult] = []

    def do_check() -> str:
        check_holder.extend(health.run_checks(s))
        return health.nagios_line(check_holder).split(" | ")[0]

    step("init", do_init)
    step("generate", do_generate)
    step("indexes apply", do_indexes)
    step("view build", do_view)
    step("maintain", do_maintain)
    step("report top", do_report)
    step("check", do_check)
    click.echo()
    app.out(top_result(app, report_holder[0], "requests"))
    rows_ = [r.as_dict() for r in check_holder]
    app.out(
        Result(
            [
                Table(
                    [
                        Column("name", "Check", wrap=False),
                        Column("state", "State"),
                        Column("summary", "Detail"),
                    ],
                    rows_,
                    "epstats check",
                )
            ]
        )
    )


def _next_steps(app: App, dsn: str, on_embedded: bool) -> None:
    from psycopg import conninfo

    params = conninfo.conninfo_to_dict(dsn)
    params.pop("password", None)  # never printed: psql finds it where libpq does
    from epstats_cli import embedded

    binary = embedded.psql_path() if on_embedded else "psql"
    psql = f"{binary} '{conninfo.make_conninfo(**params)}'"  # type: ignore[arg-type]
    flag = "--dsn embedded" if on_embedded else "--dsn '$EPSTATS_DSN'"
    cfg = "" if on_embedded else " -c <config with source.table: epstats_demo.requests>"
    click.echo("Connect with psql:\n  " + psql)
    click.echo("Try next:")
    for line in (
        f"epstats {flag}{cfg} report top --sort error_rate",
        f"epstats {flag}{cfg} report endpoint /api/v1/orders --days 14",
        f"epstats {flag}{cfg} status",
        f"epstats {flag}{cfg} maintain --dry-run",
        f"epstats {flag}{cfg} advise",
        "epstats demo --reset"
        + ("" if on_embedded else " --dsn '$EPSTATS_DSN'")
        + "   (wipe the demo)",
    ):
        click.echo("  " + line)
