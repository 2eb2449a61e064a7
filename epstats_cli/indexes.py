"""The recommended indices: what exists, what is redundant or unused, and applying the plan
without blocking writes (CONCURRENTLY, lock_timeout, bounded retries, repair of leftovers)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from psycopg import sql

from epstats_cli.catalog import source_oid
from epstats_cli.config import IndexSpec, QualifiedName
from epstats_cli.db import Session
from epstats_cli.errors import OperationFailed
from epstats_cli.execute import Executor, Mode, Statement, Step
from epstats_cli.history import TaskResult
from epstats_cli.steps import LEFTOVER


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
    # task: drop_leftover | drop_invalid | create | drop_redundant
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
    """Every index on the table with oid `oid`, valid or not."""
    out = []
    for r in session.all("catalog/table_indexes", {"oid": oid}):
        for key in ("columns", "opclasses", "collations", "options"):
            r[key] = tuple(r[key])
        out.append(IndexInfo(**r))
    return out


def builds_running(session: Session, oid: int) -> list[dict[str, Any]]:
    """Index builds in progress on the table (pg_stat_progress_create_index)."""
    return session.all("catalog/index_builds", {"oid": oid})


def _physical(session: Session) -> dict[str, str]:
    cols = session.config.source.columns
    return {c: cols.physical(c) for c in ("endpoint", "timestamp", "response_time", "status")}


def make_plan(session: Session, concurrently: bool = True, prune_redundant: bool = False) -> Plan:
    """Everything `indexes plan` shows and `indexes apply` would do."""
    table = session.config.source.table
    oid = source_oid(session)
    indexes = load_indexes(session, oid)
    builds = builds_running(session, oid)
    building = {int(b["index_relid"]) for b in builds if b["index_relid"]}
    specs = session.config.indexes.recommended
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
    plan = Plan(
        table,
        oid,
        indexes,
        recs,
        redundant,
        unused,
        leftovers(indexes, building),
        builds,
        session.value("catalog/stats_reset"),
    )
    drop = "indexes/drop" if concurrently else "indexes/drop_blocking"

    def dropping(task: str, name: str, reason: str) -> Step:
        query = session.statement(drop, index=(table.schema, name))
        mode = Mode.CONCURRENTLY if concurrently else Mode.AUTOCOMMIT
        return Step(task, name, reason, [Statement(query)], mode, relation_oid=oid)

    for left in plan.leftovers:
        plan.steps.append(
            dropping(
                "drop_leftover",
                left.name,
                "invalid leftover of an interrupted REINDEX CONCURRENTLY",
            )
        )
    for rec in recs:
        if rec.state == "invalid":
            plan.steps.append(
                dropping(
                    "drop_invalid", rec.spec.name, "invalid index left by a failed earlier build"
                )
            )
        if rec.state in ("invalid", "missing"):
            plan.steps.append(_create(session, plan, rec, concurrently))
    if prune_redundant:
        for name, covered_by in sorted(redundant.items()):
            if name in {s.name for s in specs}:
                continue
            plan.steps.append(
                dropping("drop_redundant", name, f"redundant: covered by {covered_by}")
            )
    return plan


def _create(session: Session, plan: Plan, rec: Recommendation, concurrently: bool) -> Step:
    """Build a recommended index; a try that fails leaves it invalid, and it is dropped."""
    schema = plan.table.schema
    name = rec.spec.name
    create = session.statement(
        "indexes/create" if concurrently else "indexes/create_blocking",
        index=name,
        table=(schema, plan.table.name),
        method=sql.SQL(rec.spec.method),
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in rec.columns),
    )
    return Step(
        "create",
        name,
        "recommended index is " + ("invalid: rebuild" if rec.state == "invalid" else "missing"),
        [Statement(create)],
        Mode.CONCURRENTLY if concurrently else Mode.AUTOCOMMIT,
        relation_oid=plan.table_oid,
        index=(schema, name),
        repair=[Statement(session.statement("indexes/drop", index=(schema, name)))],
        leftover_hint="`epstats maintain --only cleanup` drops it once that transaction ends "
        "(and the next `epstats indexes apply` rebuilds it)",
        progress="catalog/index_build_progress",
    )


def conflicts(plan: Plan) -> list[Recommendation]:
    return [r for r in plan.recommendations if r.state == "conflict"]


def apply(
    session: Session,
    executor: Executor,
    *,
    concurrently: bool = True,
    prune_redundant: bool = False,
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
    if executor.dry_run:
        return plan, executor.run_all(plan.steps)
    # prune only what is redundant once the builds have succeeded
    results = executor.run_all([s for s in plan.steps if s.task != "drop_redundant"])
    if prune_redundant:
        replan = make_plan(session, concurrently, prune_redundant=True)
        drops = [s for s in replan.steps if s.task == "drop_redundant"]
        failed = [r.target for r in results if r.task == "create" and r.status == "failed"]
        if failed:
            # the index that would cover them is not there: keep them (never leave a column
            # without the index it had)
            why = f"not pruned: building {', '.join(failed)} failed"
            drops = [replace(s, skip=why) for s in drops]
        results += executor.run_all(drops)
    return plan, results
