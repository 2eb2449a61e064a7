"""`tune`: the source table's storage parameters for an insert-mostly log, from measurement.

Autovacuum's defaults scale with the table: a VACUUM after 20 % of its size in inserts
(PostgreSQL 13+) and an ANALYZE after 10 % changed. On a log that only grows, both come
ever later: the visibility map falls behind (index-only scans visit the heap), rows stay
unfrozen until an anti-wraparound vacuum reads the whole table at once, and the planner's
statistics miss the newest days that every report asks for. The fix the PostgreSQL
documentation describes is per-table: scale factors of 0 and fixed thresholds. epstats sets
the thresholds from the measured insert rate (rows dated within the last day), so that
autovacuum comes about every `tune.vacuum_every` of inserts and autoanalyze about every
`tune.analyze_every`, whatever the table's size.

`recommend` is pure (measurement and server version in, settings out); `plan` measures and
compares with each relation's storage parameters (every partition of a partitioned table:
the parent has no storage, and a partition created later has none until `tune apply` runs
again, which `tune status` shows); `apply` runs one ALTER TABLE ... SET per relation that
differs, through the executor (lock_timeout, retries, history, --dry-run).

It is over 400 lines because each recommendation's evidence (the words `plan` shows) is made
beside its value from the same measurement, and the rights `apply` needs from the same plan:
split, a value and the reason given for it would drift apart.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from epstats_cli import rights, source
from epstats_cli.catalog import relation, source_oid
from epstats_cli.config import QualifiedName, TuneConfig
from epstats_cli.db import Session
from epstats_cli.durations import human_seconds
from epstats_cli.execute import Executor, Statement, Step
from epstats_cli.history import TaskResult

INT_MAX = 2**31 - 1
# the server's own minimum thresholds (their defaults): never recommend fewer rows than these
MIN_INSERT_THRESHOLD = 1000
MIN_ANALYZE_THRESHOLD = 50
MIN_VACUUM_THRESHOLD = 50
# every setting epstats may recommend, in the order they are shown
PARAMETERS = (
    "autovacuum_vacuum_insert_threshold",
    "autovacuum_vacuum_insert_scale_factor",
    "autovacuum_analyze_threshold",
    "autovacuum_analyze_scale_factor",
    "autovacuum_vacuum_threshold",
    "autovacuum_vacuum_scale_factor",
    "autovacuum_freeze_min_age",
)
# the server setting a storage parameter overrides, where their names differ (the server has
# no autovacuum_freeze_min_age: autovacuum's VACUUMs use vacuum_freeze_min_age)
SERVER_NAME = {"autovacuum_freeze_min_age": "vacuum_freeze_min_age"}
SERVER_SETTINGS = (
    *(SERVER_NAME.get(p, p) for p in PARAMETERS),
    "autovacuum_vacuum_max_threshold",
)
# How far a threshold set on a relation may be from the recommendation and still count as
# set: the insert rate of a live table moves from one measurement to the next, and a
# threshold 10 % off changes nothing that matters; re-ALTERing it on every run would.
TOLERANCE = 0.25


@dataclass(frozen=True)
class Measurement:
    """What the recommendation is made from."""

    version_num: int
    rows_last_day: int  # rows dated within the last day up to now
    rows: int  # reltuples, partitions summed
    pages: int
    inserted: int  # since the statistics were reset, partitions summed
    updated: int
    deleted: int
    partitions: int  # leaf partitions (0: a plain table)
    server: dict[str, str] = field(default_factory=dict)  # the server's own settings
    # the largest leaf partition and its rows (reltuples): a partition's autovacuum triggers
    # scale with its own size, not the whole table's
    largest: tuple[str, int] | None = None

    @property
    def per_hour(self) -> float:
        """Rows inserted per hour, from the last day's rows."""
        return self.rows_last_day / 24

    def as_dict(self) -> dict[str, Any]:
        """The measurement as plan's JSON shows it."""
        return {
            "server_version_num": self.version_num,
            "rows_last_day": self.rows_last_day,
            "rows_per_hour": round(self.per_hour, 1),
            "rows": self.rows,
            "pages": self.pages,
            "inserted": self.inserted,
            "updated": self.updated,
            "deleted": self.deleted,
            "partitions": self.partitions,
        }


