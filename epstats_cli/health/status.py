"""`epstats status`: server, table, indices, rollup and maintenance facts on one screen.

Read-only; a section the role cannot read is reported as unavailable rather than failing the
whole screen.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import psycopg

from epstats_cli import cardinality, catalog, indexes, schedule
from epstats_cli.catalog import ServerFacts, TableFacts
from epstats_cli.config import Config
from epstats_cli.db import IDLE_IN_TRANSACTION_TIMEOUT, Session
from epstats_cli.durations import format_duration
from epstats_cli.errors import EpstatsError, first_line
from epstats_cli.health import facts


@dataclass(frozen=True)
class IndexRow:
    """An index on the source table, or a recommended one that is missing."""

    name: str
    columns: str
    method: str
    valid: bool | None  # None: missing
    size_bytes: int | None
    scans: int | None
    redundant_of: str | None
    recommended: bool
    missing: bool = False

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if not self.missing:
            del d["missing"]
        return d


@dataclass(frozen=True)
class RollupStatus:
    name: str
    usable: bool
    why: str = ""  # when not usable
    strategy: Literal["materialized", "incremental"] | None = None
    built_by_epstats: bool = False
    size_bytes: int | None = None
    watermark: dt.datetime | None = None
    rows: int | None = None
    oldest_unaggregated: dt.datetime | None = None
    unaggregated_age_seconds: float | None = None  # by the server's clock

    def as_dict(self) -> dict[str, Any]:
        if not self.usable:
            return {"name": self.name, "usable": False, "why": self.why}
        d = asdict(self)
        del d["why"]
        return d


@dataclass(frozen=True)
class TaskStatus:
    task: str
    last_run: dt.datetime | None
    last_status: facts.RunStatus | None
    last_ok: dt.datetime | None
    next_due: dt.datetime | None
    due_now: bool
    why: str


@dataclass(frozen=True)
class RoleSetting:
    """A setting a session of this role starts with, against what epstats uses instead."""

    name: str
    role_value: str  # what the role would impose (the value RESET restores)
    source: str  # role in database | role | database | all roles | server
    epstats_value: str


# The order `status` shows them in; transaction_timeout exists from PostgreSQL 17 on.
ROLE_SETTINGS = (
    "statement_timeout",
    "lock_timeout",
    "idle_in_transaction_session_timeout",
    "transaction_timeout",
    "default_transaction_read_only",
)


@dataclass(frozen=True)
class Status:
    """Everything `epstats status` shows; a section that could not be read is its reason."""

    server: ServerFacts
    table_name: str
    table: TableFacts | None  # None: the source table does not exist (and no more sections)
    indexes: Sequence[IndexRow] | str = ()
    rollup: RollupStatus | str | None = None
    maintenance: Sequence[TaskStatus] | str = ()
    role_settings: Sequence[RoleSetting] | str = ()
    endpoints: cardinality.Cardinality | str | None = None  # distinct endpoints per day

    def as_dict(self) -> dict[str, Any]:
        """The JSON document of `status --format json`."""
        out: dict[str, Any] = {
            "server": asdict(self.server),
            "table": {"name": self.table_name, "present": False}
            if self.table is None
            else {"name": self.table_name, "present": True, **asdict(self.table)},
        }
        if self.table is not None:
            out.update(self._sections())
        out["role_settings"] = (
            self.role_settings
            if isinstance(self.role_settings, str)
            else [asdict(r) for r in self.role_settings]
        )
        return out

    def _sections(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        out["indexes"] = (
            self.indexes if isinstance(self.indexes, str) else [i.as_dict() for i in self.indexes]
        )
        out["rollup"] = (
            self.rollup.as_dict() if isinstance(self.rollup, RollupStatus) else self.rollup
        )
        out["maintenance"] = (
            self.maintenance
            if isinstance(self.maintenance, str)
            else [asdict(m) for m in self.maintenance]
        )
        out["endpoints"] = (
            self.endpoints.as_dict()
            if isinstance(self.endpoints, cardinality.Cardinality)
            else self.endpoints
        )
        return out


def gather(session: Session) -> Status:
    """Read everything `epstats status` shows (read-only)."""
    name = str(session.config.source.table)
    server = catalog.server_facts(session)
    table = catalog.table_facts(session)
    settings = role_settings(session)
    if table is None:
        return Status(server, name, None, role_settings=settings)
    return Status(
        server,
        name,
        table,
        _indexes(session),
        _rollup(session),
        _maintenance(session, server.now, catalog.need_from(table, server)),
        settings,
        _endpoints(session),
    )


def role_settings(session: Session) -> list[RoleSetting] | str:
    """What the role and database would impose on a session, and what epstats uses instead."""
    try:
        rows = {r["name"]: r for r in session.all("catalog/role_settings")}
    except psycopg.Error as exc:
        return f"unavailable: {first_line(exc)}"
    ours = epstats_settings(session.config)
    return [
        RoleSetting(n, _shown(rows[n]["value"], rows[n]["unit"]), rows[n]["source"], ours[n])
        for n in ROLE_SETTINGS
        if n in rows
    ]


def epstats_settings(config: Config) -> dict[str, str]:
    """What epstats uses for each of ROLE_SETTINGS, as people read it (pure)."""
    db = config.database
    return {
        "statement_timeout": _duration(db.statement_timeout.total_seconds() * 1000),
        "lock_timeout": _duration(db.lock_timeout.total_seconds() * 1000),
        "idle_in_transaction_session_timeout": _duration(
            IDLE_IN_TRANSACTION_TIMEOUT.total_seconds() * 1000
        ),
        "transaction_timeout": _duration(0),
        "default_transaction_read_only": "not overridden (changing commands refuse when on)",
    }


def _shown(value: str, unit: str | None) -> str:
    """A setting's raw value and unit as people write it: 1s, 5m, 0 (none), on."""
    if unit == "ms" and value.lstrip("-").isdigit():
        return _duration(float(value))
    if unit == "s" and value.lstrip("-").isdigit():
        return _duration(float(value) * 1000)
    return value if unit is None else f"{value}{unit}"


