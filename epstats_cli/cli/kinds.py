"""Which commands change the database, by command path: the one list App.session consults.

A changing command connects to database.maintenance_dsn (default: the primary DSN) and needs
one server session: through a pooler in transaction or statement mode it refuses (exit 3). A
read-only command connects to the primary DSN and works through any pooler. A command that is
in neither set cannot open a session (tests/test_pooler.py enumerates them all), so a new
command cannot be forgotten. --dry-run does not change the kind: it shows the real run,
refusals included.
"""

from __future__ import annotations

import click

CHANGING = frozenset(
    {
        "init",
        "indexes apply",
        "view build",
        "view refresh",
        "vacuum",
        "analyze",
        "reindex",
        "maintain",
        "generate",
        "demo",
    }
)
READ_ONLY = frozenset(
    {
        "config show",
        "config check",
        "indexes plan",
        "indexes status",
        "view status",
        "view verify",
        "report top",
        "report endpoint",
        "check",
        "status",
        "advise",
        "endpoints",
    }
)


def command_path(ctx: click.Context) -> str:
    """`indexes apply` for the running subcommand (without the program name)."""
    names: list[str] = []
    while ctx.parent is not None:
        names.append(ctx.info_name or "")
        ctx = ctx.parent
    return " ".join(reversed(names))


def changes(path: str) -> bool:
    """True for a command that changes the database; LookupError for an unclassified one."""
    if path in CHANGING:
        return True
    if path in READ_ONLY:
        return False
    raise LookupError(
        f"command {path!r} is not classified in epstats_cli/cli/kinds.py "
        "(CHANGING or READ_ONLY): it cannot open a session"
    )
