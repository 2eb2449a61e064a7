"""`epstats status` (and, as they land, `check` and `advise`)."""

from __future__ import annotations

from typing import Any

import click

from epstats_cli.cli.app import get_app


def _kv(rows: list[tuple[str, Any, str]]) -> list[dict[str, Any]]:
    from epstats_cli.render import format_cell

    return [{"item": k, "value": format_cell(v, kind)} for k, v, kind in rows]


@click.command()
def status() -> None:
    """One-screen overview: server, database and source-table sizes, rows, vacuum state.

    Reads only the catalog and statistics views (never count(*)), so it is instant on
    any size and works on a hot standby and with a read-only role.

    Example: epstats status --format json
    """
    from epstats_cli import health
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        data = health.status(s)
    srv, tbl = data["server"], data["table"]
    kv_cols = [Column("item", "Item"), Column("value", "Value")]
    tables = [
        Table(
            kv_cols,
            _kv(
                [
                    ("server version", srv["server_version"], "text"),
                    ("database", srv["database"], "text"),
                    ("database size", srv["database_bytes"], "bytes"),
                    ("role", "standby (read-only)" if srv["in_recovery"] else "primary", "text"),
                    ("max_connections", srv["max_connections"], "int"),
                ]
            ),
            "Server",
        ),
    ]
    if not tbl["present"]:
        tables.append(
            Table(
                kv_cols,
                [{"item": "table", "value": tbl["name"] + " does not exist"}],
                f"Table {tbl['name']}",
                ["create it with: epstats init --with-requests-table"],
            )
        )
    else:
        dead_ratio = None
        live, dead = tbl["live_tuples"] or 0, tbl["dead_tuples"] or 0
        if live + dead:
            dead_ratio = dead / (live + dead)
        tables.append(
            Table(
                kv_cols,
                _kv(
                    [
                        ("estimated rows", tbl["estimated_rows"], "int"),
                        ("heap size", tbl["heap_bytes"], "bytes"),
                        ("index size", tbl["index_bytes"], "bytes"),
                        ("toast size", tbl["toast_bytes"], "bytes"),
                        ("total size", tbl["total_bytes"], "bytes"),
                        ("dead tuples", dead, "int"),
                        ("dead tuple ratio", dead_ratio, "pct"),
                        ("modified since analyze", tbl["modified_since_analyze"], "int"),
                        ("last vacuum", tbl["last_vacuum"], "ts"),
                        ("last autovacuum", tbl["last_autovacuum"], "ts"),
                        ("last analyze", tbl["last_analyze"], "ts"),
                        ("last autoanalyze", tbl["last_autoanalyze"], "ts"),
                        ("transaction id age", tbl["xid_age"], "int"),
                    ]
                ),
                f"Table {tbl['name']}",
                ["estimated rows come from the catalog (reltuples)"],
            )
        )
    app.out(Result(tables, data))
