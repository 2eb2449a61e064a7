"""The facts `check` and `status` judge, read once from the server into typed dataclasses.

Read-only: catalog and statistics views, the run history, the rollup's watermark. Each group
is read on first use and kept for the run; a group that cannot be read (missing table, no
privilege) raises, and the checks that need it are UNKNOWN. It is over 400 lines because each
group's dataclass, gatherer and once-only reader (FactSource, Gatherer) stay side by side.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Literal, Protocol, TypeVar, cast

import psycopg

from epstats_cli import cardinality, catalog, history, indexes, rollup, source
from epstats_cli.catalog import ServerFacts, TableFacts
from epstats_cli.config import QualifiedName
from epstats_cli.db import Server, Session
from epstats_cli.errors import EpstatsError, OperationFailed
from epstats_cli.health import latency_facts, server_facts
from epstats_cli.health.server_facts import (
    ConnectionFacts,
    IngestFacts,
    ReplicationFacts,
    TableSequences,
    TransactionFacts,
)
from epstats_cli.partition_runway import Runway
from epstats_cli.pooler import PoolerInfo, session_guarantee
from epstats_cli.rollup import verify_record
from epstats_cli.rollup.build import new_name
from epstats_cli.rollup.pending import pending

# epstats.runs.status (its CHECK constraint)
RunStatus = Literal["running", "ok", "failed", "skipped"]


@dataclass(frozen=True)
class IndexFacts:
    """The source table's indices against the recommended set."""

    invalid: tuple[str, ...]  # invalid indices that no running build will finish
    missing: tuple[str, ...]  # recommended indices missing, invalid or defined otherwise
    redundant: Mapping[str, str]  # index -> the index that covers it


@dataclass(frozen=True)
class RollupFreshness:
    """Whether reports can use the rollup, and the oldest raw row it has not aggregated."""

    usable: bool
    why: str  # why reports cannot use it ("" when they can)
    oldest_unaggregated: dt.datetime | None = None  # None: up to date (or not usable)
    age_seconds: float | None = None  # the server's now() - oldest_unaggregated


@dataclass(frozen=True)
class VerifyRun:
    """One run of the verify task, as its summary in epstats.runs tells it."""

    started_at: dt.datetime  # in source.timezone
    status: RunStatus
    late_rows: int  # rows it found in days before the lookback window (arrived late)
    late_by: str | None  # how late the latest of them were, at most ("40d 5h")
    unrepaired: bool  # days that differ could not be repaired


@dataclass(frozen=True)
class LateRowsFacts:
    """The verify runs within check.late_rows, newest first (absent before `epstats init`)."""

    available: bool
    lookback: dt.timedelta  # view.lookback, which late rows outran
    runs: tuple[VerifyRun, ...] = ()


@dataclass(frozen=True)
class FinishedRun:
    """One finished run of a task, with what its error says about the failure."""

    ok: bool
    started_at: dt.datetime
    error: str | None
    lock_busy: bool = False  # it failed only because a lock was busy (lock_timeout, SKIP_LOCKED)
    left_behind: bool = False  # its failure left an invalid index or another leftover behind


@dataclass(frozen=True)
class LastRun:
    """One task's latest history on its primary target."""

    last_ok: dt.datetime | None
    last_status: RunStatus
    last_error: str | None
    last_started: dt.datetime
    p90_seconds: float | None
    recent: tuple[FinishedRun, ...] = ()  # newest first, at most check.maintain_failed_runs


class SourceMissing(OperationFailed):
    """The source table does not exist: nothing but `connect` can be checked."""

    def __init__(self, table: QualifiedName) -> None:
        self.table = table
        super().__init__(f"source table {table} does not exist")


@dataclass(frozen=True)
class MaintenanceFacts:
    """The run history: absent before `epstats init`."""

    available: bool
    runs: Mapping[str, LastRun]  # task -> its last runs


@dataclass(frozen=True)
class TableBloat:
    size_bytes: int
    bloat_ratio: float | None  # None: no estimate (never analyzed)


@dataclass(frozen=True)
class IndexBloat:
    name: str
    size_bytes: int
    bloat_ratio: float | None  # None: not a btree, or no statistics yet


@dataclass(frozen=True)
class PoolerFacts:
    """How this connection and the commands that change the database reach the server."""

    reads_per_statement: bool  # this connection goes through a pooler (settings per statement)
    separate: bool  # database.maintenance_dsn names another target than this connection's
    maintenance: PoolerInfo  # what answers where changing commands connect


# --- gatherers: one read each -----------------------------------------------------------------


def table(session: Session) -> TableFacts:
    """The source table's facts; SourceMissing when it does not exist."""
    facts = catalog.table_facts(session)
    if facts is None:
        raise SourceMissing(session.config.source.table)
    return facts


