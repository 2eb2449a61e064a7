"""The daily rollup `endpoint_daily_stats`: build, refresh, inspect, verify.

Two strategies with the same columns: `materialized` (the guide's view, plus a unique key so
it refreshes CONCURRENTLY) and `incremental` (a table whose refresh recomputes only the days
that can still change). Both keep their watermark in their own contents (max_timestamp per
endpoint and day), so reports can add newer raw rows without counting any twice.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql
from psycopg.rows import dict_row

from epstats_cli import queries
from epstats_cli.catalog import relation_exists, source_oid
from epstats_cli.config import QualifiedName
from epstats_cli.db import Session
from epstats_cli.db import now as db_now
from epstats_cli.durations import format_duration
from epstats_cli.errors import OperationFailed
from epstats_cli.execute import (
    CONFLICTS_SHARE_UPDATE_EXCLUSIVE,
    LockNotGranted,
    error_text,
    retry_on_lock,
)
from epstats_cli.history import TaskResult
from epstats_cli.schema import (
    require_current,
    source_identifiers,
)
from epstats_cli.sqltext import as_text

COMMENT_PREFIX = "epstats rollup:"
EXPECTED_COLUMNS = {
    "endpoint": "text",
    "day": "date",
    "request_count": "bigint",
    "avg_response_time": "double precision",
    "max_response_time": "double precision",
    "min_response_time": "double precision",
    "error_count": "bigint",
    "total_response_time": "double precision",
    "response_count": "bigint",
    "max_timestamp": "timestamp with time zone",
}
KIND_SQL = {"materialized": "MATERIALIZED VIEW", "incremental": "TABLE"}


@dataclass
class ViewInfo:
    """What the rollup relation is now, and what it lacks."""

    name: QualifiedName
    exists: bool = False
    relkind: str | None = None
    ours: bool = False
    strategy: str | None = None
    timezone: str | None = None
    populated: bool = False
    lacks: list[str] = field(default_factory=list)
    size_bytes: int | None = None
    estimated_rows: int | None = None
    index_names: list[str] = field(default_factory=list)
    watermark: dt.datetime | None = None
    row_count: int | None = None
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    refreshed_at: dt.datetime | None = None
    refresh_seconds: float | None = None
    settled_through: dt.date | None = None
    oid: int | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": str(self.name),
            "exists": self.exists,
            "kind": {"m": "materialized view", "r": "table", "v": "view"}.get(
                self.relkind or "", self.relkind
            ),
            "built_by_epstats": self.ours,
            "strategy": self.strategy,
            "timezone": self.timezone,
            "populated": self.populated,
            "lacks": self.lacks,
            "size_bytes": self.size_bytes,
            "rows": self.row_count,
            "first_day": self.first_day,
            "last_day": self.last_day,
            "watermark": self.watermark,
            "refreshed_at": self.refreshed_at,
            "refresh_seconds": self.refresh_seconds,
            "settled_through": self.settled_through,
        }


def _comment(strategy: str, timezone: str) -> str:
    return f"{COMMENT_PREFIX} strategy={strategy} timezone={timezone} version=1"


def _parse_comment(comment: str | None) -> dict[str, str] | None:
    if not comment or not comment.startswith(COMMENT_PREFIX):
        return None
    parts = comment[len(COMMENT_PREFIX) :].split()
    return dict(p.split("=", 1) for p in parts if "=" in p)


def _v(session: Session) -> int:
    return session.server.version_num


def _dicts(session: Session, query: sql.Composed, params: dict[str, Any]) -> list[dict[str, Any]]:
    cur = session.conn.cursor(row_factory=dict_row)
    return cur.execute(query, params).fetchall()


def inspect(session: Session, name: QualifiedName | None = None) -> ViewInfo:
    """Read the rollup's state from the catalog, its comment, its contents and epstats state."""
    name = name or session.config.view_name
    info = ViewInfo(name)
    rows = _dicts(
        session, queries.get("view/info", _v(session)), {"schema": name.schema, "name": name.name}
    )
    if not rows:
        return info
    row = rows[0]
    info.exists = True
    info.oid = row["oid"]
    info.relkind = row["relkind"]
    info.populated = bool(row["populated"])
    info.size_bytes = row["size_bytes"]
    info.estimated_rows = row["estimated_rows"]
    info.index_names = list(row["index_names"])
    meta = _parse_comment(row["comment"])
    if meta is not None and row["relkind"] in ("m", "r"):
        info.ours = True
        info.strategy = meta.get("strategy")
        info.timezone = meta.get("timezone")
    else:
        info.strategy = {"m": "materialized", "r": "incremental"}.get(row["relkind"])
    present = {}
    for col in row["columns"]:
        col_name, _, col_type = col.partition(" ")
        present[col_name] = col_type
    for col_name, col_type in EXPECTED_COLUMNS.items():
        if col_name not in present:
            info.lacks.append(f"column {col_name}")
        elif present[col_name] != col_type:
            info.lacks.append(f"column {col_name} is {present[col_name]}, not {col_type}")
    if not row["has_unique_key"]:
        info.lacks.append("a unique index on (endpoint, day)")
    if not info.ours:
        info.lacks.append("days in source.timezone (the guide's date_trunc uses the session zone)")
    if info.relkind not in ("m", "r"):
        info.lacks.append("being a materialized view or table")
    if info.ours and info.timezone != session.config.source.timezone:
        info.lacks.append(f"days in {session.config.source.timezone} (built for {info.timezone})")
    if info.populated and "column max_timestamp" not in info.lacks:
        contents = _dicts(session, queries.get("view/contents", _v(session), view=_qn(name)), {})
        if contents:
            c = contents[0]
            info.watermark = c["watermark"]
            info.row_count = c["row_count"]
            info.first_day, info.last_day = c["first_day"], c["last_day"]
    if _state_table_exists(session):
        state = _dicts(session, queries.get("view/state_get", _v(session)), {"view": str(name)})
        if state:
            info.refreshed_at = state[0]["refreshed_at"]
            info.refresh_seconds = state[0]["refresh_seconds"]
            info.settled_through = state[0]["settled_through"]
    return info


