"""`view build`: create the rollup in one transaction, or build a new one beside the old one
and swap it in with a second, short transaction (`--replace`).

The transaction that builds a rollup records in epstats.rollup_state that epstats built it
(its oid) and with what parameters; its COMMENT is its users': a first build describes the
rollup there, a replacement carries the old one's comment over (an earlier epstats's mark,
`epstats rollup: {...}`, is not carried: the new one gets the description).

A replacement keeps what the old one had (keep.py: owner, grants, comments, other indices, the
views that read it; carry.py: settings, row-level security and policies, triggers, rules,
constraints, statistics; the comments, storage parameters and tablespaces of the indices it has
of its own) or is refused before anything is built. One `--replace` of a rollup runs at a
time (an advisory lock held across both transactions); the new one that a replacement stopped
between them leaves behind is dropped by the next `--replace`, or by the cleanup task.

With retention, a replacement carries the old rollup's days up to the retention horizon over
(their raw rows are retired) and refuses new parameters unless `--keep-retired`.

This module is over 400 lines because a replacement's every rule (what it keeps, the spare a
stopped one leaves, the retired days it carries) is planned here, in one place.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass
from dataclasses import replace as replace_fields
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import carry, endpoints, keep, source
from epstats_cli.catalog import relation, source_oid
from epstats_cli.config import Config, QualifiedName, ViewConfig, retention_problems
from epstats_cli.db import Session
from epstats_cli.db import now as db_now
from epstats_cli.endpoints import Normalization
from epstats_cli.errors import ConfigError, OperationFailed
from epstats_cli.execute import CONFLICTS_SHARE_UPDATE_EXCLUSIVE, Executor, Mode, Statement, Step
from epstats_cli.history import TaskResult
from epstats_cli.rollup import state
from epstats_cli.rollup.aggregate import definition, insert, planner_settings
from epstats_cli.rollup.inspect import (
    COLUMNS,
    DESCRIPTION,
    KIND_SQL,
    RollupFacts,
    differences,
    facts,
    parameters,
    parse_comment,
    require_mark,
    state_table_exists,
    strategy_of,
)
from epstats_cli.schema import require_current

# SQLSTATE 2BP01: the old rollup cannot be dropped while views of its own depend on it.
DEPENDENT_OBJECTS = "2BP01"


@dataclass(frozen=True)
class Retired:
    """What a replacement carries over from the old rollup: its days up to the retention
    horizon `through` (their raw rows are retired), its `columns` (those it has)."""

    through: dt.date
    old: tuple[str, str]
    columns: tuple[str, ...]


def index_names(name: str) -> tuple[str, str]:
    """The rollup's (endpoint, day) key and day index."""
    base = name[:40]
    return f"{base}_endpoint_day_key", f"{base}_day_idx"


def new_name(name: QualifiedName) -> QualifiedName:
    """Where --replace builds the new rollup, beside the old one."""
    return QualifiedName(name.schema, f"{name.name[:48]}_epstats_new")


