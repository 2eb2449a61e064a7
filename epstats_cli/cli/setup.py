"""`epstats init` and `epstats config show|check`."""

from __future__ import annotations

import os

import click

from epstats_cli.cli.app import get_app


@click.command()
@click.option("--with-requests-table", is_flag=True, help="Also create the source table.")
@click.option("--dry-run", is_flag=True, help="Print the SQL that would run; change nothing.")
def init(with_requests_table: bool, dry_run: bool) -> None:
    """Create the epstats schema: run history and rollup state. Idempotent.

    With --with-requests-table, also create the guide's requests table (endpoint text,
    timestamp timestamptz, response_time double precision, status integer) under the
    configured names, for a new deployment.

    Example: epstats init --with-requests-table --dry-run
    """
    from epstats_cli import schema
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    with app.session() as s:
        steps = schema.init(s, with_requests_table, app.executor(s, dry_run, record=True))
    verb = "would create" if dry_run else "created"
    rows = [
        {"object": st.object, "action": "exists" if st.present else verb, "sql": st.statement}
        for st in steps
    ]
    columns = [Column("object", "Object"), Column("action", "Action")]
    if dry_run or app.verbose:
        columns.append(Column("sql", "SQL"))
    changed = sum(1 for st in steps if not st.present)
    footer = [
        "dry run: nothing was changed"
        if dry_run
        else (f"{changed} object(s) created" if changed else "nothing to do: all present")
    ]
    app.out(Result([Table(columns, rows, "epstats init", footer)], {"objects": rows}))


@click.group()
def config() -> None:
    """Show or check the effective configuration.

    Example: epstats -c epstats.yaml config check
    """


@config.command("show")
def config_show() -> None:
    """Print the effective configuration, secrets redacted.

    Passwords in DSNs and the value of database.password_env (users have put the password
    itself there) are shown as ***. --format yaml (or table) prints the file's shape,
    --format json the same data as JSON.

    Example: epstats config show --format json
    """
    import yaml

    from epstats_cli.config import as_dict, redact_dsn

    app = get_app()
    data = as_dict(app.config)
    env_dsn = app.dsn_option or os.environ.get("EPSTATS_DSN")
    if env_dsn:
        data["database"]["dsn"] = redact_dsn(env_dsn)
    if app.fmt == "json":
        import json

        click.echo(json.dumps(data, indent=2))
        return
    origin = app.config.path or "built-in defaults"
    click.echo(f"# effective configuration (from {origin})")
    click.echo(yaml.safe_dump(data, sort_keys=False).rstrip())


@config.command("check")
def config_check() -> None:
    """Validate the configuration: exit 0 when valid, 3 with every problem listed.

    Example: epstats -c config.example.yaml config check
    """
    import json

    from epstats_cli.errors import ConfigError

    app = get_app()
    try:
        cfg = app.config
    except ConfigError as exc:  # exit 3, every problem on stderr; JSON readers get them too
        if app.fmt == "json":
            path = str(app.config_path) if app.config_path else None
            click.echo(json.dumps({"valid": False, "path": path, "problems": exc.problems}))
        raise
    origin = cfg.path or "built-in defaults"
    if app.fmt == "json":
        click.echo(json.dumps({"valid": True, "path": cfg.path}))
    elif not app.quiet:
        click.echo(f"configuration OK ({origin})")