def _state_table_exists(session: Session) -> bool:
    return relation_exists(session, "epstats", "rollup_state")


def _qn(name: QualifiedName) -> tuple[str, str]:
    return (name.schema, name.name)


def timestamp_type(session: Session, oid: int) -> str:
    cols = dict(
        session.conn.execute(
            queries.get("catalog/column_type", _v(session)), {"oid": oid}
        ).fetchall()
    )
    src = session.config.source
    missing = [
        f"{logical} -> {src.columns.physical(logical)}"
        for logical in ("endpoint", "timestamp", "response_time", "status")
        if src.columns.physical(logical) not in cols
    ]
    if missing:
        raise OperationFailed(
            f"source table {src.table} has no column for "
            + ", ".join(missing)
            + " (check source.columns)"
        )
    return str(cols[src.columns.timestamp])


def day_expression(session: Session, ts_type: str) -> sql.Composable:
    """The calendar day of a row in source.timezone, whatever the session's TimeZone."""
    ts = session.config.source.columns.timestamp
    if ts_type == "timestamp with time zone":
        tz = sql.Literal(session.config.source.timezone)
        return queries.get("fragments/day_timestamptz", _v(session), timestamp=ts, tz=tz)
    if ts_type == "timestamp without time zone":  # already wall-clock time
        return queries.get("fragments/day_timestamp", _v(session), timestamp=ts)
    raise OperationFailed(
        f"column {session.config.source.columns.timestamp} is {ts_type}; "
        "expected timestamp with time zone"
    )


