"""The recommended indices: what exists, what is redundant or unused, and applying the plan
without blocking writes (CONCURRENTLY, lock_timeout, bounded retries, repair of leftovers).

It is over 400 lines because the plan's one picture of the table (what exists, what `auto` resolved
to by measurement, and the switch of an index of the recommended name but another method:
build under a temporary name, swap the names, drop the old one, each CONCURRENTLY where it can
be) is what plan, apply and status all read; split, each part would need the others' state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from psycopg import sql

from epstats_cli import index_method, index_partitions, index_switch
from epstats_cli.catalog import relation, source_oid
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
    partitioned: bool = False  # the index of a partitioned table (relkind I): no storage

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
    # present | present_as | missing | invalid | conflict | switch | building; on a partitioned
    # table also incomplete (the parent's index exists, not yet on every partition)
    state: str
    existing: str | None = None
    detail: str = ""
    choice: index_method.Choice | None = None  # what `auto` resolved to, measured

    @property
    def method(self) -> str:
        """The method `apply` builds: `auto` resolved by the measurement (unmeasured: auto)."""
        if self.spec.method == "auto" and self.choice is not None:
            return self.choice.method
        return self.spec.method

    @property
    def build_method(self) -> str:
        """What a build uses: `auto` unmeasured (a sample cancelled) builds a btree, which
        fits any order of the rows."""
        return "btree" if self.method == "auto" else self.method


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
    # what the measurement says of each timestamp index (`auto`, and explicit BRINs)
    choices: dict[str, index_method.Choice] = field(default_factory=dict)
    # task: drop_leftover | drop_invalid | create | switch | drop_redundant; on a partitioned
    # table also build (a partition's index) and attach
    steps: list[Step] = field(default_factory=list)
    partitioned: bool = False
    # on a partitioned table: each partition's state of each recommended index, and the
    # steps that finish them with what each needs made first
    partition_states: list[index_partitions.PartState] = field(default_factory=list)
    partition_work: list[index_partitions.Work] = field(default_factory=list)
    # valid indices an interrupted switch of method left under its temporary names
    switch_leftovers: list[SwitchLeftover] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """A built index whose method the measurement no longer backs (late rows, retention
        by DELETE): what `indexes status` warns of."""
        by_name = {i.name: i for i in self.indexes}
        out = []
        for rec in self.recommendations:
            choice = self.choices.get(rec.spec.name)
            built = by_name.get(rec.existing or "")
            if (
                choice is None
                or not choice.measured
                or built is None
                or not built.valid
                or built.method == choice.method
            ):
                continue
            if built.method == "brin":
                what = f"{built.name} is a BRIN that no longer fits: {choice.reason}"
            else:
                what = f"{built.name} is a {built.method}; a BRIN fits: {choice.reason}"
            fix = (
                "epstats indexes apply --switch-method"
                if rec.spec.method == "auto"
                else f"set indexes: {rec.spec.name} method: auto (or {choice.method})"
            )
            out.append(f"{what} ({fix})")
        return out + [left.warning() for left in self.switch_leftovers]


@dataclass(frozen=True)
class SwitchLeftover:
    """A valid index under a switch's temporary name (index_method.switch_leftover says what
    becomes of it)."""

    index: IndexInfo
    of: str  # the recommended index it was switching
    fate: index_switch.Fate

    @property
    def name(self) -> str:
        return self.index.name

    def warning(self) -> str:
        return (
            f"{self.name} ({self.index.method}, {self.index.size_bytes / 1048576:.1f} MB) is "
            f"left by an interrupted switch of method of {self.of}: {self.fate.text}"
        )


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


AUTO_METHODS = ("btree", "brin")
LAST = {
    "switch": 1,
    "drop_redundant": 2,
}  # apply runs these after the rest, in this order  # what `auto` may resolve to


def matches(idx: IndexInfo, columns: tuple[str, ...], method: str | None) -> bool:
    """Whether an existing index has exactly the recommended definition (method None: any
    method, for an index of another method that is to be switched; `auto` unmeasured: either
    method it may resolve to)."""
    methods = AUTO_METHODS if method == "auto" else (method,)
    return (
        idx.plain
        and (method is None or idx.method in methods)
        and idx.columns == columns
        and all(o == "0" for o in idx.options)
    )


def _sizes(existing: IndexInfo, choice: index_method.Choice | None) -> str:
    """What a switch of `existing` to the measured choice saves (or costs)."""
    if choice is None or choice.bytes is None:
        return ""
    new = choice.bytes
    delta = existing.size_bytes - new
    word = "saves" if delta >= 0 else "costs"
    return (
        f" ({existing.size_bytes / 1048576:.1f} MB now, ~{new / 1048576:.2f} MB as "
        f"{choice.method}: {word} {abs(delta) / 1048576:.1f} MB)"
    )


def match_recommended(
    specs: Sequence[IndexSpec],
    physical: dict[str, str],
    indexes: Sequence[IndexInfo],
    building: set[int],
    choices: dict[str, index_method.Choice] | None = None,
) -> list[Recommendation]:
    """Compare the recommended set with what the table has (`choices`: what `auto` resolved
    to by measurement, by index name)."""
    by_name = {i.name: i for i in indexes}
    out: list[Recommendation] = []
    for spec in specs:
        cols = tuple(physical[c] for c in spec.columns)
        named = by_name.get(spec.name)
        choice = (choices or {}).get(spec.name)
        rec = Recommendation(spec, cols, "missing", choice=choice)
        if named is not None and named.oid in building:
            rec = replace(rec, state="building", existing=named.name, detail="a build is running")
        elif named is not None and not named.valid:
            rec = replace(
                rec, state="invalid", existing=named.name, detail="a failed earlier build"
            )
        elif (
            named is not None
            and choice is not None
            and not choice.measured
            and matches(named, cols, spec.method)
        ):  # the measurement could not run: the existing index stays as it is
            kept = index_method.kept(choice, named.method)
            rec = replace(rec, state="present", existing=named.name, choice=kept)
        elif named is not None and matches(named, cols, rec.method):
            rec = replace(rec, state="present", existing=named.name)
        elif named is not None and matches(named, cols, None):
            detail = (
                f"a {named.method} index; {rec.method} fits better{_sizes(named, choice)}: "
                "epstats indexes apply --switch-method"
            )
            rec = replace(rec, state="switch", existing=named.name, detail=detail)
        elif named is not None:
            detail = f"exists as: {named.definition}"
            rec = replace(rec, state="conflict", existing=named.name, detail=detail)
        else:
            twin = next(
                (i for i in indexes if i.valid and matches(i, cols, rec.method)),
                None,
            )
            if twin is not None:
                rec = replace(rec, state="present_as", existing=twin.name)
        out.append(rec)
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


@dataclass(frozen=True)
class Invalid:
    """An invalid index `cleanup` may drop: on the table itself, or on one of its partitions."""

    relation_oid: int
    schema: str
    name: str
    oid: int


def invalid_indexes(session: Session, oid: int, schema: str) -> list[Invalid]:
    """The invalid indices of the table `oid` that cleanup may drop (CONCURRENTLY), and of a
    partitioned table's partitions those attached to nothing (a partition's build that failed
    or was killed). A partitioned table's own invalid index is not one: it is an index not yet
    on every partition, which `indexes apply` finishes (dropping it would drop the partitions'
    built indices with it)."""
    out = [
        Invalid(oid, schema, i.name, i.oid)
        for i in load_indexes(session, oid)
        if not i.valid and not i.partitioned
    ]
    if relkind(session, session.config.source.table) == "p" and oid == source_oid(session):
        out += [
            Invalid(p.oid, p.schema, i.name, i.oid)
            for p in index_partitions.tree(session, oid)
            if not p.partitioned
            for i in p.indexes
            if not i.valid and i.attached_to is None
        ]
    return out


def builds_running(session: Session, oid: int) -> list[dict[str, Any]]:
    """Index builds in progress on the table (pg_stat_progress_create_index)."""
    return session.all("catalog/index_builds", {"oid": oid})


def _physical(session: Session) -> dict[str, str]:
    cols = session.config.source.columns
    return {c: cols.physical(c) for c in ("endpoint", "timestamp", "response_time", "status")}


def measure(session: Session, oid: int) -> dict[str, index_method.Choice]:
    """What each `auto` index (and each BRIN of the timestamp alone, to judge its fit) would
    be, measured on the heap (index_method.measure: at most 1,024 blocks read)."""
    column = session.config.source.columns.physical("timestamp")
    wanted = [
        s
        for s in session.config.indexes.recommended
        if s.columns == ("timestamp",) and s.method in ("auto", "brin")
    ]
    if not wanted:
        return {}
    choice = index_method.measure(session, oid, column)
    return {s.name: choice for s in wanted}


def make_plan(
    session: Session,
    concurrently: bool = True,
    prune_redundant: bool = False,
    *,
    measured: bool = False,
    switch_method: bool = False,
) -> Plan:
    """Everything `indexes plan` shows and `indexes apply` would do. `measured`: resolve
    `auto` by measuring the heap (plan, apply, status); unmeasured, an index of either method
    it may resolve to counts as present (check, advise, preflight)."""
    table = session.config.source.table
    oid = source_oid(session)
    indexes = load_indexes(session, oid)
    builds = builds_running(session, oid)
    building = {int(b["index_relid"]) for b in builds if b["index_relid"]}
    specs = session.config.indexes.recommended
    choices = measure(session, oid) if measured else {}
    auto = {s.name for s in specs if s.method == "auto"}
    recs = match_recommended(
        specs,
        _physical(session),
        indexes,
        building,
        {k: v for k, v in choices.items() if k in auto},
    )
    partitioned = relkind(session, table) == "p"
    if partitioned:
        if switch_method:
            raise OperationFailed(
                f"--switch-method is not supported on a partitioned table ({table}): run "
                "`epstats indexes apply` without it, or drop the index and apply again"
            )
        recs = [_partitioned_state(r, indexes) for r in recs]
    # an explicit BRIN is judged too (status warns when it no longer fits), never resolved
    plan_choices = {r.spec.name: r.choice for r in recs if r.choice is not None}
    plan_choices.update({k: v for k, v in choices.items() if k not in auto})
    keep = [r.existing for r in recs if r.existing and r.state in ("present", "present_as")]
    keep += [s.name for s in specs]
    # Indices about to be built count as covering, so the plan shows what apply will prune.
    hypothetical = [
        IndexInfo(
            r.spec.name,
            -1 - n,
            r.build_method,
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
        plan_choices,
        partitioned=partitioned,
    )
    on_parent = {i.name for i in indexes if i.partitioned}

    def dropping(task: str, name: str, reason: str) -> Step:
        # a partitioned index cannot be dropped CONCURRENTLY: a short DROP under lock_timeout
        online = concurrently and name not in on_parent
        query = session.statement(
            "indexes/drop" if online else "indexes/drop_blocking", index=(table.schema, name)
        )
        mode = Mode.CONCURRENTLY if online else Mode.AUTOCOMMIT
        return Step(task, name, reason, [Statement(query)], mode, relation_oid=oid)

    plan.switch_leftovers = switch_leftovers(indexes, recs, building)
    for switched in plan.switch_leftovers:
        if switched.fate.drop:
            why = f"left by an interrupted switch of method of {switched.of}: {switched.fate.why}"
            plan.steps.append(dropping("drop_leftover", switched.name, why))
    for left in plan.leftovers:
        plan.steps.append(
            dropping(
                "drop_leftover",
                left.name,
                "invalid leftover of an interrupted REINDEX CONCURRENTLY",
            )
        )
    if partitioned:
        _plan_partitions(session, plan, concurrently)
    for rec in [] if partitioned else recs:
        if rec.state == "invalid":
            plan.steps.append(
                dropping(
                    "drop_invalid", rec.spec.name, "invalid index left by a failed earlier build"
                )
            )
        if rec.state in ("invalid", "missing"):
            plan.steps.append(_create(session, plan, rec, concurrently))
        if rec.state == "switch" and switch_method:
            plan.steps += _switch(session, plan, rec, concurrently)
    if prune_redundant:
        for name, covered_by in sorted(redundant.items()):
            if name in {s.name for s in specs}:
                continue
            plan.steps.append(
                dropping("drop_redundant", name, f"redundant: covered by {covered_by}")
            )
    # in the order apply runs them: the switches after the builds, the prunes last
    plan.steps.sort(key=lambda s: LAST.get(s.task, 0))
    return plan


def relkind(session: Session, table: QualifiedName) -> str | None:
    found = relation(session, table.schema, table.name)
    return None if found is None else found.relkind


def _partitioned_state(rec: Recommendation, indexes: Sequence[IndexInfo]) -> Recommendation:
    """On a partitioned table, an invalid index of the recommended name is the parent's index
    not yet on every partition (an interrupted apply): finished, not dropped; of another
    definition, a conflict."""
    if rec.state != "invalid":
        return rec
    named = next(i for i in indexes if i.name == rec.existing)
    if named.partitioned and matches(named, rec.columns, rec.method):
        return replace(
            rec,
            state="incomplete",
            detail="not yet on every partition: `epstats indexes apply` finishes it",
        )
    return replace(rec, state="conflict", detail=f"invalid, exists as: {named.definition}")


def _wanted(
    session: Session, rec: Recommendation, existing: IndexInfo | None, concurrently: bool
) -> index_partitions.Wanted:
    method = existing.method if existing is not None else rec.build_method
    opclass = ""
    if method == "brin" and rec.spec.method == "auto" and rec.choice and rec.choice.opclass:
        opclass = rec.choice.opclass
    if existing is not None and method != rec.build_method:  # built another way: keep its kind
        rec = replace(rec, spec=replace(rec.spec, method=method), choice=None)
    return index_partitions.Wanted(
        existing.name if existing is not None else rec.spec.name,
        rec.columns,
        (method,),
        (opclass,) * len(rec.columns),
        lambda table, name: _create_statement(session, table, rec, name, concurrently),
        lambda table, name: on_only_statement(session, table, rec, name),
    )


def _plan_partitions(session: Session, plan: Plan, concurrently: bool) -> None:
    """The steps that finish each recommended index on a partitioned table (ON ONLY the
    parent, built on each partition, attached), and each partition's state of it."""
    parts = index_partitions.tree(session, plan.table_oid)
    building = {
        int(r["index_relid"])
        for r in session.all("indexes/partition_builds", {"oid": plan.table_oid})
    }
    plan.partition_work += [
        index_partitions.Work(s)
        for s in index_partitions.leftover_drops(session, parts, building, concurrently)
    ]
    by_name = {i.name: i for i in plan.indexes}
    root = (plan.table_oid, plan.table.schema, plan.table.name)
    for rec in plan.recommendations:
        if rec.state not in ("missing", "incomplete", "present", "present_as"):
            continue
        existing = by_name.get(rec.existing or "") if rec.state != "missing" else None
        if existing is not None and not existing.partitioned:
            continue
        wanted = _wanted(session, rec, existing, concurrently)
        index = existing.oid if existing is not None else None
        states, work = index_partitions.plan(
            session, parts, root, index, wanted, building, concurrently
        )
        plan.partition_states += states
        plan.partition_work += work
    plan.steps += [w.step for w in plan.partition_work]