def _create(
    session: Session,
    strategy: str,
    target: QualifiedName,
    columns: source.SourceColumns,
    describe: bool,
    settings: Sequence[Statement] = (),
    own: Sequence[Statement] = (),
    retired: Retired | None = None,
) -> list[Statement]:
    """The new rollup at `target`, with DESCRIPTION as its comment when `describe`, and the
    `settings` a replacement keeps (before it is filled) and those of its own indices (`own`,
    once they exist; before a materialized view is filled, which builds them again). With
    `retired` (incremental only), the days up to the retention horizon are copied from the old
    rollup and only the later ones aggregated from the raw rows."""
    view = (target.schema, target.name)
    key_index, day_index = index_names(target.name)
    norm = Normalization.of(session.config)
    basis = source.Basis.of(session.config, columns)
    st = session.statement
    rows = definition(session, basis, norm)
    fill = [Statement(insert(session, view, list(COLUMNS), rows))]
    if retired is not None:
        later = definition(session, basis, norm, source.since(session, basis))
        after = {"from_day": retired.through + dt.timedelta(days=1)}
        names = sql.SQL(", ").join(sql.Identifier(c) for c in retired.columns)
        copy = st("view/copy_retired", view=view, old=retired.old, columns=names)
        fill = [
            Statement(copy, {"through": retired.through}),
            Statement(insert(session, view, list(COLUMNS), later), after),
        ]
    if strategy == "materialized":
        statements = [  # the guide's view, with weighted averages and the bookkeeping row
            Statement(st("view/create_materialized", view=view, definition=rows)),
            *settings,
            # REFRESH ... CONCURRENTLY needs a unique index
            Statement(st("view/create_unique_index", index=key_index, view=view)),
            Statement(st("view/create_day_index", index=day_index, view=view)),
            *own,
            Statement(st("view/refresh_plain", view=view)),  # first population
        ]
    else:
        statements = [
            # a table, so single days can be replaced
            Statement(st("view/create_table", view=view)),
            *settings,
            *fill,
            Statement(st("view/create_unique_index", index=key_index, view=view)),
            Statement(st("view/create_day_index", index=day_index, view=view)),
            *own,
        ]
    statements.append(Statement(st("view/analyze", view=view)))  # reports plan from it at once
    # the aggregate hashes its groups (and, joining the map, is planned without Memoize)
    statements = [Statement(q) for q in planner_settings(session, norm)] + statements
    kind = sql.SQL(KIND_SQL[strategy])
    if describe:
        remark = sql.Literal(DESCRIPTION)
        statements.append(Statement(st("view/comment", kind=kind, view=view, comment=remark)))
    return statements


# Indices a replacement does not carry over, as the server prints them after USING (unique,
# text): epstats's own (endpoint, day) key and (day), and those they make redundant (such as
# the guide's (endpoint), a left prefix of the key).
OWN_INDEXES = {
    (True, "btree (endpoint, day)"),
    (False, "btree (endpoint, day)"),
    (False, "btree (day)"),
    (False, "btree (endpoint)"),
}
# The CHECK constraint of the incremental rollup's table, as the server prints it: a
# replacement has it of its own (others are carried over).
OWN_CHECKS = {
    "CHECK ((((endpoint IS NULL) = (as_of IS NOT NULL)) AND ((endpoint IS NULL) = (day IS NULL))))"
}


def _own_index_settings(
    session: Session, kept: keep.Keep, name: QualifiedName, target: QualifiedName
) -> list[Statement]:
    """The comments, storage parameters and tablespaces of rollup `name`'s own indices (by
    shape: the (endpoint, day) key, the day index), for those of its replacement at `target`:
    of the one of the same name, else of the first."""
    out = []
    key_index, day_index = index_names(target.name)
    final_key, final_day = index_names(name.name)
    for new_index, final, shapes in (
        (key_index, final_key, {"btree (endpoint, day)"}),
        (day_index, final_day, {"btree (day)"}),
    ):
        old = [i for i in kept.own if i["shape"] in shapes]
        old.sort(key=lambda i: i["name"] != final)
        if not old:
            continue
        index = QualifiedName(target.schema, new_index)
        out += carry.options(session, sql.SQL("INDEX"), index, old[0])
        if old[0]["comment"] is not None:
            query = session.statement(
                "keep/comment",
                kind=sql.SQL("INDEX"),
                relation=(index.schema, index.name),
                comment=sql.Literal(old[0]["comment"]),
            )
            out.append(Statement(query))
    return out


def build_key(name: QualifiedName) -> dict[str, str]:
    """The advisory lock of `view build --replace` of rollup `name`."""
    return {"key": f"epstats.build:{name}"}


def _spare(session: Session, name: QualifiedName) -> tuple[sql.SQL, list[Statement]] | None:
    """The DDL kind of the new rollup a stopped `--replace` left, and the statements that drop
    it with its state row; None when there is none."""
    target = new_name(name)
    found = relation(session, target.schema, target.name)
    if found is None:
        return None
    kind = sql.SQL(KIND_SQL[strategy_of(found.relkind) or "incremental"])
    drop = session.statement("view/drop_if_exists", kind=kind, view=(target.schema, target.name))
    statements = [Statement(drop)]
    if state_table_exists(session):
        statements.append(state.delete(session, target))
    return kind, statements