@dataclass(frozen=True)
class Setting:
    """One recommended storage parameter and the evidence for it."""

    parameter: str
    value: str
    reason: str


def number(text: str | None) -> int | float | str | None:
    """A setting's text as the number it is (JSON shows numbers as numbers)."""
    if text is None:
        return None
    try:
        return int(text)
    except ValueError:
        pass
    try:
        return float(text)
    except ValueError:
        return text


def _rows(rate_per_hour: float, every_seconds: float, floor: int) -> int:
    """The rows inserted in `every_seconds` at a measured rate, within the server's bounds."""
    return min(INT_MAX, max(floor, math.ceil(rate_per_hour * every_seconds / 3600)))


def _every(rows: int, rate_per_hour: float, every_seconds: float, floor: int) -> str:
    """How often a threshold of `rows` comes at the rate, in words, saying when the server's
    minimum (or maximum) rather than the configured interval set it."""
    came = human_seconds(rows / rate_per_hour * 3600)
    if rows == floor and rate_per_hour * every_seconds / 3600 < floor:
        return f"about every {came} (the minimum of {floor:,} rows; at this rate that is longer)"
    if rows == INT_MAX:
        return f"about every {came} (the most a threshold may be, {INT_MAX:,} rows)"
    return f"about every {came}"


def _scaled(m: Measurement, share: float) -> str:
    """What a default scale factor of `share` waits for, for the table or, partitioned, for
    its largest partition (each partition's triggers scale with its own size)."""
    if m.partitions and m.largest is not None:
        name, rows = m.largest
        return (
            f"each partition by its own size: the largest, {name}, has {rows:,} rows now: "
            f"{math.ceil(share * rows):,} more"
        )
    return f"{m.rows:,} rows now: {math.ceil(share * m.rows):,} more"


def recommend(m: Measurement, cfg: TuneConfig) -> tuple[list[Setting], list[str]]:
    """The storage parameters a table measured as `m` should have, and notes on what was
    considered and left alone (pure: no server)."""
    notes: list[str] = []
    if m.rows_last_day == 0:
        notes.append(
            "no rows dated within the last day: no insert rate to set thresholds from "
            "(run `epstats tune plan` again once the API writes)"
        )
        return [], notes
    rate = f"{m.rows_last_day:,} rows dated within the last day (~{m.per_hour:,.0f} per hour)"
    out: list[Setting] = []
    vacuum_every = cfg.vacuum_every.total_seconds()
    analyze_every = cfg.analyze_every.total_seconds()
    if m.version_num >= 130000:
        rows = _rows(m.per_hour, vacuum_every, MIN_INSERT_THRESHOLD)
        every = _every(rows, m.per_hour, vacuum_every, MIN_INSERT_THRESHOLD)
        out.append(
            Setting(
                "autovacuum_vacuum_insert_threshold",
                str(rows),
                f"{rate}: a VACUUM {every} of inserts keeps "
                "the visibility map current (index-only scans) and freezes rows while their "
                "pages are still cached, instead of one anti-wraparound pass over the table",
            )
        )
        unfrozen = (
            "; PostgreSQL 18 scales the insert trigger by the unfrozen share of the table, "
            "which a scale factor of 0 leaves out anyway"
            if m.version_num >= 180000
            else ""
        )
        out.append(
            Setting(
                "autovacuum_vacuum_insert_scale_factor",
                "0",
                "a fixed threshold: the default 0.2 of the table waits ever longer as the log "
                f"grows ({_scaled(m, 0.2)} inserts)" + unfrozen,
            )
        )
    else:
        notes.append(
            "PostgreSQL before 13 has no insert-triggered autovacuum: `maintain` vacuums on "
            "its schedule"
        )
    rows = _rows(m.per_hour, analyze_every, MIN_ANALYZE_THRESHOLD)
    every = _every(rows, m.per_hour, analyze_every, MIN_ANALYZE_THRESHOLD)
    out.append(
        Setting(
            "autovacuum_analyze_threshold",
            str(rows),
            f"{rate}: an ANALYZE {every} keeps the "
            "statistics of the newest rows, which reports ask for, current",
        )
    )
    out.append(
        Setting(
            "autovacuum_analyze_scale_factor",
            "0",
            "a fixed threshold: the default 0.1 of the table comes ever later as the log grows "
            f"({_scaled(m, 0.1)} changed rows)",
        )
    )
    if m.deleted > 0:
        rows = _rows(m.per_hour, 86400, MIN_VACUUM_THRESHOLD)
        cap = m.server.get("autovacuum_vacuum_max_threshold")
        capped = ""
        if cap is not None and int(cap) > 0:
            capped = (
                f"; below autovacuum_vacuum_max_threshold {int(cap):,} (PostgreSQL 18), "
                "which therefore does not apply"
                if rows < int(cap)
                else f"; autovacuum_vacuum_max_threshold {int(cap):,} caps it"
            )
        out.append(
            Setting(
                "autovacuum_vacuum_threshold",
                str(rows),
                f"{m.deleted:,} rows deleted since the statistics were reset (retention): a "
                "VACUUM after about a day of rows deleted makes their space reusable for the "
                "next day's inserts" + capped,
            )
        )
        out.append(
            Setting(
                "autovacuum_vacuum_scale_factor",
                "0",
                "a fixed threshold: the default 0.2 of the table lets dead rows pile up as "
                "the log grows",
            )
        )
    else:
        notes.append(
            "no rows deleted since the statistics were reset: the dead-tuple trigger "
            "(autovacuum_vacuum_threshold/scale_factor"
            + (", autovacuum_vacuum_max_threshold" if m.version_num >= 180000 else "")
            + ") is left at the server's"
        )
    if m.updated == 0 and m.inserted > 0 and m.version_num >= 130000:
        out.append(
            Setting(
                "autovacuum_freeze_min_age",
                "0",
                f"{m.inserted:,} rows inserted and none updated since the statistics were "
                "reset: rows never change once written, so the insert-triggered VACUUM may "
                "freeze them at once, sparing a later anti-wraparound VACUUM a pass over "
                "every page",
            )
        )
    elif m.updated > 0:
        notes.append(
            f"{m.updated:,} rows updated since the statistics were reset: "
            "autovacuum_freeze_min_age is left at the server's (freezing rows that change "
            "again is wasted)"
        )
    return out, notes


