"""`epstats partition plan|apply|status`: the source table converted online to range
partitions by day, week or month (local midnights in source.timezone).

The way (after pgslice's prep → fill → swap, without its need of a numeric key):
1. *prepare*: a partitioned table `<table>_intermediate` beside the source, with the same
   columns, defaults, constraints, comments, indices (under spare names), owner and grants;
   its partitions from the oldest row's interval to `partition.premake` intervals ahead, and a
   DEFAULT partition (README: why).
2. *capture*: an AFTER INSERT trigger (one per statement, a transition table) copies every
   row written to the source from then on into `<table>_captured`; created under
   lock_timeout (it waits for the INSERTs in flight, and INSERTs wait for it at most that).
3. *copy*: the source's rows, range by range of the timestamp (about `partition.batch_rows`
   rows each), each batch one statement: `INSERT … SELECT` of the range and, in the same
   snapshot, `DELETE` of the captured rows of that range (a row and its capture are written by
   one transaction: a snapshot sees both or neither, so no row is copied twice or lost, and
   legitimate duplicates stay). The progress is noted on the new table in the batch's
   transaction: an interrupted copy resumes after the last batch that committed.
4. *drain*: the captured rows moved into the new table in batches, until few are left.
5. *swap*: one transaction under lock_timeout (retried; INSERTs wait at most that for the
   lock, then for a few statements): lock the source, move the last captured rows, drop the
   trigger, rename the source `<table>_retired` and the new table to its name, give the
   indices and constraints their names, the sequences their owner.
6. ANALYZE the new table (the parent itself: autovacuum never does).
The old table is kept until `--drop-old` or `cleanup` after `partition.keep_old`; an
interrupted apply resumes where it stopped, `--rollback` removes what it built.

It is over 400 lines because the conversion is one sequence whose steps share their names and
facts (and --dry-run must show the very statements of each); the partitions made ahead later
are in partition_ahead.py.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from epstats_cli import partition, source
from epstats_cli.catalog import relation
from epstats_cli.config import QualifiedName
from epstats_cli.db import Session, now
from epstats_cli.errors import EpstatsError, OperationFailed
from epstats_cli.execute import CONFLICTS_SHARE_UPDATE_EXCLUSIVE, Executor, Mode, Statement, Step
from epstats_cli.history import TaskResult
from epstats_cli.keep import spare_index_name
from epstats_cli.rollup.refresh import plan_refresh

TASK = "partition"
TRIGGER = "epstats_partition_capture"
NOTE = "epstats partition: "  # the start of the progress note on the new table
RETIRED_NOTE = "epstats partition: retired at "
DRAIN_ROWS = 10_000  # rows per drain batch; the swap moves at most this many under its lock
GB = 1024**3
ALL_MODES = (
    "AccessShareLock",
    "RowShareLock",
    "RowExclusiveLock",
    *CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
)
DRAIN_DONE = "captured rows moved"


def _cut(name: str, suffix: str) -> str:
    room = partition.NAMEDATALEN - 1 - len(suffix.encode())
    return name.encode()[:room].decode(errors="ignore") + suffix


@dataclass(frozen=True)
class Names:
    """The relations a conversion of `table` makes (each in the table's schema)."""

    table: QualifiedName

    def _in(self, name: str) -> QualifiedName:
        return QualifiedName(self.table.schema, name)

    @property
    def new(self) -> QualifiedName:
        return self._in(_cut(self.table.name, "_intermediate"))

    @property
    def retired(self) -> QualifiedName:
        return self._in(_cut(self.table.name, "_retired"))

    @property
    def captured(self) -> QualifiedName:
        return self._in(_cut(self.table.name, "_captured"))

    @property
    def function(self) -> QualifiedName:
        return self._in(_cut(self.table.name, "_capture"))

    @property
    def default(self) -> QualifiedName:
        return self._in(_cut(self.table.name, "_default"))


def ident(q: QualifiedName) -> tuple[str, str]:
    return (q.schema, q.name)


@dataclass
class State:
    """Where a conversion stands."""

    stage: str  # plain | prepared | capturing | swapped | partitioned
    new_oid: int | None = None
    interval: str | None = None  # of a conversion under way, from its note
    copied_through: str | None = None  # the upper bound value of the last batch copied; "all"
    retired_oid: int | None = None
    retired_at: dt.datetime | None = None

    @property
    def said(self) -> str:
        return {
            "plain": "a plain table: not converted",
            "prepared": "conversion under way: partitioned table built, capture not started",
            "capturing": "conversion under way: capturing new rows, copying"
            + (f" (copied through {self.copied_through})" if self.copied_through else ""),
            "swapped": "partitioned by epstats; the old table is kept",
            "partitioned": "partitioned",
        }[self.stage]


def _note(interval: str, through: str | None) -> str:
    return f"{NOTE}interval={interval}; copied through={through or ''}"


def _parse_note(note: str | None) -> tuple[str | None, str | None]:
    if not note or not note.startswith(NOTE):
        return None, None
    parts = dict(p.split("=", 1) for p in note[len(NOTE) :].split("; ") if "=" in p)
    return parts.get("interval") or None, parts.get("copied through") or None


def state(session: Session, names: Names | None = None) -> State:
    """Where the conversion of the source table stands, from the catalog alone."""
    names = names or Names(session.config.source.table)
    row = session.one(
        "partition/state",
        {
            "schema": names.table.schema,
            "table": names.table.name,
            "new": names.new.name,
            "retired": names.retired.name,
            "captured": names.captured.name,
            "trigger": TRIGGER,
        },
    )
    assert row is not None
    retired_at = None
    if row["retired_note"] and str(row["retired_note"]).startswith(RETIRED_NOTE):
        try:
            retired_at = dt.datetime.fromisoformat(row["retired_note"][len(RETIRED_NOTE) :])
        except ValueError:
            retired_at = None
    if row["table_kind"] == "p":
        stage = "swapped" if row["retired_oid"] is not None else "partitioned"
        return State(stage, retired_oid=row["retired_oid"], retired_at=retired_at)
    if row["new_oid"] is None:
        return State("plain")
    interval, through = _parse_note(row["new_note"])
    stage = "capturing" if row["capturing"] else "prepared"
    return State(stage, int(row["new_oid"]), interval, through)


@dataclass(frozen=True)
class Facts:
    table: QualifiedName
    oid: int
    owner: str
    naive: bool
    rows: int
    bytes: int
    first_day: dt.date | None
    last_day: dt.date | None
    today: dt.date
    columns: list[str]


def facts(session: Session) -> Facts:
    table = session.config.source.table
    found = relation(session, table.schema, table.name)
    if found is None:
        raise OperationFailed(f"no table {table} (check source.table)")
    oid = found.oid
    naive = source.check_columns(session, oid).naive
    basis = source.Basis.of(session.config, source.check_columns(session, oid))
    row = session.one(
        "partition/facts",
        {"oid": oid, "tz": session.config.source.timezone},
        table=ident(table),
        instant=source.instant(session, basis),
    )
    assert row is not None
    columns = [r["name"] for r in session.all("partition/columns", {"oid": oid})]
    return Facts(
        table,
        oid,
        row["owner"],
        naive,
        max(0, int(row["rows"])),
        int(row["bytes"]),
        row["first_day"],
        row["last_day"],
        row["today"],
        columns,
    )


def choose_interval(rows: int, size: int, days: int) -> tuple[str, str]:
    """The interval of partitions for a table of `rows` rows and `size` bytes spanning `days`
    days (pure): partitions of roughly 1-10 GB or a few million rows, not thousands of tiny
    ones (planning and locks grow with their number), never above a month."""
    span = max(days, 1)
    per_day = size / span
    said = f"{size / GB:.2f} GB over {span} day(s): about {per_day / 1024**2:,.0f} MB a day"
    if per_day >= 256 * 1024**2 or rows / span >= 2_000_000:
        return "day", said + " (a day's partition is already large)"
    if per_day * 7 >= 256 * 1024**2 or rows / span * 7 >= 2_000_000:
        return "week", said + " (a week's partition holds a few GB at most)"
    return "month", said + " (smaller partitions would only multiply them)"


@dataclass
class Plan:
    table: QualifiedName
    state: State
    interval: str
    interval_reason: str
    partitions: list[partition.Bounds]
    uniques: list[dict[str, Any]]
    refusals: list[str]
    notes: list[str]
    steps: list[Step] = field(default_factory=list)
    facts: Facts | None = None


def _options(session: Session, oid: int) -> sql.Composable:
    """` WITH (...)` of relation `oid`'s storage parameters ('' when none)."""
    raw = session.value("partition/options", {"oid": oid}) or []
    if not raw:
        return sql.SQL("")
    pairs = [o.split("=", 1) for o in raw]
    return sql.SQL(" WITH ({})").format(
        sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.SQL(k), sql.Literal(v)) for k, v in pairs)
    )