def spare_step(session: Session) -> Step | None:
    """Cleanup: drop the new rollup a `view build --replace` stopped between its build and its
    swap left behind (else every later `--replace` would fail on it); None when there is none."""
    name = session.config.view_name
    spare = _spare(session, name)
    if spare is None:
        return None
    _kind, statements = spare
    guard = Statement(session.statement("view/build_lock_xact"), build_key(name))
    step = Step(
        "cleanup",
        str(new_name(name)),
        "the new rollup of an interrupted `view build --replace`",
        [guard, *statements],
        Mode.TRANSACTION,
        done="dropped the new rollup of an interrupted `view build --replace`",
    )
    holder = session.value("view/build_lock_holder", build_key(name))
    if holder is not None:
        step.skip = f"a `view build --replace` is running (pid {holder}): not a leftover"
    return step


def _swap(session: Session, info: RollupFacts, strategy: str, kept: keep.Keep) -> Step:
    """Drop the old rollup and rename the new one into its place, in one transaction; after a
    final failure, drop the new one so no half-done replacement is left behind."""
    name, target = info.name, new_name(info.name)
    key_tmp, day_tmp = index_names(target.name)
    key_final, day_final = index_names(name.name)
    # Anything but a materialized view is dropped as a table: a hand-made plain VIEW makes the
    # swap fail (and undo itself).
    old_kind = sql.SQL(KIND_SQL[strategy_of(info.relkind) or "incremental"])
    new_kind = sql.SQL(KIND_SQL[strategy])
    st = session.statement
    statements = [
        *keep.before_drop(session, kept),  # the views that read it, created again below
        Statement(st("view/drop", kind=old_kind, view=(name.schema, name.name))),
        Statement(
            st("view/rename", kind=new_kind, view=(target.schema, target.name), new_name=name.name)
        ),
        Statement(st("view/rename_index", index=(name.schema, key_tmp), new_name=key_final)),
        Statement(st("view/rename_index", index=(name.schema, day_tmp), new_name=day_final)),
        *keep.after_rename(session, kept, name),
    ]
    statements.append(state.move(session, target, name))
    undo = [
        Statement(st("view/drop_if_exists", kind=new_kind, view=(target.schema, target.name))),
        state.delete(session, target),
    ]
    return Step(
        "swap",
        str(name),
        "the new rollup replaces the old one in one short transaction",
        statements,
        mode=Mode.TRANSACTION,
        done="replaced the old one",
        relation_oid=info.oid,
        lock_modes=("AccessShareLock", *CONFLICTS_SHARE_UPDATE_EXCLUSIVE),
        on_failure=undo,
        error_hints={
            DEPENDENT_OBJECTS: f"other objects depend on {name}: " + "{error}; drop or repoint them"
        },
    )


def kept(session: Session, info: RollupFacts, strategy: str) -> keep.Keep:
    """What replacing the rollup with one of `strategy` must keep; OperationFailed, before
    anything is built, naming what it cannot keep and why."""
    assert info.oid is not None
    owner = relation(session, info.name.schema, info.name.name)
    assert owner is not None
    found = keep.inspect(
        session,
        info.oid,
        info.name,
        owner.owner,
        OWN_INDEXES,
        COLUMNS,
        table=strategy == "incremental",
        own_checks=OWN_CHECKS,
    )
    if found.refusals:
        raise OperationFailed(
            f"cannot replace {info.name}, nothing was built: " + "; ".join(found.refusals)
        )
    return found