def since_filter(session: Session, ts_type: str, param: str = "from_day") -> sql.Composable:
    """WHERE timestamp >= local midnight of %(param)s: an index range scan on the timestamp."""
    ts = session.config.source.columns.timestamp
    placeholder = sql.Placeholder(param)
    if ts_type == "timestamp with time zone":
        tz = sql.Literal(session.config.source.timezone)
        return queries.get(
            "fragments/since_timestamptz", _v(session), timestamp=ts, from_day=placeholder, tz=tz
        )
    return queries.get("fragments/since_timestamp", _v(session), timestamp=ts, from_day=placeholder)


def definition(session: Session, ts_type: str, where: sql.Composable | None = None) -> sql.Composed:
    """The aggregate SELECT over the raw rows (optionally filtered)."""
    src = session.config.source
    return queries.get(
        "view/aggregate",
        _v(session),
        **source_identifiers(session),
        day=day_expression(session, ts_type),
        error_min=sql.Literal(src.error_status_min),
        where=sql.SQL("WHERE ") + where if where is not None else sql.SQL(""),
    )


# --- build -------------------------------------------------------------------------------------


@dataclass
class Statement:
    query: sql.Composed
    params: dict[str, Any] = field(default_factory=dict)
    why: str = ""


def _index_names(name: str) -> tuple[str, str]:
    base = name[:40]
    return f"{base}_endpoint_day_key", f"{base}_day_idx"


def _build_statements(
    session: Session, strategy: str, target: QualifiedName, final_name: str, ts_type: str
) -> list[Statement]:
    v = _v(session)
    view = _qn(target)
    key_index, day_index = _index_names(target.name)
    comment = sql.Literal(_comment(strategy, session.config.source.timezone))
    if strategy == "materialized":
        return [
            Statement(
                queries.get(
                    "view/create_materialized",
                    v,
                    view=view,
                    definition=definition(session, ts_type),
                ),
                why="the guide's view, with weighted-average columns and a watermark",
            ),
            Statement(
                queries.get("view/create_unique_index", v, index=key_index, view=view),
                why="REFRESH ... CONCURRENTLY needs a unique index",
            ),
            Statement(
                queries.get("view/create_day_index", v, index=day_index, view=view),
                why="reports select a range of days",
            ),
            Statement(queries.get("view/refresh_plain", v, view=view), why="first population"),
            Statement(
                queries.get("view/comment_materialized", v, view=view, comment=comment),
                why="marks it as epstats's, with its strategy and time zone",
            ),
        ]
    return [
        Statement(
            queries.get("view/create_table", v, view=view),
            why="a table, so single days can be replaced",
        ),
        Statement(
            queries.get("view/insert_days", v, view=view, definition=definition(session, ts_type)),
            why="all history, once",
        ),
        Statement(
            queries.get("view/create_unique_index", v, index=key_index, view=view),
            why="one row per endpoint and day",
        ),
        Statement(
            queries.get("view/create_day_index", v, index=day_index, view=view),
            why="refresh replaces a range of days; reports select one",
        ),
        Statement(
            queries.get("view/comment_table", v, view=view, comment=comment),
            why="marks it as epstats's, with its strategy and time zone",
        ),
    ]


def _state_params(
    session: Session, strategy: str, refreshed_at: dt.datetime, seconds: float
) -> dict[str, Any]:
    """The state row's values; settled_through is the last day routine refreshes no longer
    recompute (the day before the lookback window), for the incremental strategy."""
    settled = None
    if strategy == "incremental":
        lookback, tz = session.config.view.lookback, session.config.source.timezone
        settled = refresh_from_day(refreshed_at, None, lookback, tz) - dt.timedelta(days=1)
    return {
        "view": str(session.config.view_name),
        "strategy": strategy,
        "timezone": session.config.source.timezone,
        "lookback": session.config.view.lookback,
        "refreshed_at": refreshed_at,
        "settled_through": settled,
        "refresh_seconds": seconds,
    }