def _cols(f: Facts) -> sql.Composable:
    return sql.SQL(", ").join(sql.Identifier(c) for c in f.columns)


def _obstacles(session: Session, f: Facts, drop_unique: bool) -> tuple[list[Any], list[str]]:
    rows = session.all(
        "partition/obstacles",
        {"oid": f.oid, "timestamp": session.config.source.columns.timestamp, "trigger": TRIGGER},
    )
    uniques = [r for r in rows if r["kind"] == "unique"]
    refusals = [
        f"{r['kind']} {r['name']} ({r['detail']}): a conversion would not keep it; drop it, "
        "convert, then create it again"
        for r in rows
        if r["kind"] != "unique"
    ]
    if uniques and not drop_unique:
        refusals.append(
            "a PRIMARY KEY or UNIQUE constraint that does not include the timestamp column "
            "cannot exist on a partitioned table ("
            + ", ".join(r["name"] for r in uniques)
            + "): `partition apply --drop-unique` replaces each by a plain index"
        )
    return uniques, refusals


def make_plan(
    session: Session, interval: str | None = None, drop_unique: bool = False, drop_old: bool = False
) -> Plan:
    """What a conversion would do from where it stands, every statement of it."""
    names = Names(session.config.source.table)
    st = state(session, names)
    if st.stage in ("swapped", "partitioned"):
        plan = Plan(names.table, st, "", "", [], [], [], [st.said])
        if st.stage == "swapped" and drop_old:
            plan.steps.append(_drop_old_step(session, names))
        return plan
    f = facts(session)
    chosen = interval or session.config.partition.interval
    if st.interval is not None:
        if chosen not in ("auto", st.interval):
            raise OperationFailed(
                f"a conversion by {st.interval} is under way: resume it without --interval "
                f"{chosen}, or undo it first with `epstats partition apply --rollback`"
            )
        chosen, why = st.interval, "the conversion under way"
    elif chosen == "auto":
        days = (f.last_day - f.first_day).days + 1 if f.first_day and f.last_day else 1
        chosen, why = choose_interval(f.rows, f.bytes, days)
    else:
        why = "given" if interval else "partition.interval"
    uniques, refusals = _obstacles(session, f, drop_unique)
    first = f.first_day or f.today
    premake = session.config.partition.premake
    ahead = {"day": 1, "week": 7, "month": 31}[chosen] * premake
    last = max(f.last_day or f.today, f.today + dt.timedelta(days=ahead))
    bounds = partition.bounds(session, chosen, first, last, f.naive)
    notes = [
        f"{len(bounds)} partition(s) by {chosen} ({why}), from {bounds[0].first_day} to "
        f"{bounds[-1].end_day - dt.timedelta(days=1)}, and a DEFAULT partition for rows outside "
        "them",
        "the capture follows INSERTs; an UPDATE or DELETE of an old row during the conversion "
        "is not carried over (do not run retention by hand meanwhile)",
    ]
    plan = Plan(names.table, st, chosen, why, bounds, uniques, refusals, notes, facts=f)
    plan.steps = _steps(session, plan, names, f, st, drop_unique, drop_old)
    return plan


