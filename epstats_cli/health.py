"""Read-only health: the facts `status` shows and the checks `check` runs (Nagios states)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg

from epstats_cli import history, queries
from epstats_cli.config import Levels
from epstats_cli.db import Session
from epstats_cli.durations import human_seconds
from epstats_cli.errors import EpstatsError

OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATE_NAMES = ("OK", "WARNING", "CRITICAL", "UNKNOWN")
SEVERITY = {"ok": OK, "warning": WARNING, "critical": CRITICAL}
CHECKS = (
    "connect",
    "analyze_age",
    "vacuum_age",
    "dead_tuples",
    "xid_age",
    "invalid_indexes",
    "missing_indexes",
    "redundant_indexes",
    "view_staleness",
    "maintain_failed",
    "table_bloat",
    "index_bloat",
)


def _one(session: Session, query: str, **params: Any) -> dict[str, Any] | None:
    cur = session.conn.cursor()
    cur.execute(queries.get(query, session.server.version_num), params)
    row = cur.fetchone()
    if row is None:
        return None
    assert cur.description is not None
    return {d.name: v for d, v in zip(cur.description, row, strict=True)}


def server_facts(session: Session) -> dict[str, Any]:
    """Version, database size, recovery state, connection and freeze limits."""
    facts = _one(session, "catalog/server")
    assert facts is not None
    return facts


def table_facts(session: Session) -> dict[str, Any] | None:
    """The source table's sizes, estimated rows and vacuum/analyze activity; None if missing."""
    table = session.config.source.table
    return _one(session, "catalog/table_stats", schema=table.schema, name=table.name)


def status(session: Session) -> dict[str, Any]:
    """Everything `epstats status` shows, as plain data (read-only; parts the role cannot
    read are reported as unavailable rather than failing the whole screen)."""
    table = session.config.source.table
    facts = table_facts(session)
    out: dict[str, Any] = {
        "server": server_facts(session),
        "table": {"name": str(table), "present": False}
        if facts is None
        else {"name": str(table), "present": True, **facts},
    }
    if facts is None:
        return out
    out["indexes"] = _status_indexes(session)
    out["rollup"] = _status_rollup(session)
    out["maintenance"] = _status_maintenance(session, out["server"]["now"])
    return out


def _status_indexes(session: Session) -> list[dict[str, Any]] | str:
    from epstats_cli import indexes

    try:
        plan = indexes.make_plan(session)
    except psycopg.Error as exc:
        return f"unavailable: {str(exc).splitlines()[0]}"
    recommended = {r.existing for r in plan.recommendations if r.existing}
    rows: list[dict[str, Any]] = [
        {
            "name": i.name,
            "columns": ", ".join(i.columns) or "(expression)",
            "method": i.method,
            "valid": i.valid,
            "size_bytes": i.size_bytes,
            "scans": i.scans,
            "redundant_of": plan.redundant.get(i.name),
            "recommended": i.name in recommended,
        }
        for i in plan.indexes
    ]
    rows += [
        {
            "name": r.spec.name,
            "columns": ", ".join(r.columns),
            "method": r.spec.method,
            "valid": None,
            "size_bytes": None,
            "scans": None,
            "redundant_of": None,
            "recommended": True,
            "missing": True,
        }
        for r in plan.recommendations
        if r.state == "missing"
    ]
    return rows


def oldest_unaggregated(session: Session) -> dt.datetime | None:
    """The timestamp of the oldest raw row the rollup has not aggregated (None: up to date)."""
    from epstats_cli.schema import rollup_identifiers

    row = session.conn.execute(
        queries.get(
            "catalog/oldest_unaggregated",
            session.server.version_num,
            **rollup_identifiers(session),
        )
    ).fetchone()
    return row[0] if row else None