def build(
    session: Session, strategy: str | None = None, replace: bool = False, dry_run: bool = False
) -> list[TaskResult]:
    """Create the rollup (in one transaction), or build a new one beside it and swap it in."""
    strategy = strategy or session.config.view.strategy
    name = session.config.view_name
    require_current(session)
    src_oid = source_oid(session)
    ts_type = timestamp_type(session, src_oid)
    info = inspect(session, name)
    if info.exists and not replace:
        if info.ours and info.strategy == strategy and not info.lacks:
            return [
                TaskResult(
                    "build",
                    str(name),
                    "skipped",
                    f"already built ({strategy}); --replace rebuilds it",
                )
            ]
        what = "built by epstats" if info.ours else "made by hand"
        lacks = f"; lacks {', '.join(info.lacks)}" if info.lacks else ""
        raise OperationFailed(
            f"{name} already exists ({info.as_dict()['kind']} {what}, strategy "
            f"{info.strategy}{lacks}): `epstats view build --replace` builds the new one "
            "beside it and swaps it in"
        )
    target = QualifiedName(name.schema, f"{name.name[:48]}_epstats_new") if info.exists else name
    statements = _build_statements(session, strategy, target, name.name, ts_type)
    swap: list[Statement] = []
    if info.exists:
        v = _v(session)
        key_tmp, day_tmp = _index_names(target.name)
        key_final, day_final = _index_names(name.name)
        old_kind = sql.SQL(KIND_SQL["materialized" if info.relkind == "m" else "incremental"])
        new_kind = sql.SQL(KIND_SQL[strategy])
        swap = [
            Statement(
                queries.get("view/drop", v, kind=old_kind, view=_qn(name)),
                why="the old rollup goes in the same transaction the new one arrives",
            ),
            Statement(
                queries.get("view/rename", v, kind=new_kind, view=_qn(target), new_name=name.name)
            ),
            Statement(
                queries.get(
                    "view/rename_index", v, index=(name.schema, key_tmp), new_name=key_final
                )
            ),
            Statement(
                queries.get(
                    "view/rename_index", v, index=(name.schema, day_tmp), new_name=day_final
                )
            ),
        ]
    texts = ["BEGIN"] + [as_text(session.conn, st.query, st.params or None) for st in statements]
    texts += ["COMMIT"]
    if swap:
        texts += ["BEGIN"] + [as_text(session.conn, st.query, None) for st in swap] + ["COMMIT"]
    if dry_run:
        return [
            TaskResult(
                "build",
                str(name),
                "planned",
                f"{strategy}" + (" beside the old one, then swap" if swap else ""),
                0,
                ";\n".join(texts),
            )
        ]
    start = time.monotonic()
    try:
        with session.conn.transaction():
            for st in statements:
                session.conn.execute(st.query, st.params or None)
    except psycopg.Error as exc:
        return [
            TaskResult(
                "build",
                str(name),
                "failed",
                error_text(exc),
                time.monotonic() - start,
                ";\n".join(texts),
                error_text(exc),
            )
        ]
    built_at = db_now(session)
    seconds = time.monotonic() - start

    def swap_in() -> None:
        with session.conn.transaction():
            for st in swap:
                session.conn.execute(st.query, st.params or None)
            if _state_table_exists(session):
                session.conn.execute(
                    queries.get("view/state_put", _v(session), view=_qn(name)),
                    _state_params(session, strategy, built_at[0], seconds),
                )

    try:
        retry_on_lock(
            session,
            swap_in,
            relation_oid=info.oid,
            modes=("AccessShareLock", *CONFLICTS_SHARE_UPDATE_EXCLUSIVE),
        )
    except (LockNotGranted, psycopg.Error) as exc:
        if swap:  # leave no half-done replacement behind
            kind = sql.SQL(KIND_SQL[strategy])
            with contextlib.suppress(psycopg.Error):
                session.conn.execute(
                    queries.get("view/drop", _v(session), kind=kind, view=_qn(target))
                )
        reason = error_text(exc)
        if isinstance(exc, psycopg.errors.DependentObjectsStillExist):
            reason = f"other objects depend on {name}: {error_text(exc)}; drop or repoint them"
        return [
            TaskResult(
                "build",
                str(name),
                "failed",
                reason,
                time.monotonic() - start,
                ";\n".join(texts),
                reason,
            )
        ]
    return [
        TaskResult(
            "build",
            str(name),
            "ok",
            f"{strategy}" + (" (replaced the old one)" if swap else ""),
            time.monotonic() - start,
            ";\n".join(texts),
        )
    ]