def _steps(
    session: Session,
    plan: Plan,
    names: Names,
    f: Facts,
    st: State,
    drop_unique: bool,
    drop_old: bool,
) -> list[Step]:
    steps: list[Step] = []
    if st.stage == "plain":
        steps.append(_prepare_step(session, plan, names, f, drop_unique))
    if st.stage in ("plain", "prepared"):
        steps.append(_capture_step(session, names, f))
    steps += _copy_steps(session, plan, names, f, st)
    steps.append(_drain_step(session, names, f))
    steps.append(_swap_step(session, plan, names, f))
    steps.append(
        Step(
            "analyze",
            str(names.table),
            "statistics of the partitioned table (the parent itself: autovacuum never "
            "analyzes it) and its partitions",
            [Statement(session.statement("maintenance/analyze", table=ident(names.table)))],
            done="statistics updated",
        )
    )
    refresh = _refresh_step(session)
    if refresh is not None:
        steps.append(refresh)
    if drop_old:
        steps.append(_drop_old_step(session, names))
    for s in steps:
        s.refused = "; ".join(plan.refusals) or None
    return steps


def _refresh_step(session: Session) -> Step | None:
    """The rollup refreshed once the partitioned table is in place: the copy wrote every row
    again, in transactions the rollup's last refresh could not see, so `report --source auto`
    would count the newest of them (within view.commit_delay of its as-of) twice until the
    next refresh. None when there is no rollup epstats can refresh (it says why itself)."""
    try:
        return plan_refresh(session)
    except EpstatsError:
        return None


