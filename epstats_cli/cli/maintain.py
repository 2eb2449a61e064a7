"""`epstats vacuum|analyze|reindex|maintain`."""

from __future__ import annotations

import click

from epstats_cli.cli.app import get_app
from epstats_cli.durations import parse_duration


@click.command()
@click.option("--analyze", "with_analyze", is_flag=True, help="Also update planner statistics.")
@click.option("--freeze", is_flag=True, help="Freeze tuples (as VACUUM FREEZE).")
@click.option("--full", is_flag=True, hidden=True)
@click.option(
    "--parallel",
    type=click.IntRange(0, 1024),
    metavar="N",
    help="Vacuum indices with up to N parallel workers (PostgreSQL 13+; 0: none).",
)
@click.option(
    "--min-xid-age",
    type=click.IntRange(1, 2**31 - 1),
    metavar="AGE",
    help="Only tables whose transaction-ID age is at least AGE.",
)
@click.option(
    "--min-mxid-age",
    type=click.IntRange(1, 2**31 - 1),
    metavar="AGE",
    help="Only tables whose multixact age is at least AGE.",
)
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
def vacuum(
    with_analyze: bool,
    freeze: bool,
    full: bool,
    parallel: int | None,
    min_xid_age: int | None,
    min_mxid_age: int | None,
    dry_run: bool,
) -> None:
    """VACUUM the source table and the rollup, with SKIP_LOCKED and lock_timeout.

    A table whose lock is held elsewhere is retried with backoff, then reported with the
    pid holding it. VACUUM FULL is refused: it locks out every INSERT for the whole rewrite.
    --min-xid-age / --min-mxid-age (as vacuumdb's) judge relation by relation (each
    partition of a partitioned table): only those that reach the age are vacuumed, the others
    skipped with theirs: run it from cron to freeze only what is getting old.

    Example: epstats vacuum --analyze --parallel 2 --min-xid-age 100000000
    """
    from epstats_cli import maintenance
    from epstats_cli.cli.tasks import show_tasks

    if full:
        raise click.UsageError(
            "VACUUM FULL is refused: it takes an ACCESS EXCLUSIVE lock and rewrites the table, "
            "so every INSERT of the API waits until it ends. Plain `epstats vacuum` makes dead "
            "space reusable without blocking; to give space back to the OS online, use "
            "pg_repack."
        )
    app = get_app()
    with app.session() as s:
        opts = maintenance.VacuumOptions(parallel, min_xid_age, min_mxid_age)
        steps = maintenance.plan_vacuum(s, with_analyze, freeze, opts=opts)
        results = app.executor(s, dry_run, record=True).run_all(steps)
    show_tasks(app, results, "vacuum", dry_run)


@click.command()
@click.option(
    "--in-stages",
    is_flag=True,
    help="Three passes: statistics target 1, then 10, then the default (as vacuumdb's).",
)
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
def analyze(in_stages: bool, dry_run: bool) -> None:
    """ANALYZE the source table and the rollup (SKIP_LOCKED, lock_timeout).

    --in-stages gives the planner usable statistics at once after a bulk load or a
    restore (a first pass with a statistics target of 1), then better ones, then full ones.

    Example: epstats analyze --in-stages
    """
    from epstats_cli import maintenance
    from epstats_cli.cli.tasks import show_tasks

    app = get_app()
    with app.session() as s:
        steps = maintenance.plan_analyze(s, in_stages)
        results = app.executor(s, dry_run, record=True).run_all(steps)
    show_tasks(app, results, "analyze", dry_run)


@click.command()
@click.option("--index", "index_name", metavar="NAME", help="Only this index.")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
def reindex(index_name: str | None, dry_run: bool) -> None:
    """REINDEX CONCURRENTLY the indices of the source table and the rollup.

    Writes go on while it runs; if a rebuild fails, the invalid `_ccnew` copy it left is
    dropped. (`maintain` rebuilds only indices whose estimated bloat passes
    maintenance.reindex_bloat_ratio.)

    Example: epstats reindex --index idx_requests_timestamp
    """
    from epstats_cli import maintenance
    from epstats_cli.cli.tasks import show_tasks

    app = get_app()
    with app.session() as s:
        results = maintenance.reindex(s, app.executor(s, dry_run, record=True), index_name)
    show_tasks(app, results, "reindex", dry_run)


def _tasks(value: str | None, option: str) -> set[str]:
    from epstats_cli.schedule import parse_tasks

    try:
        return parse_tasks(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@click.command()
@click.option(
    "--dry-run", is_flag=True, help="Show every task, due or not, why, and its SQL; change nothing."
)
@click.option("--only", metavar="TASKS", help="Only these tasks (comma-separated).")
@click.option("--skip", metavar="TASKS", help="Not these tasks.")
@click.option("--force", metavar="TASKS", help="Run these even if not due.")
@click.option(
    "--max-runtime",
    metavar="DUR",
    help="Start no task that would not finish within this (default: the config).",
)
def maintain(
    dry_run: bool, only: str | None, skip: str | None, force: str | None, max_runtime: str | None
) -> None:
    """Run whatever maintenance is due: the cron entry point.

    Tasks: cleanup (invalid index leftovers, old history), vacuum (weekly, or early on
    dead tuples; FREEZE near wraparound), analyze (daily, or early once
    maintenance.analyze_modified_ratio of a table's rows changed), reindex (monthly, bloated
    indices only), refresh (the rollup, hourly), verify (daily: the rollup's days before
    view.lookback against the raw rows, repairing any that differ, within max-runtime).
    One run at a time: a second exits 75. A rollup built with other parameters than the
    configuration's is refused before any task (exit 3).
    Exit 0 all done, 1 a task failed (the rest still ran), 75 another run holds the lock
    (silent with -q).

    Example: */10 * * * * epstats -q maintain
    """
    from epstats_cli import maintain as core
    from epstats_cli.cli.tasks import show_tasks
    from epstats_cli.errors import ExitCode, LockedError

    app = get_app()
    opts = core.MaintainOptions(
        only=_tasks(only, "--only"),
        skip=_tasks(skip, "--skip"),
        force=_tasks(force, "--force"),
    )
    if max_runtime:
        try:
            opts.max_runtime = parse_duration(max_runtime)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--max-runtime") from None
    with app.session() as s:
        try:
            report = core.maintain(s, opts, app.executor(s, dry_run, record=True))
        except LockedError:
            if app.quiet:  # an overlapping cron run: retry later, and no cron mail
                raise click.exceptions.Exit(ExitCode.LOCKED) from None
            raise
    if report.standby:
        if not app.quiet:
            click.echo("epstats maintain: skipped: the server is a hot standby (read-only)")
        return
    show_tasks(app, report.results, "maintain", dry_run)