def measure(session: Session) -> tuple[Measurement, list[dict[str, Any]]]:
    """The measurement, and the table with its partitions (oid, schema, name, relkind, options)."""
    oid = source_oid(session)
    columns = source.check_columns(session, oid)
    basis = source.Basis.of(session.config, columns)
    day_ago = sql.SQL("(now() - interval '1 day')")
    since = session.statement(
        "fragments/since",
        timestamp=session.config.source.columns.timestamp,
        from_ts=source.bound(session, basis, day_ago),
    )
    window = sql.SQL("{} AND {}").format(since, source.up_to_now(session, basis))
    table = session.config.source.table
    recent = session.value("tune/recent_rows", table=(table.schema, table.name), since=window)
    activity = session.one("tune/activity", {"oid": oid})
    assert activity is not None
    relations = session.all("tune/relations", {"oid": oid})
    server = {
        r["name"]: str(r["setting"])
        for r in session.all("tune/server_settings", {"names": list(SERVER_SETTINGS)})
    }
    leaves = [r for r in relations if r["relkind"] == "r" and int(r["oid"]) != oid]
    biggest = max(leaves, key=lambda r: int(r["rows"]), default=None)
    m = Measurement(
        session.server.version_num,
        int(recent or 0),
        int(activity["rows"]),
        int(activity["pages"]),
        int(activity["inserted"]),
        int(activity["updated"]),
        int(activity["deleted"]),
        len(leaves),
        server,
        None
        if biggest is None
        else (str(QualifiedName(biggest["schema"], biggest["name"])), int(biggest["rows"])),
    )
    return m, relations


def _options(raw: list[str]) -> dict[str, str]:
    """pg_class.reloptions (`name=value` strings) as a mapping."""
    return dict(o.split("=", 1) for o in raw)


def _close(current: str, recommended: str) -> bool:
    """Whether a relation's value is close enough to the recommendation to leave alone:
    within TOLERANCE of it (a scale factor or freeze age of 0: exactly 0)."""
    try:
        a, b = float(current), float(recommended)
    except ValueError:
        return current == recommended
    return abs(a - b) <= TOLERANCE * abs(b)