def _create(session: Session, plan: Plan, rec: Recommendation, concurrently: bool) -> Step:
    """Build a recommended index; a try that fails leaves it invalid, and it is dropped."""
    name = rec.spec.name
    create = _create_statement(session, _ident(plan), rec, name, concurrently)
    reason = "recommended index is " + ("invalid: rebuild" if rec.state == "invalid" else "missing")
    if rec.choice is not None and rec.spec.method == "auto":
        reason += f"; {rec.choice.method}: {rec.choice.reason}"
    return _build_step(session, plan, "create", name, reason, create, concurrently)


def _definition(rec: Recommendation) -> tuple[sql.Composable, sql.Composable, sql.Composable]:
    """The method, the columns (with the measured operator class of a BRIN) and the WITH
    options (a BRIN: autosummarize on, the measured pages_per_range) of a recommended index."""
    columns: sql.Composable = sql.SQL(", ").join(sql.Identifier(c) for c in rec.columns)
    if rec.build_method != "brin":
        return sql.SQL(rec.build_method), columns, sql.SQL("")
    choice = rec.choice if rec.spec.method == "auto" else None
    if choice is not None and choice.opclass:
        columns = sql.SQL("{} {}").format(columns, sql.Identifier(choice.opclass))
    options: list[sql.Composable] = [sql.SQL("autosummarize = on")]
    if choice is not None and choice.pages_per_range:
        options.insert(
            0, sql.SQL("pages_per_range = {}").format(sql.Literal(choice.pages_per_range))
        )
    return sql.SQL("brin"), columns, sql.SQL(" WITH ({})").format(sql.SQL(", ").join(options))


