"""The maintenance tasks as planners: VACUUM / ANALYZE / REINDEX / cleanup that never block
production, plus refresh (the rollup's own code) and the facts that make a task due early.

A planner returns the `Step`s a task would take; the step executor runs them or, for
--dry-run, prints them. Every statement runs under lock_timeout; VACUUM and ANALYZE use
SKIP_LOCKED (a skipped table is retried with backoff, then reported with who held the lock);
REINDEX is CONCURRENTLY, and the invalid `<index>_ccnew` a failed rebuild leaves is dropped.
A new task is a planner in PLANNERS and its .sql files; `maintain` (maintain.py) runs them.

It is over 400 lines because every task's planner lives here, one beside the other (with
vacuumdb's options of the one-off `vacuum` and `analyze --in-stages`), so that what each
task sends can be read and compared in one place.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import (
    history,
    indexes,
    partition_ahead,
    partition_convert,
    retention,
    rights,
    rollup,
    schedule,
)
from epstats_cli.catalog import missing_source, relation
from epstats_cli.config import QualifiedName
from epstats_cli.db import Session
from epstats_cli.durations import format_duration
from epstats_cli.errors import OperationFailed
from epstats_cli.execute import Executor, Mode, Statement, Step
from epstats_cli.history import TaskResult
from epstats_cli.rollup import sweep
from epstats_cli.rollup.build import spare_step

NAMEDATALEN = 64


@dataclass(frozen=True)
class Target:
    label: str
    name: QualifiedName
    oid: int

    @property
    def ident(self) -> tuple[str, str]:
        return (self.name.schema, self.name.name)


def targets(session: Session) -> list[Target]:
    """The source table and, when it exists (populated, if a materialized view), the rollup,
    from the catalog alone: finding them needs no right on them."""
    out = []
    for qn in (session.config.source.table, session.config.view_name):
        found = session.one("maintenance/targets", {"schema": qn.schema, "name": qn.name})
        if found is not None and found["relkind"] in ("r", "m", "p"):
            if found["relkind"] == "m" and not found["populated"]:
                continue
            out.append(Target(str(qn), qn, int(found["oid"])))
        elif qn == session.config.source.table:
            raise missing_source(session)
    return out


def maintain_refusal(session: Session, t: Target, verb: str) -> str | None:
    """Why the running role may not VACUUM or ANALYZE a target (None: it may). The server would
    only warn and skip it, and the task would look done."""
    lack = rights.vacuum_lack(session, t.oid, verb)
    if lack is None:
        return None
    what = lack.what.removeprefix("the right to ")
    return f"role {session.server.user} may not {what}: {lack.fix}"


# --- the planners ------------------------------------------------------------------------------


# `analyze --in-stages` (vacuumdb's --analyze-in-stages): usable statistics at once after a
# bulk load or a restore, full ones last. Each stage's default_statistics_target (None: the
# server's own); a column with a statistics target of its own keeps it in every stage.
STAGES: tuple[tuple[int | None, str], ...] = (
    (1, "minimal statistics (default_statistics_target 1), usable at once"),
    (10, "better statistics (default_statistics_target 10)"),
    (None, "full statistics (the server's default_statistics_target)"),
)


def plan_analyze(
    session: Session, in_stages: bool = False, only: frozenset[str] = frozenset()
) -> list[Step]:
    """ANALYZE (SKIP_LOCKED) the source table and the rollup (`only`: those of these labels);
    `in_stages`: three times, with a statistics target of 1, then 10, then the default (each
    of the first two SET LOCAL in a transaction of its own, so nothing outlives it). An early
    stage is recorded under a target of its own (history.stage_target): only the final stage
    counts as the table's analyze, and one interrupted says what it leaves."""
    found = [t for t in targets(session) if not only or t.label in only]
    if not in_stages:
        return [_analyze_step(session, t, "update planner statistics", None) for t in found]
    steps = []
    for n, (stat_target, why) in enumerate(STAGES, 1):
        for t in found:
            step = _analyze_step(session, t, f"stage {n} of {len(STAGES)}: {why}", stat_target)
            if n < len(STAGES):
                step.target = history.stage_target(t.label, n, len(STAGES))
            step.interrupted_note = (
                f"the statistics of {t.label} are as they were"
                if n == 1
                else f"the statistics of {t.label} are left at stage {n - 1}'s target "
                f"(default_statistics_target {STAGES[n - 2][0]}), which counts as no "
                "analyze: `maintain` analyzes it when it runs next, or run `epstats analyze`"
            )
            steps.append(step)
    return steps