# --- refresh -----------------------------------------------------------------------------------


def _ms(delta: dt.timedelta) -> str:
    return f"{round(delta.total_seconds() * 1000)}ms"


def refresh_from_day(
    now: dt.datetime, last_refresh: dt.datetime | None, lookback: dt.timedelta, tz: str
) -> dt.date:
    """The first day an incremental refresh recomputes.

    Rows land at most `lookback` late, so every day that can have changed since the last
    refresh starts at (the earlier of now and the last refresh) minus lookback. A refresh that
    did not run for a week therefore catches up on the whole week.
    """
    import zoneinfo

    start = min(now, last_refresh) if last_refresh is not None else now
    return (start - lookback).astimezone(zoneinfo.ZoneInfo(tz)).date()


def refresh(
    session: Session, full: bool = False, since: dt.date | None = None, dry_run: bool = False
) -> TaskResult:
    """Bring the rollup up to date: CONCURRENTLY, or only the days that can have changed."""
    name = session.config.view_name
    require_current(session)
    info = inspect(session, name)
    if not info.exists:
        raise OperationFailed(f"{name} does not exist: build it with `epstats view build`")
    if not info.ours:
        raise OperationFailed(
            f"{name} was not built by epstats (lacks {', '.join(info.lacks)}): "
            "`epstats view build --replace` builds the new one and swaps it in"
        )
    strategy = info.strategy or "materialized"
    configured = session.config.view.strategy
    if strategy != configured:
        raise OperationFailed(
            f"{name} is {strategy} but view.strategy is {configured}: "
            "`epstats view build --replace` switches it"
        )
    v = _v(session)
    view = _qn(name)
    key = f"epstats.rollup:{name}"
    max_wait = _ms(session.config.maintenance.max_runtime)
    lock_timeout = _ms(session.config.database.lock_timeout)
    prologue = [
        Statement(queries.get("view/set_lock_timeout", v), {"timeout": max_wait}),
        Statement(
            queries.get("view/serialize", v),
            {"key": key},
            "one refresh at a time; the wait holds nothing the API needs",
        ),
        Statement(queries.get("view/set_lock_timeout", v), {"timeout": lock_timeout}),
    ]
    now, _hour = db_now(session)
    reason: str
    if strategy == "materialized":
        if since is not None:
            raise OperationFailed(
                "--since applies to the incremental strategy; "
                "a materialized refresh always recomputes all days"
            )
        concurrently = info.populated and "a unique index on (endpoint, day)" not in info.lacks
        body = [
            Statement(
                queries.get(
                    "view/refresh_concurrently" if concurrently else "view/refresh_plain",
                    v,
                    view=view,
                )
            )
        ]
        reason = "REFRESH CONCURRENTLY" if concurrently else "first population (plain REFRESH)"
    else:
        src_oid = source_oid(session)
        ts_type = timestamp_type(session, src_oid)
        routine = (
            refresh_from_day(
                now,
                info.refreshed_at,
                session.config.view.lookback,
                session.config.source.timezone,
            )
            if info.refreshed_at is not None
            else None
        )
        if full:
            from_day = None
        elif since is not None:
            # a backfill never skips the days a routine refresh would recompute
            from_day = since if routine is None else min(since, routine)
        else:
            from_day = routine
        if from_day is None:
            body = [
                Statement(
                    queries.get("view/delete_days", v, view=view), {"from_day": dt.date(1, 1, 1)}
                ),
                Statement(
                    queries.get(
                        "view/insert_days", v, view=view, definition=definition(session, ts_type)
                    )
                ),
            ]
            reason = "all days" + ("" if full else " (no earlier refresh recorded)")
        else:
            body = [
                Statement(queries.get("view/delete_days", v, view=view), {"from_day": from_day}),
                Statement(
                    queries.get(
                        "view/insert_days",
                        v,
                        view=view,
                        definition=definition(session, ts_type, since_filter(session, ts_type)),
                    ),
                    {"from_day": from_day},
                ),
            ]
            reason = f"days from {from_day.isoformat()}" + (
                " (--since)"
                if since is not None
                else f" (lookback {format_duration(session.config.view.lookback)})"
            )
    statements = prologue + body
    text = (
        "BEGIN;\n"
        + ";\n".join(as_text(session.conn, st.query, st.params or None) for st in statements)
        + ";\nCOMMIT"
    )
    if dry_run:
        return TaskResult("refresh", str(name), "planned", f"{strategy}: {reason}", 0, text)
    start = time.monotonic()

    def run() -> None:
        with session.conn.transaction():
            for st in statements:
                session.conn.execute(st.query, st.params or None)
            stamp = db_now(session)
            if _state_table_exists(session):
                session.conn.execute(
                    queries.get("view/state_put", v, view=view),
                    _state_params(session, strategy, stamp[0], time.monotonic() - start),
                )

    try:
        retry_on_lock(
            session, run, relation_oid=info.oid, modes=("ExclusiveLock", "AccessExclusiveLock")
        )
    except (LockNotGranted, psycopg.Error) as exc:
        return TaskResult(
            "refresh",
            str(name),
            "failed",
            error_text(exc),
            time.monotonic() - start,
            text,
            error_text(exc),
        )
    return TaskResult(
        "refresh", str(name), "ok", f"{strategy}: {reason}", time.monotonic() - start, text
    )