def _status_rollup(session: Session) -> dict[str, Any] | str:
    from epstats_cli import reports

    name = session.config.view_name
    try:
        usable, why = reports.rollup_usable(session)
        if not usable:
            return {"name": str(name), "usable": False, "why": why}
        cur = session.conn.cursor(row_factory=psycopg.rows.dict_row)
        info = cur.execute(
            queries.get("view/info", session.server.version_num),
            {"schema": name.schema, "name": name.name},
        ).fetchone()
        oldest = oldest_unaggregated(session)
        mark = session.conn.execute(
            queries.get("view/contents", session.server.version_num, view=(name.schema, name.name))
        ).fetchone()
    except psycopg.Error as exc:
        return f"unavailable: {str(exc).splitlines()[0]}"
    assert info is not None and mark is not None
    comment = info["comment"] or ""
    strategy = "incremental" if info["relkind"] == "r" else "materialized"
    return {
        "name": str(name),
        "usable": True,
        "strategy": strategy,
        "built_by_epstats": comment.startswith("epstats rollup:"),
        "size_bytes": info["size_bytes"],
        "watermark": mark[0],
        "rows": mark[1],
        "oldest_unaggregated": oldest,
    }


def _status_maintenance(session: Session, now: dt.datetime) -> list[dict[str, Any]] | str:
    from epstats_cli import maintenance, schedule

    try:
        if not history.available(session):
            return "no run history (epstats init)"
        runs = history.last_runs(session)
        need = maintenance.measure_need(session)
    except psycopg.Error as exc:
        return f"unavailable: {str(exc).splitlines()[0]}"
    last_ok = {t: r["last_ok"] for t, r in runs.items() if r["last_ok"] is not None}
    out = []
    for d in schedule.due_tasks(last_ok, session.config.maintenance, now, need):
        run = runs.get(d.task, {})
        out.append(
            {
                "task": d.task,
                "last_run": run.get("last_started"),
                "last_status": run.get("last_status"),
                "last_ok": d.last_run,
                "next_due": d.next_due,
                "due_now": d.due,
                "why": d.reason,
            }
        )
    return out


# --- checks ------------------------------------------------------------------------------------


@dataclass
class CheckResult:
    name: str
    state: int
    summary: str
    value: float | None = None
    warning: float | None = None
    critical: float | None = None
    details: list[str] = field(default_factory=list)

    @property
    def state_name(self) -> str:
        return STATE_NAMES[self.state]

    def perfdata(self) -> str | None:
        if self.value is None:
            return None
        w = "" if self.warning is None else _num(self.warning)
        c = "" if self.critical is None else _num(self.critical)
        return f"{self.name}={_num(self.value)};{w};{c}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state_name,
            "summary": self.summary,
            "value": self.value,
            "warning": self.warning,
            "critical": self.critical,
            "details": self.details,
        }