def _duration(ms: float) -> str:
    return "0 (none)" if ms <= 0 else format_duration(dt.timedelta(milliseconds=ms))


def _indexes(session: Session) -> list[IndexRow] | str:
    try:
        plan = indexes.make_plan(session)
    except psycopg.Error as exc:
        return f"unavailable: {first_line(exc)}"
    recommended = {r.existing for r in plan.recommendations if r.existing}
    rows = [
        IndexRow(
            i.name,
            ", ".join(i.columns) or "(expression)",
            i.method,
            i.valid,
            i.size_bytes,
            i.scans,
            plan.redundant.get(i.name),
            i.name in recommended,
        )
        for i in plan.indexes
    ]
    rows += [
        IndexRow(
            r.spec.name, ", ".join(r.columns), r.spec.method, None, None, None, None, True, True
        )
        for r in plan.recommendations
        if r.state == "missing"
    ]
    return rows


def _rollup(session: Session) -> RollupStatus | str:
    name = str(session.config.view_name)
    try:
        fresh = facts.rollup_freshness(session)
        if not fresh.usable:
            return RollupStatus(name, False, fresh.why)
        info = facts.rollup_info(session)
    except psycopg.Error as exc:
        return f"unavailable: {first_line(exc)}"
    except EpstatsError as exc:  # e.g. a source column of a type epstats cannot read
        return "unavailable: " + "; ".join(exc.message.splitlines())
    return RollupStatus(
        name,
        True,
        strategy="incremental" if info.strategy == "incremental" else "materialized",
        built_by_epstats=info.ours,
        size_bytes=info.size_bytes,
        watermark=info.as_of,
        rows=info.row_count,
        oldest_unaggregated=fresh.oldest_unaggregated,
        unaggregated_age_seconds=fresh.age_seconds,
    )


def _endpoints(session: Session) -> cardinality.Cardinality | str:
    """Distinct endpoints per day, as stored and (when on) normalized: a bounded read."""
    try:
        return cardinality.measure(session, raw_too=True)
    except psycopg.Error as exc:
        return f"unavailable: {first_line(exc)}"
    except EpstatsError as exc:
        return "unavailable: " + "; ".join(exc.message.splitlines())


def _maintenance(session: Session, now: dt.datetime, need: schedule.Need) -> list[TaskStatus] | str:
    try:
        history = facts.maintenance(session)
    except psycopg.Error as exc:
        return f"unavailable: {first_line(exc)}"
    if not history.available:
        return "no run history (epstats init)"
    last_ok = {t: r.last_ok for t, r in history.runs.items() if r.last_ok is not None}
    out = []
    for d in schedule.due_tasks(last_ok, session.config.maintenance, now, need):
        run = history.runs.get(d.task)
        out.append(
            TaskStatus(
                d.task,
                None if run is None else run.last_started,
                None if run is None else run.last_status,
                d.last_run,
                d.next_due,
                d.due,
                d.reason,
            )
        )
    return out
