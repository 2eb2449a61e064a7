"""Before a changing command runs (and in its --dry-run): every right it will need, read from
the catalog, and a refusal that names each one missing with what gives it, all at once.

`require(session, command, params)` is called by the command layer when a changing command
opens its session. What a command needs comes from the same facts its planner reads (what
`init` would create, what `indexes apply` would build, whether the rollup exists), so a right
is asked for only when the command would use it. A right that one task needs (VACUUM of a
table the role does not own, REINDEX, a refresh within `maintain`) belongs to that task: the
task fails with it, recorded, and the others still run; such rights are listed here only
beside one the whole command cannot run without (recording its run, reading what it plans
from), so that the DBA sees everything missing in one go.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import IO, Any

import click

from epstats_cli import indexes, keep, rights, schedule, tune
from epstats_cli.catalog import relation, relation_exists
from epstats_cli.config import QualifiedName, quote_ident
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed
from epstats_cli.maintenance import task_needs
from epstats_cli.rights import Needs
from epstats_cli.rollup.build import OWN_INDEXES, new_name
from epstats_cli.rollup.inspect import COLUMNS
from epstats_cli.schema import plan_init

BUILD = "build the rollup"


@dataclass
class Required:
    """What a command needs: for itself (without these it cannot run at all), for its tasks
    (a task that lacks one fails with it, and the others run), and what is known to be
    refused already (by the planner's own checks, e.g. what a replaced rollup must keep)."""

    whole: Needs = field(default_factory=Needs)
    tasks: Needs = field(default_factory=Needs)
    refusals: list[rights.Lack] = field(default_factory=list)


class RightsMissing(OperationFailed):
    """A command refused before it ran because the role lacks rights it needs: every one of
    them, a line each (exit 1, an operation that cannot succeed)."""

    def __init__(self, role: str, command: str, lacks: list[rights.Lack], dry_run: bool) -> None:
        self.lacks = lacks
        verb = "would fail" if dry_run else "was not run"
        count = f"{len(lacks)} right{'s' if len(lacks) != 1 else ''}"
        self.head = (
            f"`epstats {command}` {verb}: role {quote_ident(role)} lacks {count} it needs "
            "(grant them, then run it again):"
        )
        super().__init__(f"{self.head} {rights.summary(lacks)}")

    def show(self, file: IO[Any] | None = None) -> None:
        for line in [self.head, *(f"  {lack}" for lack in self.lacks)]:
            click.echo(f"epstats: error: {line}", file=file, err=file is None)


def _init_needs(session: Session, with_requests_table: bool) -> Needs:
    """CREATE where `init` creates something (the database's for a schema, the schema's for a
    table in one that exists), the owner's rights where it upgrades one of epstats' tables."""
    missing = [f.object for f, _q in plan_init(session, with_requests_table) if not f.present]
    needs = Needs()
    if not missing:
        return needs
    rights.record_needs(session, needs)
    if not _schema_exists(session, "epstats"):
        needs.in_database("CREATE", why="create schema epstats")
    elif any(o.startswith(("table epstats.", "index epstats.")) for o in missing):
        needs.in_schema("epstats", "USAGE", "CREATE", why="create epstats' tables")
    for o in missing:
        if o.startswith("status "):  # a new status in the CHECK constraint of epstats.runs
            needs.owned(rights.RUNS, why="upgrade epstats.runs")
        elif o.startswith("column epstats."):
            own = o.removeprefix("column epstats.").split(".")[0]
            needs.owned(QualifiedName("epstats", own), why=f"upgrade epstats.{own}")
    table = session.config.source.table
    if with_requests_table and not _schema_exists(session, table.schema):
        needs.in_database("CREATE", why=f"create schema {quote_ident(table.schema)}")
    elif with_requests_table and not relation_exists(session, table.schema, table.name):
        needs.in_schema(table.schema, "USAGE", "CREATE", why=f"create table {table}")
    return needs


def _schema_exists(session: Session, schema: str) -> bool:
    return bool(session.value("catalog/schema_exists", {"schema": schema}))


def _maintenance(task: str) -> Callable[[Session, Mapping[str, Any]], Required]:
    """vacuum, analyze, reindex: recording the run; each table's right is the task's."""

    def needs(session: Session, params: Mapping[str, Any]) -> Required:
        return Required(rights.record_needs(session), task_needs(session, task))

    return needs


def _maintain(session: Session, params: Mapping[str, Any]) -> Required:
    """Recording and reading the run history; the rollup's as-of when refresh or verify may
    run (its parameters are checked first); each selected task's own rights."""
    selected = set(schedule.ORDER)
    if params.get("only"):
        selected &= schedule.parse_tasks(params["only"])
    selected -= schedule.parse_tasks(params.get("skip"))
    whole = rights.record_needs(session)
    if selected & {"refresh", "verify", "retention"}:  # (require_parameters reads rollup_state)
        whole.merge(rights.facts_needs(session))
    tasks = Needs()
    for task in schedule.ORDER:
        if task in selected:
            tasks.merge(task_needs(session, task))
    return Required(whole, tasks)


def _view_build(session: Session, params: Mapping[str, Any]) -> Required:
    """A new rollup: CREATE in its schema, SELECT on the source, its state row. Replacing one
    also drops the old one and gives the new one its owner, grants and views: what the role
    cannot keep of them (keep.inspect) is refused, with the rest."""
    shape = rights.rollup_shape(session)
    whole = rights.facts_needs(session)
    replace = bool(params.get("replace"))
    if shape.exists and not replace:
        return Required(whole)  # already built, or refused for want of --replace
    rights.record_needs(session, whole)
    view = session.config.view_name
    whole.on(session.config.source.table, "SELECT", why=BUILD)
    if shape.state_table:
        whole.on(rights.STATE, "SELECT", "INSERT", "UPDATE", why="record the build")
    whole.merge(rights.map_needs(session, writes=True))
    found = relation(session, view.schema, view.name)
    if found is None:
        whole.in_schema(view.schema, "USAGE", "CREATE", why=BUILD)
        return Required(whole)
    if shape.state_table:
        whole.on(rights.STATE, "DELETE", why="move the old rollup's state row")
    spare = new_name(view)
    if relation_exists(session, spare.schema, spare.name):
        whole.merge(rights.spare_needs(session))
    kept = keep.inspect(session, found.oid, view, found.owner, OWN_INDEXES, COLUMNS)
    why = "to replace it and keep what it has"
    # one line each, each once (every view in a schema the role may not create in says so)
    problems = list(dict.fromkeys(p for r in kept.refusals for p in r.split("; ")))
    return Required(whole, refusals=[rights.Lack(p, why, "") for p in problems])


def _view_refresh(session: Session, params: Mapping[str, Any]) -> Required:
    needs = rights.record_needs(session).merge(rights.facts_needs(session))
    return Required(needs.merge(rights.refresh_needs(session, bool(params.get("full")))))


def _view_verify(session: Session, params: Mapping[str, Any]) -> Required:
    """Read-only: what the rollup was built with (rollup_state), its as-of, the raw rows."""
    return Required(rights.verify_needs(session, False).merge(rights.facts_needs(session)))


def _indexes_apply(session: Session, params: Mapping[str, Any]) -> Required:
    """CREATE INDEX and DROP INDEX need the table owner's rights (MAINTAIN does not give
    them), and CREATE INDEX also CREATE on the table's schema, when the plan does them."""
    table = session.config.source.table
    if not relation_exists(session, table.schema, table.name):
        return Required()  # the command says so itself
    switch = bool(params.get("switch_method"))
    plan = indexes.make_plan(
        session,
        not params.get("no_concurrently"),
        bool(params.get("prune_redundant")),
        measured=switch,
        switch_method=switch,
    )
    whole = Needs()
    if plan.steps:
        rights.record_needs(session, whole)
        whole.owned(table, why="CREATE INDEX, DROP INDEX")
    if any(step.task == "create" for step in plan.steps):
        whole.in_schema(table.schema, "CREATE", why="CREATE INDEX")
    return Required(whole)


def _generate(session: Session, params: Mapping[str, Any]) -> Required:
    table = session.config.source.table
    whole = rights.record_needs(session)
    if relation_exists(session, table.schema, table.name):
        whole.on(table, "INSERT", why="load the generated rows")
        if params.get("truncate"):
            whole.on(table, "TRUNCATE", why="--truncate")
    elif params.get("create_table"):
        whole.merge(_init_needs(session, with_requests_table=True))
    return Required(whole)


COMMANDS: dict[str, Callable[[Session, Mapping[str, Any]], Required]] = {
    "init": lambda s, p: Required(_init_needs(s, bool(p.get("with_requests_table")))),
    "vacuum": _maintenance("vacuum"),
    "analyze": _maintenance("analyze"),
    "reindex": _maintenance("reindex"),
    "maintain": _maintain,
    "view build": _view_build,
    "view refresh": _view_refresh,
    "view verify": _view_verify,
    "indexes apply": _indexes_apply,
    "generate": _generate,
    "tune apply": lambda s, p: Required(tune.apply_needs(s)),
}


def command_needs(session: Session, command: str, params: Mapping[str, Any]) -> Required:
    """What a changing command needs; nothing for one not listed (demo runs on its own
    embedded server, as its superuser)."""
    if command not in COMMANDS:
        return Required()
    return COMMANDS[command](session, params)


def require(session: Session, command: str, params: Mapping[str, Any]) -> None:
    """RightsMissing naming every right the command (and its tasks) need and the role lacks,
    when the command itself cannot run; a task's own missing right is left to the task."""
    if session.server.in_recovery:
        return  # a standby changes nothing: the command says so itself
    try:
        required = command_needs(session, command, params)
    except ValueError:
        return  # a bad --only or --skip: the command's own usage error
    if not rights.lacking(session, required.whole):
        return  # (what the planner refuses alone, it says in its own words)
    lacks = rights.lacking(session, Needs().merge(required.whole).merge(required.tasks))
    lacks += required.refusals
    raise RightsMissing(session.server.user, command, lacks, bool(params.get("dry_run")))