def _create_statement(
    session: Session,
    table: tuple[str, str],
    rec: Recommendation,
    name: str,
    concurrently: bool,
) -> sql.Composed:
    """CREATE INDEX of the recommended definition under `name` on `table` (the source table,
    or one of its partitions): a BRIN with autosummarize on, and the measured operator class
    and pages_per_range."""
    method, columns, with_options = _definition(rec)
    if rec.build_method != "brin":
        return session.statement(
            "indexes/create" if concurrently else "indexes/create_blocking",
            index=name,
            table=table,
            method=method,
            columns=columns,
        )
    return session.statement(
        "indexes/create_brin" if concurrently else "indexes/create_brin_blocking",
        index=name,
        table=table,
        columns=columns,
        with_options=with_options,
    )


def on_only_statement(
    session: Session, table: tuple[str, str], rec: Recommendation, name: str
) -> sql.Composed:
    """CREATE INDEX IF NOT EXISTS … ON ONLY a partitioned table (or sub-partition)."""
    method, columns, with_options = _definition(rec)
    return session.statement(
        "indexes/create_on_only",
        index=name,
        table=table,
        method=method,
        columns=columns,
        with_options=with_options,
    )


def _build_step(
    session: Session,
    plan: Plan,
    task: str,
    target: str,
    reason: str,
    create: sql.Composed,
    concurrently: bool,
    name: str | None = None,
) -> Step:
    schema = plan.table.schema
    name = name or target
    return Step(
        task,
        target,
        reason,
        [Statement(create)],
        Mode.CONCURRENTLY if concurrently else Mode.AUTOCOMMIT,
        relation_oid=plan.table_oid,
        index=(schema, name),
        repair=[Statement(session.statement("indexes/drop", index=(schema, name)))],
        leftover_hint="`epstats maintain --only cleanup` drops it once that transaction ends "
        "(and the next `epstats indexes apply` rebuilds it)",
        progress="catalog/index_build_progress",
    )