def _analyze_step(session: Session, t: Target, reason: str, stat_target: int | None) -> Step:
    analyze = Statement(session.statement("maintenance/analyze", table=t.ident))
    statements = [analyze]
    if stat_target is not None:
        setting = session.statement("maintenance/statistics_target")
        statements = [Statement(setting, {"target": str(stat_target)}), analyze]
    return Step(
        "analyze",
        t.label,
        reason,
        statements,
        Mode.AUTOCOMMIT if stat_target is None else Mode.TRANSACTION,
        done="statistics updated" if stat_target is None else f"{reason}: updated",
        relation_oid=t.oid,
        skip_locked=True,
        progress="catalog/analyze_progress",
        refused=maintain_refusal(session, t, "analyze"),
    )


@dataclass(frozen=True)
class VacuumOptions:
    """vacuumdb's options of a one-off `vacuum`: index vacuuming workers (PostgreSQL 13+),
    and only the relations whose transaction-ID or multixact age reaches a minimum."""

    parallel: int | None = None
    min_xid_age: int | None = None
    min_mxid_age: int | None = None


@dataclass(frozen=True)
class Aged:
    """One relation `vacuum` works on, and what its age says: why it is vacuumed (`aged`) or
    left alone (`skip`)."""

    target: Target
    aged: str = ""
    skip: str | None = None


def _by_age(session: Session, t: Target, opts: VacuumOptions) -> list[Aged]:
    """What `vacuum --min-xid-age/--min-mxid-age` vacuums of a target, relation by relation as
    vacuumdb does (a partitioned table: each partition that reaches the age, not the whole
    table for its oldest one). Without a minimum: the target, whole."""
    if opts.min_xid_age is None and opts.min_mxid_age is None:
        return [Aged(t)]
    out = []
    for r in session.all("maintenance/freeze_ages", {"oid": t.oid}):
        name = QualifiedName(r["schema"], r["name"])
        part = t if int(r["oid"]) == t.oid else Target(str(name), name, int(r["oid"]))
        xid_age, mxid_age = int(r["xid_age"] or 0), int(r["mxid_age"] or 0)
        if opts.min_xid_age is not None and xid_age < opts.min_xid_age:
            why = f"transaction-ID age {xid_age:,} is below --min-xid-age {opts.min_xid_age:,}"
            out.append(Aged(part, skip=why))
        elif opts.min_mxid_age is not None and mxid_age < opts.min_mxid_age:
            why = f"multixact age {mxid_age:,} is below --min-mxid-age {opts.min_mxid_age:,}"
            out.append(Aged(part, skip=why))
        else:
            ages = []
            if opts.min_xid_age is not None:
                ages.append(f"transaction-ID age {xid_age:,} reaches {opts.min_xid_age:,}")
            if opts.min_mxid_age is not None:
                ages.append(f"multixact age {mxid_age:,} reaches {opts.min_mxid_age:,}")
            out.append(Aged(part, aged=" and ".join(ages)))
    return out


NO_OPTIONS = VacuumOptions()


def plan_vacuum(
    session: Session,
    with_analyze: bool = True,
    freeze: bool = False,
    reason: str = "",
    opts: VacuumOptions = NO_OPTIONS,
) -> list[Step]:
    """VACUUM (SKIP_LOCKED[, ANALYZE][, FREEZE][, PARALLEL n]) the source table and the
    rollup; with a minimum transaction-ID or multixact age, only those that reach it."""
    if opts.parallel is not None and session.server.version_num < 130000:
        raise OperationFailed(
            "vacuum --parallel needs PostgreSQL 13 or later (the server is "
            f"{session.server.version_num // 10000}): run it without --parallel"
        )
    options = (
        ["SKIP_LOCKED"] + (["ANALYZE"] if with_analyze else []) + (["FREEZE"] if freeze else [])
    )
    parts: list[sql.Composable] = [sql.SQL(o) for o in options]
    if opts.parallel is not None:
        parts.append(sql.SQL("PARALLEL {}").format(sql.Literal(opts.parallel)))
    opts_sql = sql.SQL(", ").join(parts)
    why = reason or ("reclaim dead tuples" + (", update statistics" if with_analyze else ""))
    if opts.parallel:
        why += f", up to {opts.parallel} parallel index vacuuming worker(s)"
    steps = []
    for each in (a for t in targets(session) for a in _by_age(session, t, opts)):
        t = each.target
        statement = session.statement("maintenance/vacuum", table=t.ident, options=opts_sql)
        steps.append(
            Step(
                "vacuum",
                t.label,
                f"{each.aged}: {why}" if each.aged else why,
                [Statement(statement)],
                relation_oid=t.oid,
                skip_locked=True,
                progress="catalog/vacuum_progress",
                refused=maintain_refusal(session, t, "vacuum"),
                skip=each.skip,
            )
        )
    return steps


