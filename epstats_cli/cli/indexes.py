"""`epstats indexes plan|apply|status`."""

from __future__ import annotations

import click

from epstats_cli.cli.app import get_app


@click.group()
def indexes() -> None:
    """Plan, apply and inspect the recommended indices on the source table.

    Example: epstats indexes plan
    """


@indexes.command("plan")
@click.option(
    "--prune-redundant",
    is_flag=True,
    help="Show what `apply --prune-redundant` would run: the drops of redundant indices too.",
)
def plan_cmd(prune_redundant: bool) -> None:
    """Show each recommended index's state and the exact SQL `apply` would run.

    Also lists indices that are redundant (covered by another valid index) or unused
    (no scans since the statistics were reset), with their sizes. Changes nothing.

    Example: epstats indexes plan --format json
    """
    from epstats_cli import indexes as core
    from epstats_cli.execute import statements_text
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        plan = core.make_plan(s, prune_redundant=prune_redundant)
        steps = [
            {
                "action": st.task,
                "target": st.target,
                "reason": st.reason,
                "sql": statements_text(s, st),
            }
            for st in plan.steps
        ]
    sizes = {i.name: i.size_bytes for i in plan.indexes}
    rec_rows = [
        {
            "name": r.spec.name,
            "columns": ", ".join(r.columns),
            "method": r.spec.method,
            "state": r.state,
            "existing": r.existing,
            "detail": r.detail,
        }
        for r in plan.recommendations
    ]
    red_rows = [
        {"name": n, "covered_by": c, "size_bytes": sizes[n]}
        for n, c in sorted(plan.redundant.items())
    ]
    unused_rows = [
        {"name": i.name, "size_bytes": i.size_bytes, "definition": i.definition}
        for i in plan.unused
    ]
    since = f"since {plan.stats_reset:%Y-%m-%d %H:%M}" if plan.stats_reset else "since stats began"
    tables = [
        Table(
            [
                Column("name", "Recommended index", wrap=False),
                Column("columns", "Columns"),
                Column("method", "Method"),
                Column("state", "State"),
                Column("existing", "Existing"),
                Column("detail", "Detail"),
            ],
            rec_rows,
            f"Indices on {plan.table}",
        ),
        Table(
            [
                Column("name", "Redundant index", wrap=False),
                Column("covered_by", "Covered by", wrap=False),
                Column("size_bytes", "Size", "bytes"),
            ],
            red_rows,
            "Redundant",
            (
                [
                    "dropped by: epstats indexes apply --prune-redundant"
                    + ("" if prune_redundant else " (not by plain apply)")
                ]
                if red_rows
                else []
            ),
        ),
        Table(
            [
                Column("name", "Unused index", wrap=False),
                Column("size_bytes", "Size", "bytes"),
                Column("definition", "Definition"),
            ],
            unused_rows,
            f"Unused ({since})",
        ),
        Table(
            [
                Column("action", "Action"),
                Column("target", "Index"),
                Column("reason", "Why"),
                Column("sql", "SQL"),
            ],
            steps,
            "What apply --prune-redundant would run" if prune_redundant else "What apply would run",
            [] if steps else ["nothing to do"],
        ),
    ]
    doc = {
        "table": str(plan.table),
        "recommended": rec_rows,
        "redundant": red_rows,
        "unused": unused_rows,
        "stats_reset": plan.stats_reset,
        "steps": steps,
        "builds_in_progress": plan.builds,
    }
    app.out(Result(tables, doc))


@indexes.command("apply")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
@click.option(
    "--no-concurrently",
    is_flag=True,
    help="Plain CREATE/DROP INDEX: faster, but blocks writes for the whole build.",
)
@click.option("--prune-redundant", is_flag=True, help="Also drop redundant indices.")
def apply_cmd(dry_run: bool, no_concurrently: bool, prune_redundant: bool) -> None:
    """Create missing recommended indices CONCURRENTLY and repair invalid leftovers.

    Each statement runs under lock_timeout with a bounded retry; an index with a
    recommended name but another definition is an error and nothing is changed.

    Example: epstats indexes apply --prune-redundant --dry-run
    """
    from epstats_cli import indexes as core

    app = get_app()
    with app.session() as s:
        _plan, results = core.apply(
            s,
            app.executor(s, dry_run, record=True),
            concurrently=not no_concurrently,
            prune_redundant=prune_redundant,
        )
    from epstats_cli.cli.tasks import show_tasks

    show_tasks(app, results, "indexes apply", dry_run)


@indexes.command("status")
def status_cmd() -> None:
    """Every index on the source table: validity, size, scans, redundancy, recommended or not.

    Example: epstats indexes status --format csv
    """
    from epstats_cli import indexes as core
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        plan = core.make_plan(s)
    recommended = {r.existing: r.spec.name for r in plan.recommendations if r.existing}
    rows = [
        {
            "name": i.name,
            "columns": ", ".join(i.columns) or i.definition,
            "method": i.method,
            "valid": i.valid,
            "size_bytes": i.size_bytes,
            "scans": i.scans,
            "redundant_of": plan.redundant.get(i.name),
            "recommended": i.name in recommended,
            "unique": i.is_unique or i.is_primary,
        }
        for i in plan.indexes
    ]
    footer = [
        f"table {plan.table}; scans since "
        + (f"{plan.stats_reset:%Y-%m-%d %H:%M}" if plan.stats_reset else "stats began")
    ]
    if plan.builds:
        footer.append(
            "index builds running now: "
            + ", ".join(f"pid {b['pid']} ({b['phase']})" for b in plan.builds)
        )
    table = Table(
        [
            Column("name", "Index", wrap=False),
            Column("columns", "Columns"),
            Column("method", "Method"),
            Column("valid", "Valid", "bool"),
            Column("unique", "Unique", "bool"),
            Column("size_bytes", "Size", "bytes"),
            Column("scans", "Scans", "int"),
            Column("redundant_of", "Redundant of", wrap=False),
            Column("recommended", "Recommended", "bool"),
        ],
        rows,
        f"Indices on {plan.table}",
        footer,
    )
    app.out(Result([table], {"table": str(plan.table), "indexes": rows}))
