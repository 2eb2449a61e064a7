"""`epstats tune plan|apply|status`."""

from __future__ import annotations

from typing import Any

import click

from epstats_cli.cli.app import get_app


@click.group()
def tune() -> None:
    """Plan, apply and inspect the source table's storage parameters (autovacuum for an
    insert-mostly log), from its measured insert rate.

    Example: epstats tune plan
    """


def _comparison_table(rows: list[dict[str, Any]], title: str, footer: list[str]) -> Any:
    from epstats_cli.render import Column, Table

    return Table(
        [
            Column("relation", "Relation", wrap=False),
            Column("parameter", "Parameter", wrap=False),
            Column("current", "Current"),
            Column("server_default", "Server's"),
            Column("recommended", "Recommended"),
            Column("state", "State"),
        ],
        rows,
        title,
        footer,
    )


@tune.command("plan")
def plan_cmd() -> None:
    """Show the measurement, each recommended parameter with its evidence, how every
    relation (each partition of a partitioned table) compares, and the SQL `apply` would run.
    Changes nothing.

    Example: epstats tune plan --format json
    """
    from epstats_cli import tune as core
    from epstats_cli.execute import statements_text
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        plan = core.make_plan(s)
        steps = [
            {
                "action": st.task,
                "target": st.target,
                "reason": st.reason,
                "sql": statements_text(s, st),
            }
            for st in plan.steps
        ]
    measured = plan.measurement.as_dict()
    settings = [
        {"parameter": x.parameter, "recommended": core.number(x.value), "reason": x.reason}
        for x in plan.settings
    ]
    tables = [
        Table(
            [Column("what", "Measured"), Column("value", "Value")],
            [{"what": k, "value": v} for k, v in measured.items()],
            f"Measured on {plan.table}",
        ),
        Table(
            [
                Column("parameter", "Parameter", wrap=False),
                Column("recommended", "Recommended"),
                Column("reason", "Why"),
            ],
            settings,
            "Recommended storage parameters",
            plan.notes,
        ),
        _comparison_table([c.as_dict() for c in plan.comparisons], "Current", []),
        Table(
            [
                Column("action", "Action"),
                Column("target", "Relation"),
                Column("reason", "Why"),
                Column("sql", "SQL"),
            ],
            steps,
            "What apply would run",
            [] if steps else ["nothing to do"],
        ),
    ]
    doc = {
        "table": str(plan.table),
        "measurement": measured,
        "recommended": settings,
        "notes": plan.notes,
        "relations": [c.as_dict() for c in plan.comparisons],
        "steps": steps,
    }
    app.out(Result(tables, doc))


@tune.command("apply")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
def apply_cmd(dry_run: bool) -> None:
    """Set the recommended storage parameters with ALTER TABLE ... SET (...), on the table or
    on each of its partitions, only where they differ; each statement under lock_timeout
    (SHARE UPDATE EXCLUSIVE: INSERTs do not wait for it).

    Example: epstats tune apply --dry-run
    """
    from epstats_cli import tune as core
    from epstats_cli.cli.tasks import show_tasks

    app = get_app()
    with app.session() as s:
        _plan, results = core.apply(s, app.executor(s, dry_run, record=True))
    show_tasks(app, results, "tune apply", dry_run)


@tune.command("status")
def status_cmd() -> None:
    """Each relation's storage parameters against the recommended ones (a partition created
    since the last `tune apply` shows as not set).

    Example: epstats tune status --format csv
    """
    from epstats_cli import tune as core
    from epstats_cli.render import Result

    app = get_app()
    with app.session() as s:
        plan = core.make_plan(s)
    rows = [c.as_dict() for c in plan.comparisons]
    off = [r for r in rows if r["state"] != "ok"]
    footer = [
        f"{len(off)} of {len(rows)} differ or are not set: epstats tune apply"
        if off
        else "every recommended parameter is set (a threshold within "
        f"{core.TOLERANCE:.0%} of the recommendation counts: the measured rate moves)"
        if rows
        else "nothing recommended",
        *plan.notes,
    ]
    table = _comparison_table(rows, f"Storage parameters of {plan.table}", footer)
    app.out(Result([table], {"table": str(plan.table), "relations": rows, "notes": plan.notes}))
