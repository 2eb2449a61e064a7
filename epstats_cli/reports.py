"""Top-N endpoints, from the rollup, the raw rows, or both at once, and how every report reads
them (`reading`, `params_for`, `placeholders`, `finish_report`; report_endpoint.py reads one
endpoint's days the same way).

Read-only: only SELECTs in one REPEATABLE READ, READ ONLY transaction, so reports work on a
hot standby and with a SELECT-only role, and the rollup, its as-of and the raw rows it has not
aggregated are read from one snapshot. view and auto read with the parameters the rollup was
built with (its time zone, error threshold and endpoint normalization), raw with the
configuration's; raw rows are normalized through the map (endpoints.joined), never filling it.
Rows carry the status mix (STATUS_CLASSES); from a rollup built without it, None and a note.
Rows carry percentiles (p50_ms, p95_ms, p99_ms and --percentiles' others: latency.percentiles):
raw exact (percentile_disc), view and auto read from the latency histograms (the raw rows auto
adds bucketed with the rollup's accuracy) in the same statement; from a rollup built without
them, None and a note.

The module is over 400 lines because how every report reads (the source, its basis, the
normalization through the map or inline, the placeholders) is one contract with `top`, which
shows it whole, with the figures every row carries (the status mix, the percentiles);
report_endpoint.py and report_window.py hold the rest.

`top(compare=True)` reads the previous window (previous_window.sql: the current one moved back
by its number of days, or by its length for --hours) with the same statement, source and
snapshot as the current one, gives each row its figures there and the change, and ranks the
rows by the change of the sorted figure (what got worse, or better, with --asc).
"""

from __future__ import annotations

import datetime as dt
import math
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import latency, replica, rollup, source
from epstats_cli.db import Session, consistent
from epstats_cli.endpoints import (
    Normalization,
    check_rules,
    joined,
    map_unreadable,
    planner_settings,
)
from epstats_cli.errors import ConfigError, OperationFailed
from epstats_cli.report_window import Previous, Window, previous_window, served, window
from epstats_cli.schema import rollup_identifiers

__all__ = [  # window and Window stay here for their readers (view verify's window)
    "CHANGES",
    "FIGURES",
    "SORTS",
    "STATUS_CLASSES",
    "Previous",
    "Reading",
    "Report",
    "Window",
    "as_of_and_snapshot",
    "by_change",
    "finish_report",
    "order_by",
    "params_for",
    "placeholders",
    "previous_window",
    "reading",
    "require_latency",
    "require_mix",
    "rollup_usable",
    "top",
    "window",
    "with_percentiles",
    "without_mix",
]

# The status mix of a row: every request in one class (other: outside 200..599, or NULL), as
# in the rollup (sql/view/aggregate.sql).
STATUS_CLASSES = ("status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_other")

# The figures of a top row, in order (a new column is one more name here and in the SQL).
FIGURES = ("requests", "avg_ms", "min_ms", "max_ms", "errors", "error_rate", *STATUS_CLASSES)

# --sort: the figures it orders by, first to last (ties: the endpoint's name).
SORTS: dict[str, tuple[str, ...]] = {
    "requests": ("requests",),
    "avg": ("avg_ms",),
    "max": ("max_ms",),
    "errors": ("errors",),
    "error_rate": ("error_rate", "errors"),
    "4xx": ("status_4xx",),
    "5xx": ("status_5xx",),
    **{f"p{p:g}": (latency.percentile_key(p),) for p in latency.DEFAULT_PERCENTILES},
}
PERCENTILE_SORTS = tuple(f"p{p:g}" for p in latency.DEFAULT_PERCENTILES)  # p50, p95, p99

# --compare: how each figure's change is stated: "ratio" (current / previous), "difference"
# (current - previous: a count of errors, often 0 before, has no ratio) or "points" (current -
# previous, in percentage points, for a rate). With --compare, --sort ranks by the change of
# its first figure.
CHANGES: dict[str, str] = {
    "requests": "ratio",
    "avg_ms": "ratio",
    "max_ms": "ratio",
    "errors": "difference",
    "error_rate": "points",
    **dict.fromkeys(STATUS_CLASSES, "difference"),
    # every percentile's too (--percentiles' others: `changes`)
    **{latency.percentile_key(p): "ratio" for p in latency.DEFAULT_PERCENTILES},
}

# The statement behind each source, by literal name (so every file's use can be found).
TOP = {"view": "reports/top_view", "raw": "reports/top_raw", "auto": "reports/top_auto"}


