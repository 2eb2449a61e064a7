"""A recommended index on a partitioned source table, built without blocking the API's
INSERTs: PostgreSQL refuses `CREATE INDEX CONCURRENTLY` on a partitioned table, so the index
is created `ON ONLY` the parent (instant, invalid), built `CONCURRENTLY` on each partition
under a name derived from the partition's, and attached (`ALTER INDEX … ATTACH PARTITION`,
short, under lock_timeout); the parent's index becomes valid when every partition's is
attached. A sub-partitioned partition gets its own `ON ONLY` index, its partitions' attached
to it, then it is attached in turn. A partition that already has an index of the definition
has it attached rather than a second one built; an invalid index left under the derived name
(a build that failed or was killed) is dropped and built again; the state is read from the
catalog each run, so an interrupted run is finished by the next.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from psycopg import sql

from epstats_cli.db import Session
from epstats_cli.execute import Executor, Mode, Statement, Step
from epstats_cli.history import TaskResult
from epstats_cli.steps import LEFTOVER, NAMEDATALEN


@dataclass(frozen=True)
class PartIndex:
    """One index of a partition (the row of indexes/partition_indexes)."""

    oid: int
    name: str
    method: str
    valid: bool
    plain: bool
    columns: tuple[str, ...]
    opclasses: tuple[str, ...]  # '' for the default operator class
    options: tuple[str, ...]
    attached_to: int | None


@dataclass
class Part:
    """A partition (at any level) and its indices."""

    oid: int
    schema: str
    name: str
    parent_oid: int
    level: int
    partitioned: bool
    indexes: list[PartIndex] = field(default_factory=list)

    @property
    def qualified(self) -> tuple[str, str]:
        return (self.schema, self.name)


def tree(session: Session, oid: int) -> list[Part]:
    """Every partition under the partitioned table `oid`, level by level, with its indices."""
    parts: dict[int, Part] = {}
    for r in session.all("indexes/partition_indexes", {"oid": oid}):
        part = parts.setdefault(
            int(r["partition_oid"]),
            Part(
                int(r["partition_oid"]),
                r["schema"],
                r["partition"],
                int(r["parent_oid"]),
                int(r["level"]),
                bool(r["partitioned"]),
            ),
        )
        if r["index_oid"] is not None:
            part.indexes.append(
                PartIndex(
                    int(r["index_oid"]),
                    r["index"],
                    r["method"],
                    bool(r["valid"]),
                    bool(r["plain"]),
                    tuple(r["columns"]),
                    tuple(r["opclasses"]),
                    tuple(r["options"]),
                    None if r["attached_to"] is None else int(r["attached_to"]),
                )
            )
    return list(parts.values())


def derived_name(partition: str, table: str, index: str) -> str:
    """The name of a recommended index's copy on a partition: the partition's name and what
    the index's name adds to the table's (`requests_p20250301_timestamp_idx` for
    `requests_timestamp_idx`); too long for NAMEDATALEN, cut and made unique by a hash."""
    rest = index[len(table) + 1 :] if index.startswith(table + "_") else index
    full = f"{partition}_{rest}"
    if len(full.encode()) < NAMEDATALEN:
        return full
    digest = hashlib.md5(f"{partition}\0{index}".encode()).hexdigest()[:8]
    stem = full.encode()[: NAMEDATALEN - 1 - 9].decode(errors="ignore")
    return f"{stem}_{digest}"


@dataclass(frozen=True)
class Wanted:
    """A recommended index as the partitions need it: its name, key columns, the methods an
    existing index may have to count (auto unmeasured: btree or brin), the operator class of
    each column ('' the default) and how to write its statements."""

    name: str
    columns: tuple[str, ...]
    methods: tuple[str, ...]
    opclasses: tuple[str, ...]
    build: Callable[[tuple[str, str], str], sql.Composed]  # (partition, name) -> CREATE INDEX
    on_only: Callable[[tuple[str, str], str], sql.Composed]  # (partition, name) -> ON ONLY

    def fits(self, idx: PartIndex) -> bool:
        return (
            idx.plain
            and idx.method in self.methods
            and idx.columns == self.columns
            and all(o == "0" for o in idx.options)
            and idx.opclasses == self.opclasses
        )


@dataclass(frozen=True)
class PartState:
    """What one partition has of one recommended index: `attached` (done), `attach` (an index
    of the definition is there, to attach), `build` (none: built and attached), `rebuild` (an
    invalid one under the derived name: dropped, built, attached), `building` (another
    session's build runs on it), `conflict` (the derived name is taken by another index),
    `partitioned` (a sub-partitioned partition: its own partitions are listed)."""

    partition: str
    index: str
    state: str
    partition_index: str | None


@dataclass(frozen=True)
class Work:
    """A step of the partitioned build, what it makes (an index name that later steps need)
    and what it needs made first (a failed need skips it)."""

    step: Step
    makes: str | None = None
    needs: tuple[str, ...] = ()


def plan(
    session: Session,
    parts: list[Part],
    root: tuple[int, str, str],  # (oid, schema, name) of the partitioned table
    index_oid: int | None,  # the root's index of the name (None: missing)
    wanted: Wanted,
    building: set[int],
    concurrently: bool,
) -> tuple[list[PartState], list[Work]]:
    """Each partition's state of `wanted`, and the steps that finish it (none when the
    root's index is valid: every partition has it then)."""
    schema = root[1]
    table = root[2]
    states: list[PartState] = []
    work: list[Work] = []
    if index_oid is None:
        work.append(
            Work(
                Step(
                    "create",
                    wanted.name,
                    "recommended index is missing: created ON ONLY the partitioned table "
                    "(instant, invalid until every partition's index is attached)",
                    [Statement(wanted.on_only((schema, table), wanted.name))],
                    Mode.AUTOCOMMIT,
                    relation_oid=root[0],
                ),
                makes=wanted.name,
            )
        )
    children: dict[int, list[Part]] = {}
    for p in parts:
        children.setdefault(p.parent_oid, []).append(p)
    drop = "indexes/drop" if concurrently else "indexes/drop_blocking"
    mode = Mode.CONCURRENTLY if concurrently else Mode.AUTOCOMMIT

    def attach(parent: tuple[str, str], part: Part, name: str, why: str) -> Work:
        return Work(
            Step(
                "attach",
                f"{part.schema}.{name}",
                why,
                [
                    Statement(
                        session.statement(
                            "indexes/attach",
                            parent_index=parent,
                            partition_index=(part.schema, name),
                        )
                    )
                ],
                Mode.AUTOCOMMIT,
                relation_oid=part.oid,
            ),
            needs=(parent[1], name),
        )

    def walk(node: int, parent: tuple[str, str], parent_oid: int | None) -> None:
        for part in children.get(node, []):
            mine = next((i for i in part.indexes if i.attached_to == parent_oid), None)
            if parent_oid is not None and mine is not None:
                states.append(PartState(str(part.name), wanted.name, "attached", mine.name))
                if part.partitioned:  # its partitions' states (steps only where not valid)
                    walk(part.oid, (part.schema, mine.name), mine.oid)
                continue
            name = derived_name(part.name, table, wanted.name)
            free = [i for i in part.indexes if i.attached_to is None and wanted.fits(i)]
            if part.partitioned:
                own = free[0] if free else None
                states.append(
                    PartState(part.name, wanted.name, "partitioned", own.name if own else name)
                )
                if own is None:
                    work.append(
                        Work(
                            Step(
                                "create",
                                f"{part.schema}.{name}",
                                f"{wanted.name} on the sub-partitioned {part.name}: ON ONLY",
                                [Statement(wanted.on_only(part.qualified, name))],
                                Mode.AUTOCOMMIT,
                                relation_oid=part.oid,
                            ),
                            makes=name,
                            needs=(parent[1],),
                        )
                    )
                target = own.name if own else name
                if own is None or not own.valid:
                    walk(part.oid, (part.schema, target), own.oid if own else None)
                work.append(attach(parent, part, target, f"{part.name}'s index to {parent[1]}"))
                continue
            ready = next((i for i in free if i.valid), None)
            if ready is not None:
                states.append(PartState(part.name, wanted.name, "attach", ready.name))
                work.append(
                    attach(
                        parent,
                        part,
                        ready.name,
                        f"{part.name} has an index of the definition: attached to {parent[1]}",
                    )
                )
                continue
            same = next((i for i in part.indexes if i.name == name), None)
            if same is not None and same.oid in building:
                states.append(PartState(part.name, wanted.name, "building", name))
                continue
            if same is not None and same.valid:
                states.append(PartState(part.name, wanted.name, "conflict", name))
                work.append(
                    Work(
                        Step(
                            "build",
                            f"{part.schema}.{name}",
                            f"{wanted.name} on {part.name}",
                            [],
                            refused=f"an index named {name} on {part.name} has another "
                            "definition: rename or drop it, then run epstats indexes apply",
                        ),
                        makes=name,
                    )
                )
                continue
            states.append(PartState(part.name, wanted.name, "rebuild" if same else "build", name))
            if same is not None:
                work.append(
                    Work(
                        Step(
                            "drop_invalid",
                            f"{part.schema}.{name}",
                            "invalid index left by a failed or interrupted build",
                            [Statement(session.statement(drop, index=(part.schema, name)))],
                            mode,
                            relation_oid=part.oid,
                        ),
                        makes=name,
                    )
                )
            work.append(
                Work(
                    Step(
                        "build",
                        f"{part.schema}.{name}",
                        f"{wanted.name} on partition {part.name}",
                        [Statement(wanted.build(part.qualified, name))],
                        mode,
                        relation_oid=part.oid,
                        index=(part.schema, name),
                        repair=[
                            Statement(session.statement("indexes/drop", index=(part.schema, name)))
                        ],
                        leftover_hint="the next `epstats indexes apply` drops it and builds "
                        "it again (or `epstats maintain --only cleanup` drops it)",
                        progress="catalog/index_build_progress",
                    ),
                    makes=name,
                    needs=(name,) if same is not None else (),
                )
            )
            work.append(attach(parent, part, name, f"{part.name}'s index to {parent[1]}"))

    walk(root[0], (schema, wanted.name), index_oid)
    return states, work


def run(executor: Executor, work: list[Work]) -> list[TaskResult]:
    """Run the steps in order; one whose need failed (or was not run) is skipped, saying which:
    a partition's index is attached only once built, a partition's failure does not stop the
    others' (the parent's index stays invalid until the next apply finishes it)."""
    failed: set[str] = set()
    results: list[TaskResult] = []
    for w in work:
        missing = [n for n in w.needs if n in failed]
        step = w.step
        if missing:
            step = replace(step, skip=f"not run: {', '.join(missing)} was not made")
        got = executor.run_all([step])
        results += got
        if w.makes is not None and any(r.status != "ok" for r in got):
            failed.add(w.makes)
    return results


def leftover_drops(
    session: Session, parts: list[Part], building: set[int], concurrently: bool
) -> list[Step]:
    """The invalid `_ccnew`/`_ccold` copies an interrupted REINDEX CONCURRENTLY left on
    partitions (no build running on them)."""
    drop = "indexes/drop" if concurrently else "indexes/drop_blocking"
    return [
        Step(
            "drop_leftover",
            f"{p.schema}.{i.name}",
            "invalid leftover of an interrupted REINDEX CONCURRENTLY",
            [Statement(session.statement(drop, index=(p.schema, i.name)))],
            Mode.CONCURRENTLY if concurrently else Mode.AUTOCOMMIT,
            relation_oid=p.oid,
        )
        for p in parts
        if not p.partitioned
        for i in p.indexes
        if not i.valid
        and i.attached_to is None
        and LEFTOVER.search(i.name)
        and i.oid not in building
    ]


def status_rows(states: list[PartState]) -> list[dict[str, Any]]:
    """`indexes status`'s rows per partition."""
    return [
        {
            "partition": s.partition,
            "index": s.index,
            "partition_index": s.partition_index,
            "state": s.state,
        }
        for s in states
    ]