def _building(session: Session, oid: int) -> set[int]:
    """The indices of the table that a session is building right now (CREATE INDEX or REINDEX
    CONCURRENTLY in progress): invalid until it ends, and no leftover."""
    return {int(b["index_relid"]) for b in indexes.builds_running(session, oid) if b["index_relid"]}


def _still_building(build: dict[str, Any]) -> str:
    """Why cleanup leaves an invalid index alone: the build running on it, by whom (an
    epstats killed mid-build leaves its statement running on the server until it ends)."""
    who = build["application_name"] or "an application the role may not see"
    role = f", role {build['role']}" if build["role"] else ""
    return (
        f"{build['command']} still running on it (pid {build['pid']}, {who}{role}, "
        f"{build['phase']}); a later cleanup drops it if that build fails"
    )


def _bloat(session: Session, oid: int) -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in session.all("catalog/index_bloat", {"oid": oid})}


def rebuild_name(session: Session, schema: str, index: str) -> str:
    """The name REINDEX CONCURRENTLY gives its new copy of `index`: `<index>_ccnew`, cut to
    fit NAMEDATALEN, with a number when that name is taken (as ChooseRelationName does)."""
    for n in range(1000):
        label = "ccnew" + (str(n) if n else "")
        room = NAMEDATALEN - 1 - len(label) - 1
        stem = index.encode()[:room].decode(errors="ignore")
        candidate = f"{stem}_{label}"
        if relation(session, schema, candidate) is None:
            return candidate
    raise OperationFailed(f"no free name for a rebuilt copy of {schema}.{index}")


def why_no_estimate(info: dict[str, Any], role: str, table: str) -> str:
    """Why an index (a row of catalog/index_bloat) has no bloat estimate, as it is."""
    if info["method"] != "btree":
        return f"a {info['method']} index: only btree bloat is estimated"
    if info["never_analyzed"]:
        return f"{table} has never been vacuumed or analyzed, so its size is unknown"
    if (info["columns_readable"] or 0) < (info["key_columns"] or 0):
        return (
            f"role {role} cannot see the statistics of its columns (pg_stats shows only columns "
            f"a role may SELECT: GRANT SELECT ON {table} TO {role})"
        )
    if (info["columns_with_stats"] or 0) < (info["key_columns"] or 0):
        return f"its columns have no statistics yet (analyze {table})"
    return f"too small to estimate ({info['pages']} page(s))"


def plan_reindex(
    session: Session, index: str | None = None, bloat_threshold: float | None = None
) -> list[Step]:
    """REINDEX INDEX CONCURRENTLY each valid index (or one), optionally only bloated ones; a
    rebuild the role may not do is planned as refused (it fails, saying who may)."""
    steps = []
    found = False
    role = session.server.user
    for t in targets(session):
        lack = rights.maintain_lack(session, t.name, "reindex")
        building = _building(session, t.oid)
        for name, info in _bloat(session, t.oid).items():
            if index is not None and name != index:
                continue
            if not info["valid"] and int(info["oid"]) in building:
                continue  # another session's build in progress: neither ours nor a leftover
            found = True
            schema = t.name.schema
            ratio = info["bloat_ratio"]
            estimate = (
                f"no bloat estimate: {why_no_estimate(info, role, t.label)}"
                if ratio is None
                else f"estimated bloat {ratio:.0%}"
            )
            step = Step(
                "reindex",
                f"{schema}.{name}",
                estimate,
                [Statement(session.statement("maintenance/reindex", index=(schema, name)))],
                Mode.CONCURRENTLY,
                done=f"rebuilt ({estimate})",
                relation_oid=t.oid,
                progress="catalog/index_build_progress",
            )
            if not info["valid"]:
                step.skip = "invalid index: the cleanup task drops it"
            elif bloat_threshold and (ratio is None or ratio < bloat_threshold):
                step.skip = (
                    f"{estimate}, below reindex_bloat_ratio {bloat_threshold:.0%}"
                    if ratio is not None
                    else estimate
                )
            else:
                if lack is not None:
                    step.refused = f"role {role} may not reindex {schema}.{name}: {lack.fix}"
                copy = rebuild_name(session, schema, name)
                step.index = (schema, copy)
                step.repair = [Statement(session.statement("indexes/drop", index=(schema, copy)))]
            steps.append(step)
    if index is not None and not found:
        raise OperationFailed(
            f"no index named {index} on {session.config.source.table} "
            "or the rollup (see: epstats indexes status)"
        )
    return steps