@dataclass
class Report:
    source: str  # what was actually used: view | raw | auto
    window: Window
    rows: list[dict[str, Any]]
    seconds: float
    timezone: str = "UTC"  # the zone of the window's days
    watermark: dt.datetime | None = None  # the rollup's as-of: complete through this instant
    newer_rows: int | None = None  # raw rows of the window the rollup has not aggregated
    notes: list[str] = field(default_factory=list)
    totals: dict[str, Any] | None = None
    future_rows: tuple[int, dt.datetime | None] = (0, None)
    rollup_parameters: dict[str, Any] | None = None  # what the rollup was built with (used)
    configured_otherwise: list[str] = field(default_factory=list)  # "name built (configured)"
    previous: Previous | None = None  # --compare's window
    endpoint: str | None = None  # report endpoint: the endpoint reported (normalized)
    requested: str | None = None  # report endpoint: the name as given
    parts: list[dict[str, Any]] = field(default_factory=list)  # what was read from where
    replica_lag_s: float | None = None  # on a standby, how far behind (replica.py); else None
    # days up to it are the rollup's alone (their raw rows retired): None, no day retired
    retention_horizon: dt.date | None = None

    def document(self, source_label: str) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "source": source_label,
            "window": {"from": self.window.from_ts, "to": self.window.to_ts},
            "as_of": self.window.as_of,
            "parts": self.parts,
        }
        if self.previous is not None:
            before = self.previous.window
            doc["previous_window"] = {"from": before.from_ts, "to": before.to_ts}
            if before.parts is not None:
                doc["previous_window"]["parts"] = before.parts.described(self.source)
        doc["rows"] = self.rows
        if self.totals is not None:
            doc["totals"] = self.totals
        doc["watermark"] = self.watermark
        if self.newer_rows is not None:
            doc["rows_newer_than_watermark"] = self.newer_rows
        count, latest = self.future_rows
        doc["future_rows"] = {"count": count, "latest": latest}
        doc["rollup_parameters"] = self.rollup_parameters
        if self.retention_horizon is not None:
            doc["retention_horizon"] = self.retention_horizon
        doc["query_seconds"] = round(self.seconds, 6)
        doc["replica_lag_s"] = self.replica_lag_s
        doc["notes"] = self.notes
        return doc


def rollup_usable(session: Session) -> tuple[bool, str]:
    """Whether the rollup exists with the columns reports need (catalog only: read-only safe)."""
    why = rollup.facts(session, contents=False, state=False).unreadable()
    return why is None, why or ""


@dataclass
class Reading:
    """What a report reads: the source used, its basis and normalization (the rollup's own
    parameters for view and auto), the rollup's facts, and notes for the footer."""

    used: str
    basis: source.Basis
    columns: source.SourceColumns
    info: rollup.RollupFacts | None = None
    notes: list[str] = field(default_factory=list)
    norm: Normalization = field(default_factory=Normalization)
    inline: bool = False  # normalized by the expression on each row (the map is unreadable)

    @property
    def mixless(self) -> bool:
        """Whether the rollup read lacks the status classes (an earlier epstats built it)."""
        return self.info is not None and bool(self.info.missing_status)

    @property
    def latencyless(self) -> bool:
        """Whether the rollup read lacks the latency histograms (an earlier epstats built it)."""
        if self.info is None or not self.info.columns:
            return False
        return any(c not in self.info.columns for c in latency.LATENCY_COLUMNS)


def as_of_and_snapshot(session: Session) -> object:
    """The rollup's as-of and snapshot (None without a readable rollup): what a refresh moves."""
    try:
        return session.one("view/as_of", **rollup_identifiers(session))
    except psycopg.Error:
        return None


def reading(session: Session, wanted: str) -> Reading:
    """The source a report reads, with the configuration's basis and normalization (raw) or
    the rollup's (view, auto); the map's planner settings set for the transaction."""
    columns = source.check_columns(session)
    configured = source.Basis.of(session.config, columns)
    norm = Normalization.of(session.config)
    if wanted == "raw":
        return _planned(session, Reading("raw", configured, columns, norm=norm))
    info = rollup.facts(session, contents=False, state=False)
    why = info.unreadable()
    if why is not None:
        if wanted == "view":
            raise OperationFailed(f"--source view: {why}; use --source raw or auto")
        notes = [f"{why}: reporting from the raw rows"]
        return _planned(session, Reading("raw", configured, columns, notes=notes, norm=norm))
    basis = configured
    if info.parameters is not None:
        basis = source.Basis.recorded(info.parameters, session.config, columns)
        norm = Normalization.recorded(info.parameters)
    elif not info.unknown:  # built by an earlier epstats (or by hand): endpoints as stored
        norm = Normalization()
    notes = [f"{info.mark_unreadable}; read with the configuration's"] if info.unknown else []
    if info.missing_status:  # an earlier epstats built it
        notes.append(f"{info.name} has no status classes: epstats view build --replace adds them")
    r = Reading(wanted, basis, columns, info, notes, norm)
    if r.latencyless:  # an earlier epstats built it
        r.notes.append(
            f"{info.name} has no latency histograms, so no percentiles: "
            "epstats view build --replace adds them (--source raw computes them exactly)"
        )
    return _planned(session, r)


