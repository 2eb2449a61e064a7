"""What each command is, by command path: whether it changes the database (the one list
App.session consults) and which output formats it can produce (the one list --format consults).

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
        "tune apply",
        "partition apply",
        "generate",
        "demo",
    }
)
# Read-only commands whose rights preflight.py checks before they run, as a changing one's:
# all missing ones named at once.
PREFLIGHT_READ_ONLY = frozenset({"view verify"})
# Read-only commands that read database.replica_dsn when it is set (App._reading); the rest
# stay on the primary: activity counters (pg_stat_*) are per server and not replicated.
REPLICA_READS = frozenset({"report top", "report endpoint", "view verify"})
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
        "tune plan",
        "tune status",
        "partition plan",
        "partition status",
    }
)


# Every value --format takes. openmetrics is written by cli/health.py (check, status).
FORMATS = ("table", "json", "csv", "yaml", "openmetrics")
TABULAR = ("table", "json", "csv")
# Which formats each command can produce; a command path missing here cannot run (like one
# missing from CHANGING/READ_ONLY), so a new command is given its formats on purpose.
PRODUCES: dict[str, tuple[str, ...]] = {
    "init": TABULAR,
    "config show": ("table", "json", "yaml"),
    "config check": ("table", "json"),
    "indexes plan": TABULAR,
    "indexes apply": TABULAR,
    "indexes status": TABULAR,
    "view build": TABULAR,
    "view refresh": TABULAR,
    "view status": TABULAR,
    "view verify": TABULAR,
    "vacuum": TABULAR,
    "analyze": TABULAR,
    "reindex": TABULAR,
    "maintain": TABULAR,
    "tune plan": TABULAR,
    "tune apply": TABULAR,
    "tune status": TABULAR,
    "partition plan": TABULAR,
    "partition apply": TABULAR,
    "partition status": TABULAR,
    "generate": ("table", "json"),
    "report top": TABULAR,
    "report endpoint": TABULAR,
    "endpoints": TABULAR,
    "check": ("table", "json", "openmetrics"),
    "status": (*TABULAR, "openmetrics"),
    "advise": (*TABULAR, "yaml"),
    "demo": ("table",),
}


def formats(path: str) -> tuple[str, ...]:
    """The --format values command `path` can produce; LookupError for an unlisted command."""
    try:
        return PRODUCES[path]
    except KeyError:
        raise LookupError(
            f"command {path!r} is not listed in epstats_cli/cli/kinds.py PRODUCES: "
            "say which --format values it can produce"
        ) from None


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