def index_facts(plan: indexes.Plan) -> IndexFacts:
    """What the checks need from an index plan (pure)."""
    building = {int(b["index_relid"]) for b in plan.builds if b["index_relid"]}
    return IndexFacts(
        invalid=tuple(i.name for i in plan.indexes if not i.valid and i.oid not in building),
        missing=tuple(
            r.spec.name
            for r in plan.recommendations
            if r.state in ("missing", "invalid", "conflict")
        ),
        # an index an interrupted switch of method left is covered by the one it switched
        redundant=dict(plan.redundant) | {left.name: left.of for left in plan.switch_leftovers},
    )


def rollup_freshness(session: Session) -> RollupFreshness:
    """Whether reports can use the rollup and, if so, the oldest raw row it lacks and that
    row's age, computed by the server (rollup.pending)."""
    found = pending(session)
    if found.why is not None:
        return RollupFreshness(False, found.why)
    return RollupFreshness(True, "", found.oldest, found.age_seconds)


def future_rows(session: Session) -> source.FutureRows:
    """Raw rows dated after the server's now() (an index range), the newest in
    source.timezone; ConfigError when a source column has a type epstats cannot read."""
    found = source.future_extent(session)
    latest = None if found.latest is None else source.local(session, found.latest)
    return replace(found, latest=latest)


def late_rows(session: Session) -> LateRowsFacts:
    """What the verify runs of the last check.late_rows found (their recorded summaries)."""
    cfg = session.config
    if not history.available(session):
        return LateRowsFacts(False, cfg.view.lookback)
    rows = session.all(
        "maintenance/verify_runs",
        {"target": history.task_target(cfg, "verify"), "within": cfg.check.late_rows},
    )
    runs = []
    for r in rows:
        said = verify_record.read(r["reason"])
        runs.append(
            VerifyRun(
                source.local(session, r["started_at"]),
                r["status"],
                said.late_rows,
                said.late_by,
                said.unrepaired,
            )
        )
    return LateRowsFacts(True, cfg.view.lookback, tuple(runs))


def rollup_info(session: Session) -> rollup.RollupFacts:
    """The rollup's kind, size, watermark and contents: the one place health reads them."""
    return rollup.facts(session)


# epstats.runs.error of a busy-lock failure, for runs with no failure kind (older, or by hand):
# execute.LockNotGranted and errors.RULES (55P03) texts; tests/test_nagios.py makes real ones.
LOCK_BUSY = (
    "lock not granted",
    "lock not available",
    "could not get a lock",
    "could not obtain lock",
)
# ... and when the failure left something behind (execute.Executor: an invalid index).
LEFT_BEHIND = ("left behind",)


def finished_run(
    ok: bool, started_at: dt.datetime, error: str | None, failure: str | None = None
) -> FinishedRun:
    """A run as `check` judges it. Its recorded kind of failure (epstats.runs.failure, told by
    the executor) says whether it was only a busy lock or left something behind; a run
    recorded without one is judged by its error's words: a failure whose every part
    (`maintain` joins the errors of a task's steps with "; ") is a busy lock is `lock_busy`."""
    if ok:
        return FinishedRun(ok, started_at, error)
    if failure is not None:
        left = failure == history.LEFT_BEHIND
        return FinishedRun(ok, started_at, error, failure == history.LOCK_BUSY, left)
    text = (error or "").lower()
    parts = [p for p in text.split("; ") if p.strip()]
    busy = bool(parts) and all(any(m in p for m in LOCK_BUSY) for p in parts)
    left = any(m in text for m in LEFT_BEHIND)
    return FinishedRun(ok, started_at, error, busy, left)


def maintenance(session: Session) -> MaintenanceFacts:
    """The last runs of each task, when the history exists, with its latest finished runs."""
    if not history.available(session):
        return MaintenanceFacts(False, {})
    recent: dict[str, list[FinishedRun]] = {}
    left = bool(catalog.leftovers(session, new_name(session.config.view_name)))  # any remains
    params = {"runs": session.config.check.maintain_failed_runs, "remaining": left}
    for r in session.all("maintenance/history_recent", params):
        if r["target"] == history.task_target(session.config, r["task"]):
            started = source.local(session, r["started_at"])  # printed in source.timezone
            run = finished_run(r["status"] == "ok", started, r["error"], r["failure"])
            recent.setdefault(r["task"], []).append(run)
    runs = {
        task: LastRun(
            r["last_ok"],
            r["last_status"],
            r["last_error"],
            source.local(session, r["last_started"]),  # `check` prints it in source.timezone
            r["p90_seconds"],
            tuple(recent.get(task, ())),
        )
        for task, r in history.last_runs(session).items()
    }
    return MaintenanceFacts(True, runs)