def _ident(plan: Plan) -> tuple[str, str]:
    return (plan.table.schema, plan.table.name)


switch_names = index_switch.switch_names


def switch_leftovers(
    indexes: Sequence[IndexInfo], recs: Sequence[Recommendation], building: set[int]
) -> list[SwitchLeftover]:
    """Valid indices under a switch's temporary names that no build is filling, and what
    becomes of each (index_switch.switch_fate)."""
    by_name = {i.name: i for i in indexes}
    out = []
    for rec in recs:
        target = by_name.get(rec.spec.name)
        target_method = target.method if target is not None and target.valid else None
        for kind, name in zip(("new", "old"), switch_names(rec.spec.name), strict=True):
            left = by_name.get(name)
            if left is None or not left.valid or left.oid in building:
                continue
            if not matches(left, rec.columns, None):
                continue  # not the same columns: not ours
            choice = rec.choice if rec.spec.method == "auto" else None
            fate = index_switch.switch_fate(
                kind, left.method, left.definition, target_method, rec.method, choice
            )
            out.append(SwitchLeftover(left, rec.spec.name, fate))
    return out


def _switch(session: Session, plan: Plan, rec: Recommendation, concurrently: bool) -> list[Step]:
    """Replace the index of the recommended name by one of the recommended method: build the
    new one CONCURRENTLY under a temporary name, swap the names in one short transaction (under
    lock_timeout), drop the old one CONCURRENTLY. What an interrupted switch left under the
    temporary names is dropped first."""
    schema = plan.table.schema
    name = rec.spec.name
    new, old = switch_names(name)
    drop = "indexes/drop" if concurrently else "indexes/drop_blocking"
    mode = Mode.CONCURRENTLY if concurrently else Mode.AUTOCOMMIT
    handled = {left.name: left for left in plan.switch_leftovers}  # dropped or reused
    steps = [
        Step(
            "drop_leftover",
            left.name,
            "left by an interrupted switch of method",
            [Statement(session.statement(drop, index=(schema, left.name)))],
            mode,
            relation_oid=plan.table_oid,
        )
        for left in plan.indexes
        if left.name in (new, old) and left.name not in handled
    ]
    reuse = new in handled and handled[new].fate.reuse
    existing = next(i for i in plan.indexes if i.name == rec.existing)
    why = f"switch {existing.method} to {rec.method}" + _sizes(existing, rec.choice)
    build = _build_step(
        session,
        plan,
        "switch",
        name,
        why + ": build the new index",
        _create_statement(session, _ident(plan), rec, new, concurrently),
        concurrently,
        new,
    )
    build = replace(
        build, leftover_hint="the next `epstats indexes apply --switch-method` drops it"
    )
    swap = Step(
        "switch",
        name,
        why + ": swap the names",
        [
            Statement(session.statement("view/rename_index", index=(schema, name), new_name=old)),
            Statement(session.statement("view/rename_index", index=(schema, new), new_name=name)),
        ],
        Mode.TRANSACTION,
        relation_oid=plan.table_oid,
    )
    retire = Step(
        "switch",
        name,
        why + f": drop the old {existing.method}",
        [Statement(session.statement(drop, index=(schema, old)))],
        mode,
        relation_oid=plan.table_oid,
    )
    return [*steps, *([] if reuse else [build]), swap, retire]


