"""Showing task results (indexes apply, maintenance) the same way everywhere."""

from __future__ import annotations

from collections.abc import Sequence

import click

from epstats_cli.cli.app import App
from epstats_cli.history import TaskResult


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
    # SQL is printed as copyable blocks below the table, not squeezed into a column.
    messages = []
    if dry_run or app.verbose:
        for r in results:
            if r.sql:
                messages.append(f"-- {r.task} {r.target}: {r.reason}\n{r.sql};\n")
    footer = []
    if dry_run:
        footer.append(
            "dry run: nothing was changed"
            + ("; the SQL follows" if messages else "" if results else "; nothing to do")
        )
    elif not results:
        footer.append("nothing to do")
    try:
        app.out(
            Result([Table(columns, rows, title, footer)], {"tasks": rows}, messages),
            force=bool(failed),
        )
    finally:  # on stderr for cron's mail even when stdout cannot be written (a full disk)
        for r in failed:
            click.echo(f"epstats: error: {r.task} {r.target}: {r.error or r.reason}", err=True)
    if failed:
        raise click.exceptions.Exit(1)