def fill_step(session: Session, norm: Normalization, where: sql.Composable, target: str) -> Step:
    """The raw endpoints of the rows satisfying `where` mapped in epstats.endpoint_map, and the
    map's statistics renewed (so that the aggregate is planned for its size, a hash join), in a
    short transaction of its own before the one that aggregates."""
    lock, fill = endpoints.fill_lock(session, norm), endpoints.fill(session, norm, where)
    statements = [Statement(*lock), Statement(*fill), Statement(endpoints.analyze_map(session))]
    return Step(
        "build",
        target,
        f"endpoints mapped ({norm.describe()}) in epstats.endpoint_map",
        statements,
        mode=Mode.TRANSACTION,
        done="endpoints mapped",
        relation_oid=session.value("endpoints/map_oid"),
    )


def plan_build(
    session: Session,
    strategy: str,
    info: RollupFacts,
    src_oid: int,
    columns: source.SourceColumns,
    keep_retired: bool = False,
) -> list[Step]:
    """The build step (one transaction, the state row included) and, when a rollup exists
    already, the swap step; OperationFailed when a replacement could not keep what the old
    one has, or when epstats.rollup_state, which marks the rollup as epstats's, is missing."""
    if not info.state_table:
        raise OperationFailed(
            "epstats.rollup_state is missing (it records that epstats built the rollup, and "
            "with what): run `epstats init` once"
        )
    replacing = info.exists
    target = new_name(info.name) if replacing else info.name
    kept_over = kept(session, info, strategy) if replacing else None
    settings: list[Statement] = []
    own: list[Statement] = []
    if kept_over is not None:
        kind = sql.SQL(KIND_SQL[strategy])
        settings = carry.onto_new(session, kept_over.carried, target, kind)
        own = _own_index_settings(session, kept_over, info.name, target)
    retired = None
    if replacing and info.retired_through is not None:
        carried = tuple(c for c in info.insert_columns() if c not in ("as_of", "snapshot"))
        retired = Retired(info.retired_through, (info.name.schema, info.name.name), carried)
    statements = _create(session, strategy, target, columns, not replacing, settings, own, retired)
    if kept_over is not None:
        statements += carry.row_security(session, kept_over.carried, target)
        spare = _spare(session, info.name)
        if spare is not None:  # left by a --replace stopped before its swap
            statements = spare[1] + statements
        if parse_comment(kept_over.comment) is not None:
            kept_over.comment = DESCRIPTION  # an earlier epstats's mark, not its users' words
        kind = sql.SQL(KIND_SQL[strategy])
        statements += keep.onto_new(session, kept_over, target, kind)
    now, _hour = db_now(session)
    recorded = parameters(session.config, strategy)
    if retired is not None:
        recorded |= parameters_from(info, session.config, strategy, keep_retired)
    through = retired.through if retired is not None else None
    statements.append(state.put(session, target, strategy, now, recorded, through))
    norm = Normalization.of(session.config)
    basis = source.Basis.of(session.config, columns)
    fill = (
        [fill_step(session, norm, source.up_to_now(session, basis), str(info.name))]
        if norm.active
        else []
    )
    build_step = Step(
        "build",
        str(info.name),
        strategy + (" beside the old one, then swap" if replacing else ""),
        statements,
        mode=Mode.TRANSACTION,
        done=strategy + (" beside the old one" if replacing else ""),
        relation_oid=src_oid,
        lock_modes=("AccessExclusiveLock",),  # the aggregate reads the source table
    )
    if kept_over is None:
        return [*fill, build_step]
    return [*fill, build_step, _swap(session, info, strategy, kept_over)]


def parameters_from(
    info: RollupFacts, config: Config, strategy: str, keep_retired: bool
) -> dict[str, Any]:
    """The day from which the recorded parameters hold (`parameters_from`), when days up to the
    retention horizon keep others: set by `--keep-retired`, carried over otherwise."""
    old = (info.parameters or {}).get("parameters_from")
    if keep_retired and info.retired_through is not None and differences(info, config, strategy):
        return {"parameters_from": (info.retired_through + dt.timedelta(days=1)).isoformat()}
    return {} if old is None else {"parameters_from": old}