def _num(value: float) -> str:
    """Perfdata numbers: plain decimals, never exponents."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def level(value: float, levels: Levels) -> int:
    """OK below warning, WARNING from warning, CRITICAL from critical."""
    if value >= levels.critical:
        return CRITICAL
    if value >= levels.warning:
        return WARNING
    return OK


def overall(results: Iterable[CheckResult]) -> int:
    """The worst state; UNKNOWN only when nothing is worse than it (as Nagios plugins do)."""
    states = [r.state for r in results]
    for state in (CRITICAL, WARNING, UNKNOWN):
        if state in states:
            return state
    return OK


def nagios_line(results: Sequence[CheckResult]) -> str:
    """`EPSTATS WARNING - name: summary; ... | perfdata`."""
    state = overall(results)
    bad = [r for r in results if r.state != OK]
    text = "; ".join(f"{r.name}: {r.summary}" for r in sorted(bad, key=lambda r: -r.state))
    if not bad:
        text = f"{len(results)} checks OK"
    perf = " ".join(p for r in results if (p := r.perfdata()))
    return f"EPSTATS {STATE_NAMES[state]} - {text}" + (f" | {perf}" if perf else "")


def _age_check(
    name: str,
    what: str,
    last: dt.datetime | None,
    every: dt.timedelta,
    levels: Levels,
    now: dt.datetime,
    has_data: bool,
) -> CheckResult:
    if last is None:
        if not has_data:
            return CheckResult(name, OK, f"never {what}, but there is nothing to {what} yet")
        return CheckResult(name, WARNING, f"never {what}")
    age = (now - last).total_seconds()
    ratio = age / every.total_seconds()
    state = level(ratio, levels)
    return CheckResult(
        name,
        state,
        f"last {what} {human_seconds(age)} ago (every {human_seconds(every.total_seconds())})",
        round(age),
        levels.warning * every.total_seconds(),
        levels.critical * every.total_seconds(),
    )


def run_checks(
    session: Session, only: Iterable[str] = (), now: dt.datetime | None = None
) -> list[CheckResult]:
    """Every check (or those in `only`); a check that cannot run is UNKNOWN, never an error."""
    wanted = [c for c in CHECKS if not only or c in set(only)]
    if now is None:
        from epstats_cli.db import now as db_now

        now, _hour = db_now(session)
    assert now is not None
    ctx: dict[str, Any] = {}
    results = []
    for name in wanted:
        fn: Callable[[Session, dt.datetime, dict[str, Any]], CheckResult] = _CHECKS[name]
        try:
            results.append(fn(session, now, ctx))
        except (psycopg.Error, EpstatsError) as exc:
            message = exc.message if isinstance(exc, EpstatsError) else str(exc).splitlines()[0]
            results.append(CheckResult(name, UNKNOWN, f"cannot check: {message}"))
    return results


def _facts(session: Session, ctx: dict[str, Any]) -> dict[str, Any]:
    if "table" not in ctx:
        facts = table_facts(session)
        if facts is None:
            from epstats_cli.errors import OperationFailed

            raise OperationFailed(f"source table {session.config.source.table} does not exist")
        ctx["table"] = facts
    return dict(ctx["table"])


def _check_connect(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    role = "standby" if session.server.in_recovery else "primary"
    return CheckResult("connect", OK, f"PostgreSQL {session.server.version} ({role})")


def _has_data(facts: dict[str, Any]) -> bool:
    return bool(
        (facts.get("live_tuples") or 0)
        + (facts.get("modified_since_analyze") or 0)
        + (facts.get("estimated_rows") or 0)
    )


def _check_analyze(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    return _maintenance_age(session, now, ctx, "analyze")


def _check_vacuum(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    return _maintenance_age(session, now, ctx, "vacuum")


def _maintenance_age(
    session: Session, now: dt.datetime, ctx: dict[str, Any], task: str
) -> CheckResult:
    """Time since the last (auto)analyze or (auto)vacuum, against the schedule."""
    from epstats_cli.schedule import latest

    f = _facts(session, ctx)
    return _age_check(
        f"{task}_age",
        {"analyze": "analyzed", "vacuum": "vacuumed"}[task],
        latest(f[f"last_{task}"], f[f"last_auto{task}"]),
        getattr(session.config.maintenance.schedule, task),
        session.config.check.overdue,
        now,
        _has_data(f),
    )


def _check_dead(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    f = _facts(session, ctx)
    live, dead = f["live_tuples"] or 0, f["dead_tuples"] or 0
    ratio = dead / (live + dead) if live + dead else 0.0
    levels = session.config.check.dead_tuple_ratio
    return CheckResult(
        "dead_tuples",
        level(ratio, levels),
        f"{ratio:.1%} dead tuples ({dead:,} of {live + dead:,})",
        round(ratio, 4),
        levels.warning,
        levels.critical,
    )


def _check_xid(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    f = _facts(session, ctx)
    limit = int(server_facts(session)["autovacuum_freeze_max_age"])
    ratio = (f["xid_age"] or 0) / limit
    levels = session.config.check.xid_age_ratio
    return CheckResult(
        "xid_age",
        level(ratio, levels),
        f"transaction-ID age {f['xid_age'] or 0:,} is {ratio:.1%} of autovacuum_freeze_max_age",
        round(ratio, 4),
        levels.warning,
        levels.critical,
    )


def _plan(session: Session, ctx: dict[str, Any]) -> Any:
    if "plan" not in ctx:
        from epstats_cli import indexes

        ctx["plan"] = indexes.make_plan(session)
    return ctx["plan"]


def _check_invalid(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    plan = _plan(session, ctx)
    building = {int(b["index_relid"]) for b in plan.builds if b["index_relid"]}
    bad = [i.name for i in plan.indexes if not i.valid and i.oid not in building]
    state = SEVERITY[session.config.check.invalid_index] if bad else OK
    summary = (
        f"{len(bad)} invalid: {', '.join(bad)} (epstats maintain --only cleanup)"
        if bad
        else "no invalid indices"
    )
    return CheckResult("invalid_indexes", state, summary, len(bad), None, 1)


def _check_missing(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    plan = _plan(session, ctx)
    missing = [
        r.spec.name for r in plan.recommendations if r.state in ("missing", "invalid", "conflict")
    ]
    state = SEVERITY[session.config.check.missing_index] if missing else OK
    summary = (
        f"{', '.join(missing)} missing (epstats indexes apply)"
        if missing
        else "all recommended indices present"
    )
    return CheckResult("missing_indexes", state, summary, len(missing), 1, None)


def _check_redundant(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    plan = _plan(session, ctx)
    names = sorted(plan.redundant)
    state = SEVERITY[session.config.check.redundant_index] if names else OK
    summary = (
        f"{', '.join(f'{n} (covered by {plan.redundant[n]})' for n in names)} "
        "(epstats indexes apply --prune-redundant)"
        if names
        else "no redundant indices"
    )
    return CheckResult("redundant_indexes", state, summary, len(names), 1, None)


def _check_view(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    from epstats_cli import reports

    usable, why = reports.rollup_usable(session)
    if not usable:
        return CheckResult("view_staleness", WARNING, f"{why}; reports read the raw rows")
    oldest = oldest_unaggregated(session)
    every = session.config.maintenance.schedule.refresh
    levels = session.config.check.overdue
    if oldest is None:
        return CheckResult(
            "view_staleness",
            OK,
            "the rollup holds every row",
            0,
            levels.warning * every.total_seconds(),
            levels.critical * every.total_seconds(),
        )
    lag = max(0.0, (now - oldest).total_seconds())
    state = level(lag / every.total_seconds(), levels)
    return CheckResult(
        "view_staleness",
        state,
        f"rows up to {human_seconds(lag)} old are not in the rollup "
        f"(refresh every {human_seconds(every.total_seconds())})",
        round(lag),
        levels.warning * every.total_seconds(),
        levels.critical * every.total_seconds(),
    )


def _check_maintain(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    if not history.available(session):
        return CheckResult("maintain_failed", UNKNOWN, "no run history (run epstats init)")
    runs = history.last_runs(session)
    failed = {t: r for t, r in runs.items() if r["last_status"] == "failed"}
    if not failed:
        return CheckResult(
            "maintain_failed",
            OK,
            f"last runs OK ({len(runs)} tasks recorded)" if runs else "no maintenance recorded yet",
            0,
            None,
            1,
        )
    detail = "; ".join(
        f"{t} at {r['last_started']:%Y-%m-%d %H:%M}: {r['last_error'] or 'failed'}"
        for t, r in sorted(failed.items())
    )
    return CheckResult(
        "maintain_failed",
        SEVERITY[session.config.check.maintain_failed],
        f"last run failed: {detail}",
        len(failed),
        None,
        1,
    )


def _check_table_bloat(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    table = session.config.source.table
    cur = session.conn.cursor(row_factory=psycopg.rows.dict_row)
    row = cur.execute(
        queries.get("catalog/table_bloat", session.server.version_num),
        {"schema": table.schema, "name": table.name},
    ).fetchone()
    levels = session.config.check.table_bloat
    if row is None or row["bloat_ratio"] is None:
        return CheckResult("table_bloat", OK, "no estimate yet (table not analyzed)")
    ratio = float(row["bloat_ratio"])
    if row["size_bytes"] < session.config.check.bloat_min_size:
        return CheckResult(
            "table_bloat",
            OK,
            f"estimated {ratio:.0%}, table too small to matter",
            round(ratio, 3),
            levels.warning,
            levels.critical,
        )
    return CheckResult(
        "table_bloat",
        level(ratio, levels),
        f"estimated {ratio:.0%} of the table",
        round(ratio, 3),
        levels.warning,
        levels.critical,
    )


def _check_index_bloat(session: Session, now: dt.datetime, ctx: dict[str, Any]) -> CheckResult:
    from epstats_cli.catalog import source_oid

    oid = source_oid(session)
    cur = session.conn.cursor(row_factory=psycopg.rows.dict_row)
    rows = cur.execute(
        queries.get("catalog/index_bloat", session.server.version_num), {"oid": oid}
    ).fetchall()
    levels = session.config.check.index_bloat
    judged = [
        r
        for r in rows
        if r["bloat_ratio"] is not None and r["size_bytes"] >= session.config.check.bloat_min_size
    ]
    if not judged:
        return CheckResult("index_bloat", OK, "no index large enough to judge")
    worst = max(judged, key=lambda r: r["bloat_ratio"])
    ratio = float(worst["bloat_ratio"])
    return CheckResult(
        "index_bloat",
        level(ratio, levels),
        f"worst {worst['name']}: estimated {ratio:.0%}",
        round(ratio, 3),
        levels.warning,
        levels.critical,
    )


_CHECKS: dict[str, Callable[[Session, dt.datetime, dict[str, Any]], CheckResult]] = {
    "connect": _check_connect,
    "analyze_age": _check_analyze,
    "vacuum_age": _check_vacuum,
    "dead_tuples": _check_dead,
    "xid_age": _check_xid,
    "invalid_indexes": _check_invalid,
    "missing_indexes": _check_missing,
    "redundant_indexes": _check_redundant,
    "view_staleness": _check_view,
    "maintain_failed": _check_maintain,
    "table_bloat": _check_table_bloat,
    "index_bloat": _check_index_bloat,
}


# --- measurements for advise -------------------------------------------------------------------


def measure_for_advice(session: Session) -> Any:
    """Size, growth, traffic, read/write mix and connection limits, for advise.Measured."""
    from epstats_cli import advise, indexes, reports

    v = session.server.version_num
    src = session.config.source
    name = session.config.view_name
    facts = table_facts(session)
    if facts is None:
        from epstats_cli.errors import OperationFailed

        raise OperationFailed(f"source table {src.table} does not exist")
    server = server_facts(session)
    from epstats_cli.schema import rollup_identifiers

    ids = rollup_identifiers(session)
    cur = session.conn.cursor(row_factory=psycopg.rows.dict_row)
    raw = cur.execute(queries.get("advise/traffic_raw", v, **ids)).fetchone()
    assert raw is not None
    seconds = 7 * 86400.0
    if raw["first_seen"] is not None:
        seconds = min(seconds, max(3600.0, (server["now"] - raw["first_seen"]).total_seconds()))
    avg_rps = raw["requests"] / seconds
    traffic_source = "raw rows"
    usable, _ = reports.rollup_usable(session)
    strategy = refresh_seconds = rollup_bytes = None
    if usable:
        row = cur.execute(
            queries.get("advise/traffic_view", v, **ids), {"tz": src.timezone}
        ).fetchone()
        if row and row["days"]:
            avg_rps = row["requests"] / (row["days"] * 86400.0)
            traffic_source = "rollup"
        info = cur.execute(
            queries.get("view/info", v), {"schema": name.schema, "name": name.name}
        ).fetchone()
        assert info is not None
        strategy = "incremental" if info["relkind"] == "r" else "materialized"
        rollup_bytes = info["size_bytes"]
        if history.available(session):
            state = cur.execute(queries.get("view/state_get", v), {"view": str(name)}).fetchone()
            refresh_seconds = state["refresh_seconds"] if state else None
    activity = cur.execute(queries.get("advise/activity", v)).fetchone()
    conns = cur.execute(queries.get("advise/connections", v)).fetchone()
    assert activity is not None and conns is not None
    plan = indexes.make_plan(session)
    return advise.Measured(
        database_bytes=int(server["database_bytes"]),
        table_bytes=int(facts["total_bytes"]),
        table_rows=int(facts["estimated_rows"] or facts["live_tuples"] or 0),
        rows_per_day=avg_rps * 86400,
        avg_rps=avg_rps,
        peak_rps=raw["peak_hour_requests"] / 3600.0,
        reads=int(activity["reads"] or 0),
        writes=int(activity["writes"] or 0),
        max_connections=int(conns["max_connections"]),
        reserved_connections=int(conns["reserved_connections"]),
        rollup_bytes=rollup_bytes,
        rollup_strategy=strategy,
        refresh_seconds=refresh_seconds,
        redundant_indexes=tuple(sorted(plan.redundant)),
        traffic_source=traffic_source,
    )
