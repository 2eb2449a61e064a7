"""`epstats indexes plan|apply|status`."""

from __future__ import annotations

from typing import Any

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
@click.option(
    "--switch-method",
    is_flag=True,
    help="Show what `apply --switch-method` would run: rebuilding an index of another method.",
)
def plan_cmd(prune_redundant: bool, switch_method: bool) -> None:
    """Show each recommended index's state and the exact SQL `apply` would run.

    A timestamp index of method auto is measured first (at most 1,024 heap blocks read): the
    measurement, the sizes a btree and a BRIN would have, and the choice are shown. Also
    lists indices that are redundant (covered by another valid index) or unused (no scans
    since the statistics were reset), with their sizes. Changes nothing.

    Example: epstats indexes plan --format json
    """
    from epstats_cli import indexes as core
    from epstats_cli.execute import statements_text
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        plan = core.make_plan(
            s, prune_redundant=prune_redundant, measured=True, switch_method=switch_method
        )
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
    rec_rows: list[dict[str, Any]] = [
        {
            "name": r.spec.name,
            "columns": ", ".join(r.columns),
            "method": r.method,
            "state": r.state,
            "existing": r.existing,
            "detail": r.detail,
        }
        | ({"measurement": _measurement(r.choice)} if r.choice is not None else {})
        for r in plan.recommendations
    ]
    measured = [
        {"name": n, **_measurement(c)}
        for n, c in plan.choices.items()
        if c is not None and not any(r["name"] == n and "measurement" in r for r in rec_rows)
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
                Column("name", "Measured index", wrap=False),
                Column("choice", "Choice"),
                Column("btree_bytes", "Btree size", "bytes"),
                Column("brin_bytes", "BRIN size", "bytes"),
                Column("reason", "Why"),
            ],
            [{"name": r["name"], **r["measurement"]} for r in rec_rows if "measurement" in r]
            + measured,
            "Timestamp index by measurement",
            _measured_footer(rec_rows),
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
        "measured": measured,
        "redundant": red_rows,
        "unused": unused_rows,
        "stats_reset": plan.stats_reset,
        "steps": steps,
        "builds_in_progress": plan.builds,
    }
    app.out(Result(tables, doc))


def _measured_footer(rows: list[dict[str, Any]]) -> list[str]:
    windows = [
        f"{w}: btree {v['btree_blocks']}, brin {v['brin_blocks']}"
        for r in rows
        if "measurement" in r
        for w, v in r["measurement"].get("windows", {}).items()
    ]
    if not windows:
        return []
    return [
        "sampled at most 1,024 heap blocks of 32 block ranges (8 MB read); blocks read for "
        "an hour and a day anywhere and for the newest hour: " + "; ".join(windows)
    ]


def _measurement(choice: object) -> dict[str, Any]:
    """A measured choice as plan shows it: the choice, both sizes, why, and what was read."""
    from epstats_cli.index_method import Choice

    assert isinstance(choice, Choice)
    return {
        "choice": choice.method,
        "opclass": choice.opclass,
        "pages_per_range": choice.pages_per_range,
        "btree_bytes": choice.btree_bytes,
        "brin_bytes": choice.brin_bytes,
        "reason": choice.reason,
        **choice.measurement,
    }


@indexes.command("apply")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
@click.option(
    "--no-concurrently",
    is_flag=True,
    help="Plain CREATE/DROP INDEX: faster, but blocks writes for the whole build.",
)
@click.option("--prune-redundant", is_flag=True, help="Also drop redundant indices.")
@click.option(
    "--switch-method",
    is_flag=True,
    help="Rebuild an index of a recommended name but another method (btree <-> BRIN): the new "
    "one CONCURRENTLY under a temporary name, the names swapped, the old one dropped.",
)
def apply_cmd(
    dry_run: bool, no_concurrently: bool, prune_redundant: bool, switch_method: bool
) -> None:
    """Create missing recommended indices CONCURRENTLY and repair invalid leftovers.

    Each statement runs under lock_timeout with a bounded retry; an index with a
    recommended name but another definition is an error and nothing is changed. One of
    another method is left as it is, unless --switch-method.

    Example: epstats indexes apply --prune-redundant --dry-run
    """
    from epstats_cli import indexes as core

    app = get_app()
    with app.session() as s:
        plan, results = core.apply(
            s,
            app.executor(s, dry_run, record=True),
            concurrently=not no_concurrently,
            prune_redundant=prune_redundant,
            switch_method=switch_method,
        )
    if not switch_method:
        for r in plan.recommendations:
            if r.state == "switch":
                app.note(f"{r.spec.name}: {r.detail}")
    from epstats_cli.cli.tasks import show_tasks

    show_tasks(app, results, "indexes apply", dry_run)


@indexes.command("status")
def status_cmd() -> None:
    """Every index on the source table: validity, size, scans, redundancy, recommended or not.

    On a partitioned table, also each partition's state of each recommended index: attached
    (done), or what `indexes apply` does (attach, build, rebuild).

    The timestamp index is measured again (at most 1,024 heap blocks read): a warning says
    when its method no longer fits the table (a BRIN after late rows or retention by DELETE).

    Example: epstats indexes status --format csv
    """
    from epstats_cli import index_partitions
    from epstats_cli import indexes as core
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        plan = core.make_plan(s, measured=True)
    warnings = plan.warnings()
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
    footer += [f"warning: {w}" for w in warnings]
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
    doc: dict[str, Any] = {"table": str(plan.table), "indexes": rows, "warnings": warnings}
    tables = [table]
    if plan.partitioned:
        parts = index_partitions.status_rows(plan.partition_states)
        lacking = sorted({p["partition"] for p in parts if p["state"] != "attached"})
        tables.append(
            Table(
                [
                    Column("partition", "Partition", wrap=False),
                    Column("index", "Index", wrap=False),
                    Column("partition_index", "Its index", wrap=False),
                    Column("state", "State"),
                ],
                parts,
                f"Recommended indices on each partition of {plan.table}",
                [
                    f"{len(lacking)} partition(s) lack an attached index: "
                    "epstats indexes apply builds and attaches them"
                ]
                if lacking
                else [],
            )
        )
        doc["partitions"] = parts
    app.out(Result(tables, doc))