def require_retention_rules(
    info: RollupFacts, config: Config, strategy: str, replace: bool, keep_retired: bool
) -> None:
    """ConfigError (exit 3) when a build would recompute or contradict retired days: another
    strategy than incremental with retention, or new parameters without --keep-retired."""
    problems = retention_problems(config.source.retention, replace_strategy(config, strategy))
    if problems or (info.retired_through is not None and strategy != "incremental"):
        raise ConfigError(
            [
                f"{strategy} refuses retention: a {strategy} rollup is recomputed from the raw "
                "rows on every refresh, so retired days would vanish (view.strategy incremental)"
            ]
        )
    differs = differences(info, config, strategy)
    if replace and info.retired_through is not None and differs and not keep_retired:
        keys = ", ".join(key for key, _n, _old, _new in differs)
        raise ConfigError(
            [
                f"{keys}: {info.name} has days up to {info.retired_through} whose raw rows are "
                "retired, kept by the rollup alone with the parameters it was built with: with "
                "new parameters, old and new days would disagree; `epstats view build "
                "--replace --keep-retired` accepts that knowingly and records from which day "
                "the new parameters hold"
            ]
        )


def replace_strategy(config: Config, strategy: str) -> ViewConfig:
    """view.* with `strategy` (a --strategy given on the command line)."""
    return replace_fields(config.view, strategy=strategy)


def _already_built(
    info: RollupFacts, strategy: str, replace: bool, differs: list[tuple[str, str, Any, Any]]
) -> str | None:
    """Why there is nothing to build (None: build); OperationFailed when a rollup exists that
    only --replace may take the place of."""
    if not info.exists or replace:
        return None
    upgrade = info.missing_status or info.missing_latency
    if info.ours and info.strategy == strategy and not info.lacks and not differs and not upgrade:
        return f"already built ({strategy}); --replace rebuilds it"
    what = "built by epstats" if info.ours else "made by hand"
    lacks = f"; lacks {', '.join(info.lacks)}" if info.lacks else ""
    built = "".join(f"; built with {n} {old}, configured {new}" for _k, n, old, new in differs)
    built += "; without status classes" if info.missing_status else ""
    built += "; without latency histograms" if info.missing_latency else ""
    raise OperationFailed(
        f"{info.name} already exists ({info.as_dict()['kind']} {what}, strategy "
        f"{info.strategy}{lacks}{built}): `epstats view build --replace` builds the new one "
        "beside it and swaps it in"
    )


def build(
    session: Session,
    strategy: str | None = None,
    replace: bool = False,
    dry_run: bool = False,
    *,
    executor: Executor | None = None,
    keep_retired: bool = False,
) -> list[TaskResult]:
    """Create the rollup (in one transaction), or build a new one beside it and swap it in
    (carrying the days up to the retention horizon over)."""
    strategy = strategy or session.config.view.strategy
    require_current(session)
    src_oid = source_oid(session)
    columns = source.check_columns(session, src_oid)
    info = facts(session, contents=False)
    require_mark(info)
    endpoints.require_map(session, Normalization.of(session.config))
    differs = differences(info, session.config, strategy)
    require_retention_rules(info, session.config, strategy, replace, keep_retired)
    skip = _already_built(info, strategy, replace, differs)
    if skip is not None:
        return [TaskResult("build", str(info.name), "skipped", skip)]
    executor = executor or Executor(session, dry_run)
    locking = info.exists and not executor.dry_run
    if locking and not session.value("view/build_lock", build_key(info.name)):
        holder = session.value("view/build_lock_holder", build_key(info.name))
        raise OperationFailed(
            f"another `epstats view build --replace` of {info.name} is running (pid {holder}), "
            "or a cleanup of what one left; retry when it has finished"
        )
    try:
        steps = plan_build(session, strategy, info, src_oid, columns, keep_retired)
        return executor.run_all(steps, stop_on_failure=True)
    finally:
        if locking:  # a connection that cannot (busy after an interruption) ends with its lock
            with suppress(psycopg.Error):
                session.run("view/build_unlock", build_key(info.name))