def _prepare_step(session: Session, plan: Plan, names: Names, f: Facts, drop_unique: bool) -> Step:
    new, table = ident(names.new), ident(names.table)
    ts = session.config.source.columns.timestamp
    options = _options(session, f.oid)
    out = [
        Statement(session.statement("partition/create_parent", new=new, table=table, timestamp=ts))
    ]
    for b in plan.partitions:
        name = partition.partition_name(names.table.name, plan.interval, b.first_day)
        out.append(
            Statement(
                session.statement(
                    "partition/create_partition",
                    partition=(names.table.schema, name),
                    parent=new,
                    lower=sql.Literal(b.lower_value),
                    upper=sql.Literal(b.upper_value),
                    reloptions=options,
                )
            )
        )
    out.append(
        Statement(
            session.statement(
                "partition/create_default",
                partition=ident(names.default),
                parent=new,
                reloptions=options,
            )
        )
    )
    unique_names = {u["name"] for u in plan.uniques}
    constraints = {c["index"]: c for c in session.all("partition/constraints", {"oid": f.oid})}
    for position, idx in enumerate(session.all("keep/indexes", {"oid": f.oid})):
        spare = spare_index_name(idx["name"], position)
        con = constraints.get(idx["name"])
        if con is not None and idx["name"] not in unique_names:
            out.append(
                Statement(
                    session.statement(
                        "keep/add_constraint",
                        **_constraint_ids(session, new, spare, con["definition"]),
                    )
                )
            )
            continue
        unique = idx["is_unique"] and not (drop_unique and idx["name"] in unique_names)
        out.append(
            Statement(
                session.statement(
                    "keep/create_index",
                    unique=sql.SQL("UNIQUE " if unique else ""),
                    index=spare,
                    relation=new,
                    indexed=sql.SQL(idx["definition"]),
                )
            )
        )
    for part in [names.new.name, *_partition_names(plan, names), names.default.name]:
        if f.owner != session.server.user:
            out.append(
                Statement(
                    session.statement(
                        "keep/alter_owner",
                        kind=sql.SQL("TABLE"),
                        relation=(names.table.schema, part),
                        owner=f.owner,
                    )
                )
            )
    for g in session.all("keep/grants", {"oid": f.oid}):
        privilege: sql.Composable = sql.SQL(g["privilege"])
        if g["column_name"] is not None:
            privilege = sql.SQL("{} ({})").format(privilege, sql.Identifier(g["column_name"]))
        out.append(
            Statement(
                session.statement(
                    "keep/grant",
                    privileges=privilege,
                    relation=new,
                    grantee=sql.Identifier(g["grantee"]) if g["grantee"] else sql.SQL("PUBLIC"),
                    option=sql.SQL(" WITH GRANT OPTION" if g["grantable"] else ""),
                )
            )
        )
    out.append(
        Statement(
            session.statement(
                "keep/comment",
                kind=sql.SQL("TABLE"),
                relation=new,
                comment=sql.Literal(_note(plan.interval, None)),
            )
        )
    )
    return Step(
        TASK,
        str(names.new),
        f"build the partitioned table beside {names.table}: {len(plan.partitions)} "
        f"partition(s) by {plan.interval}, a DEFAULT partition, the same columns, defaults, "
        "constraints, indices, owner and grants",
        out,
        Mode.TRANSACTION,
        done="partitioned table built",
        on_failure=[Statement(session.statement("partition/drop_table", dropped=ident(names.new)))],
    )