# --- verify ------------------------------------------------------------------------------------


@dataclass
class Verification:
    from_day: dt.date
    to_day: dt.date
    watermark: dt.datetime | None
    differences: list[dict[str, Any]]
    pending_rows: int


def verify(session: Session, from_day: dt.date, to_day: dt.date) -> Verification:
    """Compare the rollup with the raw rows, day by day, for [from_day, to_day]."""
    name = session.config.view_name
    info = inspect(session, name)
    if not info.exists:
        raise OperationFailed(f"{name} does not exist: build it with `epstats view build`")
    missing_cols = [x for x in info.lacks if x.startswith("column ")]
    if missing_cols:
        raise OperationFailed(f"{name} cannot be verified: it lacks {', '.join(missing_cols)}")
    if not info.populated:
        raise OperationFailed(f"{name} is not populated yet: run `epstats view refresh`")
    src_oid = source_oid(session)
    ts_type = timestamp_type(session, src_oid)
    ts = session.config.source.columns.timestamp
    where = queries.get(
        "fragments/verify_window",
        _v(session),
        since=since_filter(session, ts_type),
        day=day_expression(session, ts_type),
        timestamp=ts,
    )
    query = queries.get(
        "view/verify", _v(session), view=_qn(name), definition=definition(session, ts_type, where)
    )
    params = {"from_day": from_day, "to_day": to_day, "watermark": info.watermark}
    diffs = _dicts(session, query, params)
    pending_q = queries.get(
        "view/pending_rows", _v(session), table=_qn(session.config.source.table), timestamp=ts
    )
    pending = 0
    if info.watermark is not None:
        row = session.conn.execute(pending_q, {"watermark": info.watermark}).fetchone()
        pending = int(row[0]) if row else 0
    return Verification(from_day, to_day, info.watermark, diffs, pending)
