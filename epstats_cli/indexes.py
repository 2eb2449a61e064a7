"""The recommended indices: what exists, what is redundant or unused, and applying the plan
without blocking writes (CONCURRENTLY, lock_timeout, bounded retries, repair of leftovers)."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from epstats_cli import queries
from epstats_cli.catalog import source_oid
from epstats_cli.config import IndexSpec, QualifiedName
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed
from epstats_cli.execute import (
    LockNotGranted,
    error_text,
    run_with_retries,
)
from epstats_cli.history import TaskResult
from epstats_cli.progress import bars as _bars
from epstats_cli.progress import watch
from epstats_cli.sqltext import as_text

LEFTOVER = re.compile(r"_cc(new|old)\d*$")


@dataclass(frozen=True)
class IndexInfo:
    name: str
    oid: int
    method: str
    valid: bool
    ready: bool
    is_unique: bool
    is_primary: bool
    constraint_name: str | None
    has_expressions: bool
    has_predicate: bool
    has_include: bool
    columns: tuple[str, ...]
    opclasses: tuple[str, ...]
    collations: tuple[str, ...]
    options: tuple[str, ...]
    size_bytes: int
    scans: int
    definition: str

    @property
    def plain(self) -> bool:
        """Key columns only: no expressions, predicate or INCLUDE columns."""
        return not (self.has_expressions or self.has_predicate or self.has_include)

    @property
    def enforces_something(self) -> bool:
        return self.is_unique or self.is_primary or self.constraint_name is not None


@dataclass(frozen=True)
class Recommendation:
    spec: IndexSpec
    columns: tuple[str, ...]  # physical names
    state: str  # present | present_as | missing | invalid | conflict | building
    existing: str | None = None
    detail: str = ""


@dataclass
class Step:
    action: str  # drop_leftover | rebuild | create | drop_redundant
    target: str
    query: sql.Composed
    reason: str
    build: bool = False  # creates an index (validity is checked afterwards)


@dataclass
class Plan:
    table: QualifiedName
    table_oid: int
    indexes: list[IndexInfo]
    recommendations: list[Recommendation]
    redundant: dict[str, str]
    unused: list[IndexInfo]
    leftovers: list[IndexInfo]
    builds: list[dict[str, Any]]
    stats_reset: Any
    steps: list[Step] = field(default_factory=list)


# --- pure rules ----------------------------------------------------------------------------


def redundancies(indexes: Sequence[IndexInfo], keep: Sequence[str] = ()) -> dict[str, str]:
    """name -> name of a valid index that covers it.

    An index is redundant when another valid index of the same method has this one's key
    columns (with the same operator classes, collations and sort options) as its leading
    columns; btree only for proper prefixes, any method for exact duplicates. Unique and
    primary-key indices, constraints, expression, partial and INCLUDE indices never are, nor
    those in `keep` (the recommended set). Of two exact duplicates, the first by name stays.
    """
    result: dict[str, str] = {}
    candidates = [i for i in indexes if i.valid and i.plain]
    for idx in candidates:
        if idx.enforces_something or idx.name in keep:
            continue
        n = len(idx.columns)
        for other in candidates:
            if other.name == idx.name or other.method != idx.method or other.name in result:
                continue
            if len(other.columns) < n or other.columns[:n] != idx.columns:
                continue
            if other.oid < 0:  # hypothetical (to be built): default opclasses, ascending
                if any(o != "0" for o in idx.options):
                    continue
            elif (
                other.opclasses[:n] != idx.opclasses
                or other.collations[:n] != idx.collations
                or other.options[:n] != idx.options
            ):
                continue
            if len(other.columns) == n:  # an exact duplicate: keep one of the two
                idx_kept = idx.name in keep or idx.enforces_something
                other_kept = other.name in keep or other.enforces_something
                if idx_kept and not other_kept:
                    continue
                if idx_kept == other_kept and idx.name < other.name:
                    continue
            elif idx.method != "btree":
                continue
            result[idx.name] = other.name
            break
    return result


def matches(idx: IndexInfo, columns: tuple[str, ...], method: str) -> bool:
    """Whether an existing index has exactly the recommended definition."""
    return (
        idx.plain
        and idx.method == method
        and idx.columns == columns
        and all(o == "0" for o in idx.options)
    )


def match_recommended(
    specs: Sequence[IndexSpec],
    physical: dict[str, str],
    indexes: Sequence[IndexInfo],
    building: set[int],
) -> list[Recommendation]:
    """Compare the recommended set with what the table has."""
    by_name = {i.name: i for i in indexes}
    out: list[Recommendation] = []
    for spec in specs:
        cols = tuple(physical[c] for c in spec.columns)
        named = by_name.get(spec.name)
        if named is not None and named.oid in building:
            out.append(Recommendation(spec, cols, "building", named.name, "a build is running"))
        elif named is not None and not named.valid:
            out.append(Recommendation(spec, cols, "invalid", named.name, "a failed earlier build"))
        elif named is not None and matches(named, cols, spec.method):
            out.append(Recommendation(spec, cols, "present", named.name))
        elif named is not None:
            out.append(
                Recommendation(spec, cols, "conflict", named.name, f"exists as: {named.definition}")
            )
        else:
            twin = next(
                (i for i in indexes if i.valid and matches(i, cols, spec.method)),
                None,
            )
            if twin is not None:
                out.append(Recommendation(spec, cols, "present_as", twin.name))
            else:
                out.append(Recommendation(spec, cols, "missing"))
    return out


def leftovers(indexes: Sequence[IndexInfo], building: set[int]) -> list[IndexInfo]:
    """Invalid `*_ccnew`/`*_ccold` indices of an interrupted REINDEX CONCURRENTLY."""
    return [i for i in indexes if not i.valid and LEFTOVER.search(i.name) and i.oid not in building]


# --- catalog -------------------------------------------------------------------------------


def load_indexes(session: Session, oid: int) -> list[IndexInfo]:
    cur = session.conn.cursor(row_factory=dict_row)
    rows = cur.execute(
        queries.get("catalog/table_indexes", session.server.version_num), {"oid": oid}
    ).fetchall()
    out = []
    for r in rows:
        for key in ("columns", "opclasses", "collations", "options"):
            r[key] = tuple(r[key])
        out.append(IndexInfo(**r))
    return out


def builds_running(session: Session, oid: int) -> list[dict[str, Any]]:
    cur = session.conn.cursor(row_factory=dict_row)
    return cur.execute(
        queries.get("catalog/index_builds", session.server.version_num), {"oid": oid}
    ).fetchall()


def _physical(session: Session) -> dict[str, str]:
    cols = session.config.source.columns
    return {c: cols.physical(c) for c in ("endpoint", "timestamp", "response_time", "status")}


def _index_ident(schema: str, name: str) -> sql.Composable:
    return sql.Identifier(schema, name)


def make_plan(session: Session, concurrently: bool = True, prune_redundant: bool = False) -> Plan:
    """Everything `indexes plan` shows and `indexes apply` would do."""
    v = session.server.version_num
    table = session.config.source.table
    oid = source_oid(session)
    indexes = load_indexes(session, oid)
    builds = builds_running(session, oid)
    building = {int(b["index_relid"]) for b in builds if b["index_relid"]}
    specs = session.config.indexes
    recs = match_recommended(specs, _physical(session), indexes, building)
    keep = [r.existing for r in recs if r.existing and r.state in ("present", "present_as")]
    keep += [s.name for s in specs]
    # Indices about to be built count as covering, so the plan shows what apply will prune.
    hypothetical = [
        IndexInfo(
            r.spec.name,
            -1 - n,
            r.spec.method,
            True,
            True,
            False,
            False,
            None,
            False,
            False,
            False,
            r.columns,
            (),
            (),
            ("0",) * len(r.columns),
            0,
            0,
            "",
        )
        for n, r in enumerate(recs)
        if r.state in ("missing", "invalid")
    ]
    redundant = redundancies(
        [i for i in indexes if i.name not in {h.name for h in hypothetical}] + hypothetical, keep
    )
    unused = [i for i in indexes if i.valid and i.scans == 0 and not i.enforces_something]
    stats_reset = session.conn.execute(queries.get("catalog/stats_reset", v)).fetchone()
    plan = Plan(
        table,
        oid,
        indexes,
        recs,
        redundant,
        unused,
        leftovers(indexes, building),
        builds,
        stats_reset[0] if stats_reset else None,
    )
    drop = "indexes/drop" if concurrently else "indexes/drop_blocking"
    create = "indexes/create" if concurrently else "indexes/create_blocking"
    for left in plan.leftovers:
        plan.steps.append(
            Step(
                "drop_leftover",
                left.name,
                queries.get(drop, v, index=_index_ident(table.schema, left.name)),
                "invalid leftover of an interrupted REINDEX CONCURRENTLY",
            )
        )
    for rec in recs:
        ids = {
            "index": sql.Identifier(rec.spec.name),
            "table": (table.schema, table.name),
            "method": sql.SQL(rec.spec.method),
            "columns": sql.SQL(", ").join(sql.Identifier(c) for c in rec.columns),
        }
        if rec.state == "invalid":
            plan.steps.append(
                Step(
                    "drop_invalid",
                    rec.spec.name,
                    queries.get(drop, v, index=_index_ident(table.schema, rec.spec.name)),
                    "invalid index left by a failed earlier build",
                )
            )
        if rec.state in ("invalid", "missing"):
            plan.steps.append(
                Step(
                    "create",
                    rec.spec.name,
                    queries.get(create, v, **ids),
                    "recommended index is "
                    + ("invalid: rebuild" if rec.state == "invalid" else "missing"),
                    build=True,
                )
            )
    if prune_redundant:
        for name, covered_by in sorted(redundant.items()):
            if name in {s.name for s in specs}:
                continue
            plan.steps.append(
                Step(
                    "drop_redundant",
                    name,
                    queries.get(drop, v, index=_index_ident(table.schema, name)),
                    f"redundant: covered by {covered_by}",
                )
            )
    return plan


def conflicts(plan: Plan) -> list[Recommendation]:
    return [r for r in plan.recommendations if r.state == "conflict"]


# --- apply ---------------------------------------------------------------------------------


def _is_valid(session: Session, schema: str, name: str) -> bool | None:
    row = session.conn.execute(
        queries.get("indexes/is_valid", session.server.version_num),
        {"schema": schema, "name": name},
    ).fetchone()
    return None if row is None else bool(row[0])


def _drop_if_invalid(session: Session, schema: str, name: str) -> None:
    """Remove a half-built index we left behind (best effort, bounded by lock_timeout)."""
    if _is_valid(session, schema, name) is False:
        q = queries.get(
            "indexes/drop", session.server.version_num, index=_index_ident(schema, name)
        )
        with contextlib.suppress(LockNotGranted, psycopg.Error):
            run_with_retries(session, q, relation_oid=None, retries=2)


def apply(
    session: Session,
    *,
    dry_run: bool = False,
    concurrently: bool = True,
    prune_redundant: bool = False,
    show_progress: bool = False,
) -> tuple[Plan, list[TaskResult]]:
    """Carry out the plan step by step; a failed step is reported and the rest still run."""
    plan = make_plan(session, concurrently, prune_redundant)
    bad = conflicts(plan)
    if bad:
        detail = "; ".join(f"{r.spec.name} {r.detail}" for r in bad)
        raise OperationFailed(
            f"an index with a recommended name has another definition ({detail}); "
            "rename or drop it, or change indexes: in the config. Nothing was changed"
        )
    steps = plan.steps
    if not dry_run:  # prune only what is redundant once the builds have succeeded
        steps = [s for s in steps if s.action != "drop_redundant"]
    results = _run_steps(session, steps, plan, dry_run, show_progress)
    if prune_redundant and not dry_run:
        replan = make_plan(session, concurrently, prune_redundant=True)
        drops = [s for s in replan.steps if s.action == "drop_redundant"]
        results += _run_steps(session, drops, replan, dry_run, show_progress)
    return plan, results


def _run_steps(
    session: Session, steps: list[Step], plan: Plan, dry_run: bool, show_progress: bool
) -> list[TaskResult]:
    results: list[TaskResult] = []
    schema = plan.table.schema
    for step in steps:
        text = as_text(session.conn, step.query)
        if dry_run:
            results.append(TaskResult(step.action, step.target, "planned", step.reason, 0, text))
            continue
        start = time.monotonic()
        error: str | None = None
        try:
            if step.build:

                def cleanup(name: str = step.target) -> None:
                    _drop_if_invalid(session, schema, name)

                with watch(
                    session,
                    "catalog/index_build_progress",
                    f"building {step.target}",
                    _bars(show_progress),
                ):
                    run_with_retries(
                        session, step.query, relation_oid=plan.table_oid, after_timeout=cleanup
                    )
                if not _is_valid(session, schema, step.target):
                    error = "the build finished but the index is not valid"
                    _drop_if_invalid(session, schema, step.target)
            else:
                run_with_retries(session, step.query, relation_oid=plan.table_oid)
        except (LockNotGranted, psycopg.Error) as exc:
            error = error_text(exc)
            if step.build and _is_valid(session, schema, step.target) is False:
                _drop_if_invalid(session, schema, step.target)
                if _is_valid(session, schema, step.target) is False:
                    error += (
                        "; an invalid index was left behind (it cannot be dropped while that "
                        "transaction runs): the next `epstats indexes apply` drops and rebuilds it"
                    )
        except KeyboardInterrupt:
            if step.build:
                _drop_if_invalid(session, schema, step.target)
            raise
        seconds = time.monotonic() - start
        status = "failed" if error else "ok"
        results.append(
            TaskResult(step.action, step.target, status, error or step.reason, seconds, text, error)
        )
    return results