def _constraint_ids(session: Session, table: tuple[str, str], name: str, definition: str) -> Any:
    return {"view": table, "constraint": name, "condition": sql.SQL(definition)}


def _partition_names(plan: Plan, names: Names) -> list[str]:
    return [
        partition.partition_name(names.table.name, plan.interval, b.first_day)
        for b in plan.partitions
    ]


def _capture_step(session: Session, names: Names, f: Facts) -> Step:
    cols = _cols(f)
    return Step(
        TASK,
        str(names.table),
        "capture every row written from now on (a trigger: SHARE ROW EXCLUSIVE for the "
        "moment it is created, under lock_timeout)",
        [
            Statement(
                session.statement(
                    "partition/create_capture",
                    captured=ident(names.captured),
                    table=ident(names.table),
                )
            ),
            Statement(
                session.statement(
                    "partition/create_capture_function",
                    function=ident(names.function),
                    captured=ident(names.captured),
                    columns=cols,
                )
            ),
            Statement(
                session.statement(
                    "partition/create_capture_trigger",
                    trigger=TRIGGER,
                    table=ident(names.table),
                    function=ident(names.function),
                )
            ),
        ],
        Mode.TRANSACTION,
        done="capturing new rows",
        relation_oid=f.oid,
        lock_modes=("RowExclusiveLock", *CONFLICTS_SHARE_UPDATE_EXCLUSIVE),
    )


@dataclass(frozen=True)
class Batch:
    lower: str | None  # None: the rows outside every range
    upper: str | None
    label: str


def batches(plan: Plan, f: Facts, through: str | None, batch_rows: int) -> list[Batch]:
    """The copy's ranges in time order: each partition's range cut into slices of about
    `batch_rows` rows (the table's rows spread evenly over its days), those up to `through`
    (copied already) left out; then the rows outside every range."""
    if through == "all":
        return []
    days = (f.last_day - f.first_day).days + 1 if f.first_day and f.last_day else 1
    per_day = f.rows / max(days, 1)
    out: list[Batch] = []
    for b in plan.partitions:
        if f.first_day is None or b.first_day > (f.last_day or b.first_day):
            slices = 1
        else:
            width = (b.end_day - b.first_day).days
            slices = max(1, min(1440, math.ceil(per_day * width / batch_rows)))
        span = b.upper - b.lower
        for k in range(slices):
            lo = b.lower_value if k == 0 else _value(b, b.lower + span * k / slices, f.naive)
            hi = (
                b.upper_value
                if k == slices - 1
                else _value(b, b.lower + span * (k + 1) / slices, f.naive)
            )
            if through is not None and hi <= through:
                continue
            if through is not None and lo < through:
                lo = through
            out.append(Batch(lo, hi, f"{b.first_day} ({k + 1}/{slices})"))
    out.append(Batch(None, None, "rows outside every partition's range"))
    return out


def _value(b: partition.Bounds, instant: dt.datetime, naive: bool) -> str:
    """A point inside a partition as the column's type reads it (ISO 8601, sortable as text
    like the bounds, which share its format)."""
    if naive:
        lower = dt.datetime.fromisoformat(b.lower_value)
        return (lower + (instant - b.lower)).isoformat(timespec="microseconds")
    return instant.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _range(session: Session, batch: Batch, plan: Plan) -> sql.Composable:
    ts = session.config.source.columns.timestamp
    if batch.lower is None:
        return session.statement(
            "fragments/partition_outside",
            timestamp=ts,
            lower=sql.Literal(plan.partitions[0].lower_value),
            upper=sql.Literal(plan.partitions[-1].upper_value),
        )
    return session.statement(
        "fragments/partition_range",
        timestamp=ts,
        lower=sql.Literal(batch.lower),
        upper=sql.Literal(batch.upper),
    )