@dataclass(frozen=True)
class Comparison:
    """One parameter of one relation: what it is, what the server would use, what is
    recommended."""

    relation: str
    oid: int
    parameter: str
    current: str | None  # the relation's storage parameter; None: not set
    server: str | None  # the server's setting, used while the relation sets none
    recommended: str
    reason: str

    @property
    def state(self) -> str:
        if self.current is None:
            return "not set"
        return "ok" if _close(self.current, self.recommended) else "differs"

    def as_dict(self) -> dict[str, Any]:
        return {
            "relation": self.relation,
            "parameter": self.parameter,
            "current": number(self.current),
            "server_default": number(self.server),
            "recommended": number(self.recommended),
            "state": self.state,
            "reason": self.reason,
        }


@dataclass
class Plan:
    table: QualifiedName
    measurement: Measurement
    settings: list[Setting]
    notes: list[str]
    comparisons: list[Comparison]
    steps: list[Step]


def make_plan(session: Session) -> Plan:
    """Measure, recommend, compare with every relation that has storage, and the steps."""
    m, relations = measure(session)
    settings, notes = recommend(m, session.config.tune)
    storage = [r for r in relations if r["relkind"] == "r"]
    if any(r["relkind"] == "p" for r in relations):
        notes.append(
            f"partitioned: set on each of its {len(storage)} partition(s) (the parent has no "
            "storage); a partition created later has none of them until `epstats tune apply` "
            "runs again (`tune status` shows it)"
        )
    comparisons: list[Comparison] = []
    steps: list[Step] = []
    for r in storage:
        label = str(QualifiedName(r["schema"], r["name"]))
        current = _options(list(r["options"]))
        mine = [
            Comparison(
                label,
                int(r["oid"]),
                s.parameter,
                current.get(s.parameter),
                m.server.get(SERVER_NAME.get(s.parameter, s.parameter)),
                s.value,
                s.reason,
            )
            for s in settings
        ]
        comparisons += mine
        wrong = [c for c in mine if c.state != "ok"]
        if not wrong:
            continue
        assignments = sql.SQL(", ").join(
            sql.SQL("{} = {}").format(sql.SQL(c.parameter), sql.Literal(float(c.recommended)))
            if "." in c.recommended
            else sql.SQL("{} = {}").format(sql.SQL(c.parameter), sql.Literal(int(c.recommended)))
            for c in wrong
        )
        statement = session.statement(
            "tune/set_options", table=(r["schema"], r["name"]), settings=assignments
        )
        said = ", ".join(f"{c.parameter} {c.current or 'unset'} -> {c.recommended}" for c in wrong)
        steps.append(
            Step(
                "tune",
                label,
                f"storage parameters for an insert-mostly log: {said}",
                [Statement(statement)],
                done=f"set: {said}",
                relation_oid=int(r["oid"]),
            )
        )
    return Plan(session.config.source.table, m, settings, notes, comparisons, steps)


def apply_needs(session: Session) -> rights.Needs:
    """Every right `tune apply` (and its --dry-run) needs: recording the run, SELECT on the
    table to measure its insert rate, and the owner's rights (ALTER TABLE ... SET; MAINTAIN
    does not give them) on each relation whose parameters it would set (on every partition
    when it cannot measure, as any of them may differ). A missing table needs nothing: the
    command says so itself."""
    table = session.config.source.table
    found = relation(session, table.schema, table.name)
    if found is None:
        return rights.Needs()
    measure_needs = rights.Needs().on(table, "SELECT", why="measure the insert rate")
    leaves = [r for r in session.all("tune/relations", {"oid": found.oid}) if r["relkind"] == "r"]
    if not rights.lacking(session, measure_needs):
        planned = {st.relation_oid for st in make_plan(session).steps}
        leaves = [r for r in leaves if int(r["oid"]) in planned]
    storage = [QualifiedName(r["schema"], r["name"]) for r in leaves]
    needs = rights.record_needs(session) if storage else rights.Needs()
    needs.merge(measure_needs)
    for name in storage:
        needs.owned(name, why="ALTER TABLE ... SET (storage parameters)")
    return needs


def apply(session: Session, executor: Executor) -> tuple[Plan, list[TaskResult]]:
    """Set what differs, one ALTER TABLE per relation (each under lock_timeout)."""
    plan = make_plan(session)
    return plan, executor.run_all(plan.steps)
