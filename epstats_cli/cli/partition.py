"""`epstats partition plan|apply|status`."""

from __future__ import annotations

from typing import Any

import click

from epstats_cli.cli.app import get_app

INTERVAL = click.Choice(["day", "week", "month"])


@click.group()
def partition() -> None:
    """Convert the source table online to range partitions by day, week or month (local
    midnights in source.timezone), and see its partitions.

    Example: epstats partition plan
    """


def _steps(session: Any, steps: list[Any]) -> list[dict[str, Any]]:
    from epstats_cli.execute import statements_text

    return [
        {
            "action": s.task,
            "target": s.target,
            "reason": s.reason,
            "sql": statements_text(session, s),
        }
        for s in steps
    ]


@partition.command("plan")
@click.option("--interval", type=INTERVAL, help="Partition by this (default: partition.interval).")
@click.option("--drop-unique", is_flag=True, help="Plan to replace a key without the timestamp.")
def plan_cmd(interval: str | None, drop_unique: bool) -> None:
    """Show where the table stands, the interval chosen and why, the partitions, what cannot
    be kept (a PRIMARY KEY or UNIQUE constraint without the timestamp column), and every
    statement `apply` would run. Changes nothing.

    Example: epstats partition plan --interval week --format json
    """
    from epstats_cli import partition_convert as core
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        plan = core.make_plan(s, interval, drop_unique)
        steps = _steps(s, plan.steps)
    parts = [
        {
            "first_day": str(b.first_day),
            "last_day": str(b.end_day.fromordinal(b.end_day.toordinal() - 1)),
            "from": b.lower_value,
            "to": b.upper_value,
        }
        for b in plan.partitions
    ]
    footer = [plan.state.said, *plan.notes, *[f"refused: {r}" for r in plan.refusals]]
    if plan.interval:
        footer.insert(1, f"interval: {plan.interval} ({plan.interval_reason})")
    tables = [
        Table(
            [
                Column("first_day", "First day"),
                Column("last_day", "Last day"),
                Column("from", "From"),
                Column("to", "To"),
            ],
            parts,
            f"Partitions of {plan.table}",
            footer,
        ),
        Table(
            [Column("action", "Action"), Column("target", "Relation"), Column("reason", "Why")],
            [{k: v for k, v in st.items() if k != "sql"} for st in steps],
            "What apply would run (--dry-run shows the SQL)",
            [] if steps else ["nothing to do"],
        ),
    ]
    doc = {
        "table": str(plan.table),
        "state": plan.state.stage,
        "interval": plan.interval or None,
        "interval_reason": plan.interval_reason or None,
        "partitions": parts,
        "unique": [u["name"] for u in plan.uniques],
        "refusals": plan.refusals,
        "notes": plan.notes,
        "steps": steps,
    }
    app.out(Result(tables, doc))


@partition.command("apply")
@click.option("--interval", type=INTERVAL, help="Partition by this (default: partition.interval).")
@click.option(
    "--drop-unique",
    is_flag=True,
    help="Replace a PRIMARY KEY or UNIQUE constraint without the timestamp by a plain index.",
)
@click.option("--drop-old", is_flag=True, help="Drop the replaced table once swapped.")
@click.option("--rollback", is_flag=True, help="Undo a conversion under way instead.")
@click.option(
    "--dry-run", is_flag=True, help="Print every statement that would run; change nothing."
)
def apply_cmd(
    interval: str | None, drop_unique: bool, drop_old: bool, rollback: bool, dry_run: bool
) -> None:
    """Convert the table online: build the partitioned table beside it, capture new rows with
    a trigger, copy the rows in batches, then swap in one short transaction under
    lock_timeout (retried). An interrupted apply resumes where it stopped; --rollback removes
    what it built. The old table is kept as <table>_retired until --drop-old or `cleanup`
    after partition.keep_old.

    Example: epstats partition apply --dry-run
    """
    from epstats_cli import partition_convert as core
    from epstats_cli.cli.tasks import show_tasks

    app = get_app()
    with app.session() as s:
        _plan, results = core.apply(
            s, app.executor(s, dry_run, record=True), interval, drop_unique, drop_old, rollback
        )
    show_tasks(app, results, "partition apply", dry_run)


@partition.command("status")
def status_cmd() -> None:
    """The table's partitions with their local days and estimated rows, the default
    partition's rows, how far ahead partitions exist, and a conversion under way.

    Example: epstats partition status --format json
    """
    from epstats_cli import partition_ahead
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        status = partition_ahead.status(s)
    rows = status.rows
    table = Table(
        [
            Column("name", "Partition", wrap=False),
            Column("first_day", "First day"),
            Column("last_day", "Last day"),
            Column("rows", "Rows (est.)", "int"),
        ],
        rows,
        f"Partitions of {status.table}",
        status.lines,
    )
    app.out(Result([table], status.as_dict()))