def _planned(session: Session, r: Reading) -> Reading:
    """`r`, after the planner settings for a statement that joins the map (normalization on,
    inside the report's transaction: behind a statement pool a SET LOCAL would not last)."""
    if r.norm.active:
        check_rules(session, r.norm)  # a pattern the server refuses: exit 3, naming it
        unreadable = map_unreadable(session)
        if unreadable is not None:
            r.inline = True
            r.notes.append(unreadable)
    if r.norm.active and not session.per_statement:
        for query in planner_settings(session):
            with session.noting(query):
                session.conn.execute(query)
    return r


def require_mix(r: Reading, sort: str) -> None:
    """ConfigError (exit 3) for --sort 4xx|5xx on a rollup without the status classes."""
    if r.mixless and SORTS[sort][0] in STATUS_CLASSES:
        why = f"the rollup {r.info.name if r.info else ''} has no status classes"
        fix = "run `epstats view build --replace`, or use --source raw"
        raise ConfigError([f"--sort {sort}: {why} (an earlier epstats built it): {fix}"])


def require_latency(r: Reading, sort: str) -> None:
    """ConfigError (exit 3) for --sort p50|p95|p99 on a rollup without the latency histograms
    (view and auto alike: auto's raw rows alone would rank by a part of the window)."""
    if r.latencyless and sort in PERCENTILE_SORTS:
        why = f"the rollup {r.info.name if r.info else ''} has no latency histograms"
        fix = "run `epstats view build --replace`, or use --source raw"
        raise ConfigError([f"--sort {sort}: {why} (an earlier epstats built it): {fix}"])


def with_percentiles(
    r: Reading, rows: list[dict[str, Any]], wanted: tuple[float, ...]
) -> list[dict[str, Any]]:
    """The rows with one key per percentile of `wanted` (the statement's `percentiles` array
    spread), all None when the rollup read lacks the histograms: auto's raw rows alone would
    give the percentiles of a part of the window."""
    out = [latency.spread(dict(row), wanted) for row in rows]
    if r.latencyless:
        keys = [latency.percentile_key(p) for p in wanted]
        out = [dict(row, **dict.fromkeys(keys)) for row in out]
    return out


def changes(wanted: tuple[float, ...]) -> dict[str, str]:
    """CHANGES with every percentile read (--percentiles' others too): a ratio, as avg_ms."""
    return CHANGES | {latency.percentile_key(p): "ratio" for p in wanted}


def figures(wanted: tuple[float, ...]) -> tuple[str, ...]:
    """A top row's figures: FIGURES and the percentiles read."""
    return (*FIGURES, *(latency.percentile_key(p) for p in wanted))