def table_bloat(session: Session) -> TableBloat | None:
    """The source table's estimated heap bloat; None when the table does not exist."""
    name = session.config.source.table
    row = session.one("catalog/table_bloat", {"schema": name.schema, "name": name.name})
    if row is None:
        return None
    ratio = row["bloat_ratio"]
    return TableBloat(int(row["size_bytes"]), None if ratio is None else float(ratio))


def index_bloat(session: Session) -> tuple[IndexBloat, ...]:
    """Estimated bloat of each index on the source table."""
    rows = session.all("catalog/index_bloat", {"oid": catalog.source_oid(session)})
    return tuple(
        IndexBloat(
            r["name"],
            int(r["size_bytes"]),
            None if r["bloat_ratio"] is None else float(r["bloat_ratio"]),
        )
        for r in rows
    )


def pooler(session: Session) -> PoolerFacts:
    """Probe where changing commands would connect (this connection when it is the same)."""
    target = session.maintenance_dsn
    if target is not None and target != session.dsn:
        info = session_guarantee(target, **session.connect_kwargs)
    else:
        info = session.pooler or session_guarantee(
            session.dsn, session.conn, **session.connect_kwargs
        )
    separate = target is not None and target != session.dsn
    return PoolerFacts(session.per_statement, separate, info)


# --- reading each group once ------------------------------------------------------------------


class FactSource(Protocol):
    """Where the checks get their facts: the server (Gatherer) or, in tests, plain values."""

    def connection(self) -> Server: ...
    def table(self) -> TableFacts: ...
    def server(self) -> ServerFacts: ...
    def indexes(self) -> IndexFacts: ...
    def rollup(self) -> RollupFreshness: ...
    def future_rows(self) -> source.FutureRows: ...
    def late_rows(self) -> LateRowsFacts: ...
    def maintenance(self) -> MaintenanceFacts: ...
    def table_bloat(self) -> TableBloat | None: ...
    def index_bloat(self) -> tuple[IndexBloat, ...]: ...
    def pooler(self) -> PoolerFacts: ...
    def transactions(self) -> TransactionFacts: ...
    def newest_row(self) -> IngestFacts: ...
    def connections(self) -> ConnectionFacts: ...
    def replication(self) -> ReplicationFacts: ...
    def sequences(self) -> TableSequences: ...
    def endpoint_cardinality(self) -> cardinality.Cardinality: ...
    def latency(self) -> latency_facts.LatencyFacts: ...
    def partition_runway(self) -> Runway: ...


T = TypeVar("T")


@dataclass(frozen=True)
class _Failed:
    error: psycopg.Error | EpstatsError


class Gatherer:
    """A FactSource that reads each group from the server on first use, and only once (a
    failure is kept too: every check that needs the group reports the same error)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._read: dict[str, object] = {}

    def _once(self, key: str, read: Callable[[Session], T]) -> T:
        if key not in self._read:
            try:
                self._read[key] = read(self.session)
            except (psycopg.Error, EpstatsError) as exc:
                self._read[key] = _Failed(exc)
        got = self._read[key]
        if isinstance(got, _Failed):
            raise got.error
        return cast(T, got)

    def connection(self) -> Server:
        return self.session.server

    def table(self) -> TableFacts:
        return self._once("table", table)

    def server(self) -> ServerFacts:
        return self._once("server", catalog.server_facts)

    def indexes(self) -> IndexFacts:
        return self._once("indexes", lambda s: index_facts(indexes.make_plan(s)))

    def rollup(self) -> RollupFreshness:
        return self._once("rollup", rollup_freshness)

    def future_rows(self) -> source.FutureRows:
        return self._once("future_rows", future_rows)

    def late_rows(self) -> LateRowsFacts:
        return self._once("late_rows", late_rows)

    def maintenance(self) -> MaintenanceFacts:
        return self._once("maintenance", maintenance)

    def table_bloat(self) -> TableBloat | None:
        return self._once("table_bloat", table_bloat)

    def index_bloat(self) -> tuple[IndexBloat, ...]:
        return self._once("index_bloat", index_bloat)

    def pooler(self) -> PoolerFacts:
        return self._once("pooler", pooler)

    def transactions(self) -> TransactionFacts:
        return self._once("transactions", server_facts.transactions)

    def newest_row(self) -> IngestFacts:
        return self._once("newest_row", server_facts.newest_row)

    def connections(self) -> ConnectionFacts:
        return self._once("connections", server_facts.connections)

    def replication(self) -> ReplicationFacts:
        return self._once("replication", server_facts.replication)

    def sequences(self) -> TableSequences:
        return self._once("sequences", server_facts.sequences)

    def endpoint_cardinality(self) -> cardinality.Cardinality:
        return self._once("endpoint_cardinality", cardinality.measure)

    def latency(self) -> latency_facts.LatencyFacts:
        return self._once("latency", latency_facts.measure)

    def partition_runway(self) -> Runway:
        from epstats_cli.partition_ahead import runway

        return self._once("partition_runway", runway)