def reindex(session: Session, executor: Executor, index: str | None = None) -> list[TaskResult]:
    """The one-off `reindex`: every valid index (the whole task, which counts as maintain's
    reindex: a row of its own spans the rebuilds), or one."""
    steps = plan_reindex(session, index)
    if index is not None:
        return executor.run_all(steps)
    target = history.task_target(session.config, "reindex")
    return executor.run_task("reindex", target, "rebuild every valid index", steps)


def plan_cleanup(session: Session) -> list[Step]:
    """Drop invalid leftovers of interrupted index builds and the new rollup of an interrupted
    `view build --replace`; prune old run history."""
    steps = []
    why = "invalid leftover of an interrupted index build"
    for t in targets(session):
        for idx in indexes.invalid_indexes(session, t.oid, t.name.schema):  # partitions' too
            builds = {
                int(b["index_relid"]): b for b in indexes.builds_running(session, idx.relation_oid)
            }
            step = _drop_index(session, t, idx.schema, idx.name, why, idx.relation_oid)
            if idx.oid in builds:  # said, never dropped: a build is still running on it
                step.reason = "invalid until the build running on it ends"
                step.skip = _still_building(builds[idx.oid])
            steps.append(step)
        if t.name == session.config.source.table:
            steps += _switch_leftovers(session, t)
    steps += partition_convert.cleanup_steps(session)
    spare = spare_step(session)
    if spare is not None:
        spare.refused = refusal(session, rights.spare_needs(session))
        steps.append(spare)
    if history.available(session):
        retention = session.config.maintenance.history_retention
        prune = session.statement("maintenance/history_prune")
        abandoned = session.statement("maintenance/history_abandoned")
        steps.append(
            Step(
                "cleanup",
                "epstats.runs",
                f"delete run history older than {format_duration(retention)}; runs whose "
                "process died are interrupted",
                [Statement(prune, {"retention": retention}), Statement(abandoned)],
                refused=refusal(session, rights.history_needs()),
            )
        )
    return steps


def _switch_leftovers(session: Session, t: Target) -> list[Step]:
    """Drop the valid indices an interrupted switch of method left that are not needed
    (index_switch.switch_fate); measured only when one's fate depends on the measurement."""
    left = indexes.make_plan(session).switch_leftovers
    if any(not x.fate.drop and not x.fate.reuse and x.index.name.endswith("_switch") for x in left):
        left = indexes.make_plan(session, measured=True).switch_leftovers
    steps = []
    for x in left:
        if not x.fate.drop:
            continue
        why = f"left by an interrupted switch of method of {x.of}: {x.fate.why}"
        steps.append(_drop_index(session, t, t.name.schema, x.name, why, t.oid))
    return steps


def _drop_index(
    session: Session, t: Target, schema: str, name: str, why: str, relation_oid: int
) -> Step:
    """cleanup's DROP INDEX CONCURRENTLY of one leftover on the table `t` (its owner's right)."""
    drop = session.statement("indexes/drop", index=(schema, name))
    return Step(
        "cleanup",
        f"{schema}.{name}",
        why,
        [Statement(drop)],
        Mode.CONCURRENTLY,
        done=f"dropped: {why}",
        relation_oid=relation_oid,
        refused=refusal(session, rights.Needs().owned(t.name, why="DROP INDEX")),
    )


# --- the rights a step lacks -------------------------------------------------------------------


def refusal(session: Session, needs: rights.Needs) -> str | None:
    """Why a step would fail for rights the role lacks (all of them), or None."""
    lacks = rights.lacking(session, needs)
    if not lacks:
        return None
    return f"role {session.server.user} lacks {rights.summary(lacks)}"


def task_needs(session: Session, task: str) -> rights.Needs:
    """Every right a maintenance task needs besides recording its run (rights.task_needs;
    retention on a partitioned table: retention.needs)."""
    needs = rights.task_needs(session, task, [(t.name, t.oid) for t in targets(session)])
    return needs.merge(retention.needs(session)) if task == "retention" else needs