def without_mix(r: Reading, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows with no status mix (None) when the rollup read lacks it: its NULL columns
    summed with raw rows' counts would be part of the mix only."""
    if not r.mixless:
        return rows
    return [dict(row, **dict.fromkeys(STATUS_CLASSES)) for row in rows]


def placeholders(session: Session, r: Reading, **more: Any) -> dict[str, Any]:
    """The statements' placeholders: the source, the rollup (NULL status classes where it has
    none), the window, and the endpoint as reports name it ({normalized}, through {join})."""
    ids = rollup_identifiers(session)
    if r.mixless or r.latencyless:  # NULL columns in place of those an earlier epstats lacked
        rollup_read: sql.Composable = sql.SQL("{} AS epstats_rollup").format(
            sql.Identifier(*ids["view"])
        )
        if r.mixless:
            rollup_read = session.statement("fragments/rollup_no_status", rollup=rollup_read)
        if r.latencyless:
            rollup_read = session.statement("fragments/rollup_no_latency", rollup=rollup_read)
        ids["view"] = rollup_read
    accuracy = r.basis.latency_accuracy
    mapped = joined(session, r.norm, inline=r.inline)
    if r.norm.active:  # joined: the table's xmin as a column ({unaggregated} reads it)
        ids["table"] = session.statement("fragments/source_with_xmin", table=ids["table"])
    return dict(
        ids,
        normalized=mapped.endpoint if r.norm.active else sql.Identifier(ids["endpoint"]),
        join=mapped.join,
        day=source.day(session, r.basis),
        from_ts=source.param(session, r.basis, "from_ts"),
        to_ts=source.param(session, r.basis, "to_ts"),
        unaggregated=source.unaggregated(session, r.basis),
        since=source.partial_days(session, r.basis),  # auto's raw head and tail
        # auto's raw rows bucketed as the rollup's, and the percentiles read from histograms
        bucket=latency.bucket_sql(session, sql.Identifier(ids["response_time"]), accuracy),
        quantiles=latency.quantiles_sql(session, accuracy),
        **more,
    )


def params_for(
    session: Session,
    r: Reading,
    win: Window,
    wanted: tuple[float, ...] = latency.DEFAULT_PERCENTILES,
    **more: Any,
) -> dict[str, Any]:
    info = r.info
    return {
        "quantiles": latency.fractions(wanted),
        "from_day": win.from_day,
        "to_day": win.to_day,
        "from_ts": win.from_ts,
        "to_ts": win.to_ts,
        "error_min": r.basis.error_status_min,
        "as_of": info.as_of if info else None,
        "snapshot": info.snapshot if info else None,
        "commit_delay": session.config.view.commit_delay,
        **more,
    }


def finish_report(
    session: Session, report: Report, r: Reading, params: dict[str, Any], ids: dict[str, Any]
) -> Report:
    """The footer's facts: future rows, and for view/auto the rollup's as-of, the rows it has
    not aggregated and the parameters it was built with."""
    report.timezone = r.basis.timezone
    if report.window.parts is not None:
        report.parts = report.window.parts.described(r.used)
    report.notes += r.notes
    report.future_rows = source.future_rows(session, r.columns, r.basis)
    retention_note(session, report, r)
    if r.info is not None:
        report.watermark = r.info.as_of
        report.newer_rows = int(session.value("reports/freshness", params, **ids) or 0)
        report.rollup_parameters = r.info.parameters
        report.configured_otherwise = [
            f"{name} {built} (configured {configured})"
            for _key, name, built, configured in rollup.differences(r.info, session.config)
        ]
    return report


def told(report: Report, where: replica.Served) -> Report:
    """`report` saying which server it read: on a standby, how far behind (replica.py)."""
    report.replica_lag_s = where.lag_s
    report.notes += where.notes
    return report


def retention_note(session: Session, report: Report, r: Reading) -> None:
    """The retention horizon, and a note when the window reaches back to it: the rollup alone
    keeps those days (`--source raw` lacks their retired rows)."""
    info = r.info if r.info is not None else rollup.identify(session)
    horizon = info.retired_through
    report.retention_horizon = horizon
    if horizon is None or report.window.from_day > horizon:
        return
    if report.source == "raw":
        report.notes.append(
            f"raw rows of days up to {horizon} are retired (source.retention): --source raw "
            "lacks them; the rollup keeps them (--source view or auto)"
        )
    else:
        report.notes.append(f"days up to {horizon} come from the rollup alone (retention)")


def order_by(
    sort: str, ascending: bool = False, wanted: tuple[float, ...] = latency.DEFAULT_PERCENTILES
) -> sql.Composable:
    """ORDER BY for --sort (and --asc): the sort's figures, nulls last either way, then the
    endpoint's name. A percentile is its element of the statement's `percentiles` array (in
    the order of `wanted`)."""
    direction = sql.SQL("ASC" if ascending else "DESC")
    at = {latency.percentile_key(p): i for i, p in enumerate(wanted, start=1)}
    keys = [
        sql.SQL("{} {} NULLS LAST").format(
            sql.SQL("{}[{}]").format(sql.Identifier("percentiles"), sql.Literal(at[key]))
            if key in at
            else sql.Identifier(key),
            direction,
        )
        for key in SORTS[sort]
    ]
    return sql.SQL(", ").join([*keys, sql.Identifier("endpoint")])


def top(
    session: Session,
    *,
    days: int | None = None,
    since: dt.date | None = None,
    until: dt.date | None = None,
    hours: float | None = None,
    limit: int | None = None,
    sort: str = "requests",
    pattern: str | None = None,
    source: str = "auto",
    min_requests: int | None = None,
    ascending: bool = False,
    compare: bool = False,
    percentiles: tuple[float, ...] = (),
) -> Report:
    """The top-N endpoints of a window (one REPEATABLE READ transaction); with `compare`, each
    row also carries its figures in the previous window and the change, and the rows are
    ranked by the change of the sort's figure (`by_change`). UsageLine for a window (or a
    previous window) cut at a time of day from the rollup alone (it holds whole days). Rows
    carry p50_ms, p95_ms, p99_ms and a key for each of `percentiles`."""
    wanted = latency.percentiles(percentiles)

    def read() -> Report:
        where = replica.measure(session)  # first: the snapshot the report reads
        r = reading(session, source)
        require_mix(r, sort)
        require_latency(r, sort)
        win = window(session, days, since, until, r.basis.timezone, hours=hours)
        before = previous_window(session, win, r.basis.timezone) if compare else None
        served(r.used, win, before)
        assert win.parts is not None
        count = limit or session.config.reports.limit
        params = params_for(
            session,
            r,
            win,
            wanted,
            pattern=pattern,
            limit=count,
            min_requests=min_requests or None,
            **win.parts.params(r.used),
        )
        ids = placeholders(session, r, order=order_by(sort, ascending, wanted))
        start = time.perf_counter()
        if before is not None:
            rows = _compared(session, r, before, params, ids, sort, ascending, wanted)[:count]
        else:
            rows = without_mix(r, session.all(TOP[r.used], params, **ids))
            rows = with_percentiles(r, rows, wanted)
        seconds = time.perf_counter() - start
        report = Report(r.used, win, rows, seconds, previous=before)
        return told(finish_report(session, report, r, params, ids), where)

    return consistent(session, read, lambda: as_of_and_snapshot(session))


def _compared(
    session: Session,
    r: Reading,
    before: Previous,
    params: dict[str, Any],
    ids: dict[str, Any],
    sort: str,
    ascending: bool,
    wanted: tuple[float, ...],
) -> list[dict[str, Any]]:
    """Every endpoint of the current window (with at least --min-requests there) and, without
    --min-requests, every endpoint seen only in the previous window, each with its figures in
    both and the change, ranked by `by_change`. The previous window is read by the same
    statement as the current one: the rollup's whole days and, for auto, the raw rows of its
    partial days (report_window.Parts) and those the rollup has not aggregated."""
    prev = before.window
    assert prev.parts is not None
    then = dict(
        params,
        from_ts=prev.from_ts,
        to_ts=prev.to_ts,
        **prev.parts.params(r.used),
        min_requests=None,
        limit=None,
    )

    def rows_of(p: dict[str, Any]) -> list[dict[str, Any]]:
        return with_percentiles(r, without_mix(r, session.all(TOP[r.used], p, **ids)), wanted)

    rows = rows_of(dict(params, limit=None))
    found = {x["endpoint"]: x for x in rows_of(then)}
    out = [_with_previous(row, found.pop(row["endpoint"], None), wanted) for row in rows]
    if params["min_requests"] is None:  # --min-requests leaves out what went quiet
        gone = [{"endpoint": e} | dict.fromkeys(figures(wanted)) for e in found]
        out += [_with_previous(row, found[row["endpoint"]], wanted) for row in gone]
    return sorted(out, key=lambda row: by_change(row, sort, ascending))


def by_change(row: dict[str, Any], sort: str, ascending: bool = False) -> tuple[Any, ...]:
    """--compare's order: the change of the sort's figure, biggest increase first (`ascending`:
    biggest decrease first); rows without that change (an endpoint seen in only one of the
    two windows) last; ties by the endpoint's name."""
    value = row["change"][SORTS[sort][0]]
    if value is None:
        return (True, 0.0, row["endpoint"])
    return (False, value if ascending else -value, row["endpoint"])


def _with_previous(
    row: dict[str, Any], previous: dict[str, Any] | None, wanted: tuple[float, ...]
) -> dict[str, Any]:
    """A row with `previous` (its figures in the previous window, all None when it was not
    seen there) and `change` (`changes`' figures; None where either side has none, or is a
    NaN or an infinity: bad data, whose change would be a made-up 0 or infinity)."""
    then = {key: previous[key] if previous else None for key in figures(wanted)}
    change: dict[str, float | None] = {}
    for key, how in changes(wanted).items():
        now, old = row[key], then[key]
        if now is None or old is None or not math.isfinite(now) or not math.isfinite(old):
            change[key] = None
        elif how == "points":
            change[key] = (float(now) - float(old)) * 100
        elif how == "difference":
            change[key] = now - old
        else:
            change[key] = float(now) / float(old) if old else None
    return dict(row, previous=then, change=change)