def _copy_steps(session: Session, plan: Plan, names: Names, f: Facts, st: State) -> list[Step]:
    steps = []
    todo = batches(plan, f, st.copied_through, session.config.partition.batch_rows)
    for n, batch in enumerate(todo, 1):
        through = batch.upper or "all"
        steps.append(
            Step(
                TASK,
                str(names.new),
                f"copy batch {n} of {len(todo)}: {batch.label}",
                [
                    Statement(
                        session.statement(
                            "partition/copy_batch",
                            new=ident(names.new),
                            table=ident(names.table),
                            captured=ident(names.captured),
                            columns=_cols(f),
                            range=_range(session, batch, plan),
                        )
                    ),
                    Statement(
                        session.statement(
                            "keep/comment",
                            kind=sql.SQL("TABLE"),
                            relation=ident(names.new),
                            comment=sql.Literal(_note(plan.interval, through)),
                        )
                    ),
                ],
                Mode.TRANSACTION,
                done=f"copied batch {n} of {len(todo)}",
            )
        )
    return steps


def _drain_statement(session: Session, names: Names, f: Facts) -> Statement:
    return Statement(
        session.statement(
            "partition/drain",
            captured=ident(names.captured),
            new=ident(names.new),
            columns=_cols(f),
        ),
        {"limit": DRAIN_ROWS},
    )


def _drain_step(session: Session, names: Names, f: Facts) -> Step:
    return Step(
        TASK,
        str(names.new),
        f"move the captured rows into the new table, {DRAIN_ROWS:,} at a time (repeated "
        f"until fewer than {DRAIN_ROWS:,} are left)",
        [_drain_statement(session, names, f)],
        done=DRAIN_DONE,
    )


def _swap_step(session: Session, plan: Plan, names: Names, f: Facts) -> Step:
    table, new = ident(names.table), ident(names.new)
    schema = names.table.schema
    out = [
        Statement(session.statement("partition/lock", table=table)),
        Statement(
            session.statement(
                "partition/drain_all",
                captured=ident(names.captured),
                new=new,
                columns=_cols(f),
            )
        ),
        Statement(session.statement("partition/drop_trigger", trigger=TRIGGER, table=table)),
        Statement(session.statement("partition/drop_function", function=ident(names.function))),
        Statement(session.statement("partition/drop_table", dropped=ident(names.captured))),
        Statement(
            session.statement("partition/rename_table", table=table, new_name=names.retired.name)
        ),
    ]
    constraints = {c["index"]: c for c in session.all("partition/constraints", {"oid": f.oid})}
    unique_names = {u["name"] for u in plan.uniques}
    renames: list[Statement] = []
    for position, idx in enumerate(session.all("keep/indexes", {"oid": f.oid})):
        name = idx["name"]
        old_name = _cut(name, "_retired")
        spare = spare_index_name(name, position)
        con = constraints.get(name)
        if con is not None:
            out.append(
                Statement(
                    session.statement(
                        "partition/rename_constraint",
                        table=ident(names.retired),
                        constraint=con["name"],
                        new_name=old_name,
                    )
                )
            )
        else:
            out.append(
                Statement(
                    session.statement(
                        "partition/rename_index", index=(schema, name), new_name=old_name
                    )
                )
            )
        if con is not None and name not in unique_names:
            renames.append(
                Statement(
                    session.statement(
                        "partition/rename_constraint",
                        table=table,
                        constraint=spare,
                        new_name=con["name"],
                    )
                )
            )
        else:
            renames.append(
                Statement(
                    session.statement(
                        "partition/rename_index", index=(schema, spare), new_name=name
                    )
                )
            )
    out.append(
        Statement(session.statement("partition/rename_table", table=new, new_name=names.table.name))
    )
    out += renames
    for seq in session.all("partition/owned_sequences", {"oid": f.oid}):
        out.append(
            Statement(
                session.statement(
                    "partition/sequence_owner",
                    sequence=(seq["schema"], seq["name"]),
                    column=(schema, names.table.name, seq["column_name"]),
                )
            )
        )
    out.append(
        Statement(
            session.statement(
                "keep/comment",
                kind=sql.SQL("TABLE"),
                relation=ident(names.retired),
                comment=sql.Literal(RETIRED_NOTE + now(session)[0].isoformat()),
            )
        )
    )
    return Step(
        TASK,
        str(names.table),
        f"swap: {names.table} becomes the partitioned table, the old one {names.retired} "
        "(one transaction under lock_timeout: INSERTs wait at most that for the lock, then for "
        "the last captured rows to move)",
        out,
        Mode.TRANSACTION,
        done=f"swapped: {names.table} is partitioned; the old table is {names.retired}",
        relation_oid=f.oid,
        lock_modes=ALL_MODES,
    )