def plan_verify(session: Session) -> list[Step]:
    """The verify task's steps as a dry run shows them; one refused step when the role lacks
    rights it needs (then it cannot even read what to compare)."""
    why = refusal(session, task_needs(session, "verify"))
    if why is None:
        return sweep.plan_verify(session)
    target = history.task_target(session.config, "verify")
    return [Step("verify", target, "compare the rollup with the raw rows", [], refused=why)]


def plan_retention(session: Session) -> list[Step]:
    """The retention task's steps as a dry run shows them; one refused step naming every
    right it lacks (as plan_verify)."""
    why = refusal(session, task_needs(session, "retention"))
    if why is None:
        return retention.plan_steps(session)
    target = history.task_target(session.config, "retention")
    return [Step("retention", target, "retire old raw rows", [], refused=why)]


def plan_brin_summarize(session: Session) -> list[Step]:
    """Summarize the block ranges the source table's BRIN indices have not summarized yet:
    autosummarize asks autovacuum for it, but drops the request when its queue is full (and
    until a range is summarized every BRIN scan reads all of it). Part of the analyze task."""
    table = next(t for t in targets(session) if t.name == session.config.source.table)
    return [
        Step(
            "analyze",
            f"{b['schema']}.{b['name']}",
            "summarize new block ranges (autosummarize drops requests when its queue is full)",
            [Statement(session.statement("indexes/brin_summarize"), {"oid": b["oid"]})],
            done="new block ranges summarized",
            relation_oid=table.oid,
            refused=maintain_refusal(session, table, "vacuum"),
        )
        for b in session.all("indexes/brin_indexes", {"oid": table.oid})
    ]


# A task's planner, given why it is due (vacuum: whether to FREEZE; reindex: a forced run
# rebuilds every valid index, a scheduled one only those past reindex_bloat_ratio).
PLANNERS: dict[str, Callable[[Session, schedule.Decision], list[Step]]] = {
    "cleanup": lambda s, d: plan_cleanup(s),
    "vacuum": lambda s, d: plan_vacuum(s, True, d.freeze, d.reason),
    "analyze": lambda s, d: (
        plan_analyze(s, only=frozenset(t for t, _w in d.targets)) + plan_brin_summarize(s)
    ),
    "reindex": lambda s, d: plan_reindex(
        s, None, None if d.reason == "forced" else s.config.maintenance.reindex_bloat_ratio
    ),
    "verify": lambda s, d: plan_verify(s),  # what a dry run shows; a real run: RUNNERS
    "partitions": lambda s, d: partition_ahead.plan_partitions(s),
    "retention": lambda s, d: plan_retention(s),  # likewise
}

# Tasks whose steps depend on what they find as they run (verify compares a day, then repairs
# it): a real run calls the runner (session, executor, why it is due, seconds left of
# max_runtime), which runs its steps through the executor and records its own summary.
RUNNERS: dict[str, Callable[[Session, Executor, str, float], list[TaskResult]]] = {
    "verify": sweep.run,
    "retention": lambda s, e, due, left: retention.run(
        s, e, due, left, vacuum=lambda v: plan_vacuum(v, True, False, "after retention")
    ),
}


def refresh(
    session: Session, executor: Executor, shown: Callable[[Step], Step] = lambda step: step
) -> list[TaskResult]:
    """The rollup's refresh (rollup.plan_refresh plans it, `shown` gives it the reason it shows)
    run by `executor`, or why it cannot run."""
    info = rights.rollup_shape(session)  # from the catalog: reading it may need a right
    if not info.exists:
        return [
            TaskResult(
                "refresh",
                str(info.name),
                "skipped",
                "no rollup yet (epstats view build creates it)",
            )
        ]
    if not info.ours:
        return [
            TaskResult(
                "refresh",
                str(info.name),
                "skipped",
                "not built by epstats (epstats view build --replace)",
            )
        ]
    why = refusal(session, rights.refresh_needs(session))
    try:
        step = rollup.plan_refresh(session)
    except psycopg.errors.InsufficientPrivilege:
        if why is None:
            raise
        step = Step("refresh", str(info.name), "bring the rollup up to date", [])
    step.refused = why
    try:
        return [executor.run(shown(step))]
    except OperationFailed as exc:
        return [TaskResult("refresh", str(info.name), "failed", exc.message, 0, None, exc.message)]