def conflicts(plan: Plan) -> list[Recommendation]:
    return [r for r in plan.recommendations if r.state == "conflict"]


def apply(
    session: Session,
    executor: Executor,
    *,
    concurrently: bool = True,
    prune_redundant: bool = False,
    switch_method: bool = False,
) -> tuple[Plan, list[TaskResult]]:
    """Carry out the plan step by step; a failed step is reported and the rest still run
    (but a switch of method stops at its first failed step: the old index stays)."""
    plan = make_plan(
        session, concurrently, prune_redundant, measured=True, switch_method=switch_method
    )
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
    work = {id(w.step) for w in plan.partition_work}
    results = executor.run_all(
        [s for s in plan.steps if s.task not in ("drop_redundant", "switch") and id(s) not in work]
    )
    results += index_partitions.run(executor, plan.partition_work)
    for rec in plan.recommendations:
        switching = [s for s in plan.steps if s.task == "switch" and s.target == rec.spec.name]
        results += executor.run_all(switching, stop_on_failure=True)
    if prune_redundant:
        replan = make_plan(session, concurrently, prune_redundant=True, measured=True)
        drops = [s for s in replan.steps if s.task == "drop_redundant"]
        failed = [
            r.target
            for r in results
            if r.task in ("create", "build", "attach") and r.status in ("failed", "skipped")
        ]
        if failed:
            # the index that would cover them is not there: keep them (never leave a column
            # without the index it had)
            why = f"not pruned: building {', '.join(failed)} failed"
            drops = [replace(s, skip=why) for s in drops]
        results += executor.run_all(drops)
    return plan, results