def _drop_old_step(session: Session, names: Names) -> Step:
    return Step(
        TASK,
        str(names.retired),
        "drop the table the conversion replaced",
        [Statement(session.statement("partition/drop_table", dropped=ident(names.retired)))],
        done="dropped",
    )


def rollback_steps(session: Session) -> list[Step]:
    """Undo a conversion under way: the trigger, the capture and the new table go; the source
    never changed."""
    names = Names(session.config.source.table)
    st = state(session, names)
    if st.stage not in ("prepared", "capturing"):
        raise OperationFailed(f"nothing to roll back: {names.table} is {st.said}")
    table = ident(names.table)
    return [
        Step(
            TASK,
            str(names.table),
            "roll back the conversion under way: drop its trigger, capture and new table",
            [
                Statement(
                    session.statement("partition/drop_trigger", trigger=TRIGGER, table=table)
                ),
                Statement(
                    session.statement("partition/drop_function", function=ident(names.function))
                ),
                Statement(session.statement("partition/drop_table", dropped=ident(names.captured))),
                Statement(session.statement("partition/drop_table", dropped=ident(names.new))),
            ],
            Mode.TRANSACTION,
            done="rolled back: the table is as it was",
        )
    ]


def apply(
    session: Session,
    executor: Executor,
    interval: str | None = None,
    drop_unique: bool = False,
    drop_old: bool = False,
    rollback: bool = False,
) -> tuple[Plan | None, list[TaskResult]]:
    """Run the conversion from where it stands (or roll it back); a dry run shows every
    statement. Stops at the first failure: the next run resumes."""
    if rollback:
        return None, executor.run_all(rollback_steps(session), stop_on_failure=True)
    plan = make_plan(session, interval, drop_unique, drop_old)
    if plan.refusals:
        raise OperationFailed("cannot convert " + str(plan.table) + ": " + "; ".join(plan.refusals))
    if executor.dry_run:
        return plan, executor.run_all(plan.steps)
    names = Names(plan.table)
    results: list[TaskResult] = []
    for step in plan.steps:
        if step.done == DRAIN_DONE:
            results += _drain(session, executor, step, names)
        else:
            results.append(executor.run(step))
        if results and results[-1].status == "failed":
            break
    return plan, results


def _drain(session: Session, executor: Executor, step: Step, names: Names) -> list[TaskResult]:
    """Run the drain step until fewer than DRAIN_ROWS captured rows are left (the swap moves
    those under its lock)."""
    results: list[TaskResult] = []
    while True:
        left = int(session.value("partition/captured_count", captured=ident(names.captured)) or 0)
        if left < DRAIN_ROWS:
            return results or [
                TaskResult(step.task, step.target, "ok", f"{left:,} captured row(s) left", 0)
            ]
        result = executor.run(step)
        results.append(result)
        if result.status == "failed":
            return results


def cleanup_steps(session: Session) -> list[Step]:
    """For `cleanup`: drop the table a conversion replaced once partition.keep_old has
    passed since the swap."""
    names = Names(session.config.source.table)
    st = state(session, names)
    if st.stage != "swapped" or st.retired_at is None:
        return []
    keep = session.config.partition.keep_old
    if now(session)[0] < st.retired_at + keep:
        return []
    step = _drop_old_step(session, names)
    step.task = "cleanup"
    step.reason = f"the table `partition apply` replaced, kept {keep} (partition.keep_old)"
    return [step]
