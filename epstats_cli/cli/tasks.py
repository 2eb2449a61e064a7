"""Showing task results (indexes apply, maintenance) the same way everywhere."""

from __future__ import annotations

from collections.abc import Sequence

import click

from epstats_cli.cli.app import App
from epstats_cli.execute import TaskResult


def show_tasks(app: App, results: Sequence[TaskResult], title: str, dry_run: bool) -> None:
    """Summary table / SPEC.md JSON; exit 1 when a task failed (printed even with --quiet)."""
    from epstats_cli.render import Column, Result, Table

    failed = [r for r in results if r.status == "failed"]
    rows = [r.as_dict() for r in results]
    columns = [
        Column("task", "Task"),
        Column("target", "Target"),
        Column("status", "Status"),
        Column("seconds", "Seconds", "seconds"),
        Column("reason", "Reason"),
    ]
    if dry_run or app.verbose:
        columns.append(Column("sql", "SQL"))
    footer = []
    if dry_run:
        footer.append("dry run: nothing was changed")
    elif not results:
        footer.append("nothing to do")
    app.out(Result([Table(columns, rows, title, footer)], {"tasks": rows}), force=bool(failed))
    if failed:
        for r in failed:
            click.echo(f"epstats: error: {r.task} {r.target}: {r.error or r.reason}", err=True)
        raise click.exceptions.Exit(1)
