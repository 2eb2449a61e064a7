"""`view refresh`: the rollup brought up to date in one short transaction.

materialized: REFRESH MATERIALIZED VIEW CONCURRENTLY (plain on first population).
incremental: the days that can still change (days.first_day_to_recompute) and the bookkeeping
row deleted, then re-aggregated with a new bookkeeping row by one INSERT (one statement, one
snapshot: its as-of and snapshot say exactly what it saw). Either way one refresh of a rollup
runs at a time, and the state row (with epstats's mark: the relation's oid and the parameters
it was built with) is written in the same transaction. A rollup whose recorded parameters
differ from the configuration is refused (exit 3): only a rebuild changes them.

With endpoint normalization on, an incremental refresh of recent days normalizes each row of
the days it recomputes by the expression itself: for the few rows of a refresh that costs less
than mapping their new keys and joining the map (benchmarks/normalize.py: 1.62x a plain
refresh, against 2.29x, with UUID ids at 10M rows). A materialized refresh (whose definition
joins the map) and a full incremental one first map the raw endpoints of the days they
recompute (endpoints.fill_lock and fill: the map's new keys; nothing when another fill of the
rule holds its lock, never waited for); a raw endpoint the map lacks is normalized as it is
read, so the fill only saves time. Either way the aggregate is planned without Memoize. With or
without normalization it hashes its groups (aggregate.planner_settings): the planner counts as
many latency buckets as rows and would otherwise sort every row read.
"""

from __future__ import annotations

import datetime as dt

from psycopg import sql

from epstats_cli import endpoints, source
from epstats_cli.db import Session
from epstats_cli.db import now as db_now
from epstats_cli.endpoints import Normalization
from epstats_cli.errors import OperationFailed
from epstats_cli.execute import Executor, Mode, Statement, Step
from epstats_cli.history import TaskResult
from epstats_cli.rollup import state
from epstats_cli.rollup.aggregate import definition, insert, planner_settings
from epstats_cli.rollup.days import first_day_to_recompute
from epstats_cli.rollup.inspect import RollupFacts, facts, require_mark, require_parameters
from epstats_cli.schema import require_current

# Who can hold up a refresh: DDL on the rollup, or a plain REFRESH of it.
BLOCKING_MODES = ("ExclusiveLock", "AccessExclusiveLock")
# SQLSTATE 22012 from view/horizon_guard: retention recorded a later horizon meanwhile.
HORIZON_MOVED = "22012"
HORIZON_HINT = {
    HORIZON_MOVED: "a retention run retired days this refresh would recompute (planned before "
    "it recorded its horizon): nothing was changed; run it again"
}


def _ms(delta: dt.timedelta) -> str:
    return f"{round(delta.total_seconds() * 1000)}ms"


def refreshable(session: Session) -> RollupFacts:
    """The rollup's facts; OperationFailed when refresh cannot run on it, ConfigError (exit 3)
    when it was built with other parameters than the configuration's."""
    name = session.config.view_name
    require_current(session)
    info = facts(session, name, contents=False)
    require_mark(info)
    if not info.exists:
        raise OperationFailed(f"{name} does not exist: build it with `epstats view build`")
    if not info.ours:
        raise OperationFailed(
            f"{name} was not built by epstats (lacks {', '.join(info.lacks)}): "
            "`epstats view build --replace` builds the new one and swaps it in"
        )
    require_parameters(info, session.config)
    return info


def prologue(session: Session) -> list[Statement]:
    """Wait (up to max_runtime, holding nothing the API needs) for any other refresh of this
    rollup, then run under the usual lock_timeout."""
    cfg = session.config
    key = f"epstats.rollup:{cfg.view_name}"
    return [
        Statement(
            session.statement("view/set_lock_timeout"),
            {"timeout": _ms(cfg.maintenance.max_runtime)},
        ),
        Statement(session.statement("view/serialize"), {"key": key}),
        Statement(
            session.statement("view/set_lock_timeout"),
            {"timeout": _ms(cfg.database.lock_timeout)},
        ),
    ]


def _materialized(session: Session, info: RollupFacts) -> tuple[list[Statement], str]:
    view = (info.name.schema, info.name.name)
    if info.populated and "a unique index on (endpoint, day)" not in info.lacks:
        return [Statement(session.statement("view/refresh_concurrently", view=view))], (
            "REFRESH CONCURRENTLY"
        )
    return [Statement(session.statement("view/refresh_plain", view=view))], (
        "first population (plain REFRESH)"
    )


def _incremental(
    session: Session,
    info: RollupFacts,
    first_day: dt.date | None,
    basis: source.Basis,
    norm: Normalization,
) -> list[Statement]:
    view = (info.name.schema, info.name.name)
    columns = info.insert_columns()  # a rollup built before the histograms lacks them
    if first_day is None:
        rows = definition(session, basis, norm)
        return [
            Statement(session.statement("view/delete_days", view=view), {"from_day": dt.date.min}),
            Statement(insert(session, view, columns, rows)),
        ]
    rows = definition(session, basis, norm, source.since(session, basis), inline=True)
    return [
        Statement(session.statement("view/delete_days", view=view), {"from_day": first_day}),
        Statement(insert(session, view, columns, rows), {"from_day": first_day}),
    ]


def past_horizon(
    first_day: dt.date | None, reason: str, horizon: dt.date | None
) -> tuple[dt.date | None, str]:
    """The first day to recompute, never one up to the retention horizon (those days' raw rows
    are retired: the rollup alone keeps them), and why."""
    if horizon is None or (first_day is not None and first_day > horizon):
        return first_day, reason
    first = horizon + dt.timedelta(days=1)
    return first, (
        f"days from {first.isoformat()} (the retention horizon: days up to {horizon.isoformat()} "
        "are kept by the rollup alone)"
    )


def horizon_guard(session: Session, info: RollupFacts, first_day: dt.date | None) -> Statement:
    """Fails the transaction when a retention run recorded a horizon reaching `first_day` after
    this step was planned (HORIZON_HINT says so)."""
    return Statement(
        session.statement("view/horizon_guard"),
        {"view": str(info.name), "from_day": first_day or dt.date.min},
    )


def mapping(
    session: Session,
    norm: Normalization,
    basis: source.Basis,
    first_day: dt.date | None,
    inline: bool = False,
) -> list[Statement]:
    """What a refresh runs first when normalization is on: the raw endpoints of the rows from
    `first_day` on (None: all) mapped, and the planner settings of the joining statement;
    `inline` (the aggregate normalizes each row itself): the planner settings alone."""
    if not norm.active or inline:
        return [Statement(q) for q in planner_settings(session, norm)]
    where = source.up_to_now(session, basis)
    params: dict[str, object] = {}
    if first_day is not None:
        where = sql.SQL("{} AND {}").format(source.since(session, basis), where)
        params["from_day"] = first_day
    lock, lock_params = endpoints.fill_lock(session, norm)
    query, fill_params = endpoints.fill(session, norm, where)
    return [
        Statement(lock, lock_params),
        Statement(query, {**fill_params, **params}),
        *(Statement(q) for q in planner_settings(session, norm)),
    ]


def plan_refresh(session: Session, full: bool = False, since: dt.date | None = None) -> Step:
    """The refresh as one transaction step; OperationFailed when it cannot run."""
    columns = source.check_columns(session)  # before anything else reads the source
    info = refreshable(session)
    basis = source.Basis.of(session.config, columns)
    norm = Normalization.of(session.config)
    endpoints.require_map(session, norm)
    strategy = info.strategy or "materialized"
    now, _hour = db_now(session)
    cfg = session.config
    if strategy == "materialized":
        if since is not None:
            raise OperationFailed(
                "--since applies to the incremental strategy; "
                "a materialized refresh always recomputes all days"
            )
        body, reason = _materialized(session, info)
        # the rows new since the last refresh (within the lookback) hold the new raw endpoints
        first_day, _why = first_day_to_recompute(
            now, info.refreshed_at, cfg.view.lookback, cfg.source.timezone
        )
    else:
        first_day, reason = first_day_to_recompute(
            now, info.refreshed_at, cfg.view.lookback, cfg.source.timezone, since, full
        )
        first_day, reason = past_horizon(first_day, reason, info.retired_through)
        body = _incremental(session, info, first_day, basis, norm)
        if info.state_table:
            body = [horizon_guard(session, info, first_day), *body]
    # an incremental refresh of recent days normalizes each row itself: measured cheaper than
    # the map's fill and join for the few rows of a refresh (benchmarks/normalize.py)
    inline = strategy == "incremental" and first_day is not None
    statements = prologue(session) + mapping(session, norm, basis, first_day, inline) + body
    if info.state_table:
        # the recorded parameters (equal to the configuration's: require_parameters), so a
        # rollup an earlier epstats marked with its comment is marked in rollup_state from now
        statements.append(state.put(session, info.name, strategy, now, info.parameters))
    return Step(
        "refresh",
        str(info.name),
        f"{strategy}: {reason}",
        statements,
        mode=Mode.TRANSACTION,
        relation_oid=info.oid,
        lock_modes=BLOCKING_MODES,
        error_hints=HORIZON_HINT,
    )


def refresh(
    session: Session,
    full: bool = False,
    since: dt.date | None = None,
    dry_run: bool = False,
    *,
    executor: Executor | None = None,
) -> TaskResult:
    """Bring the rollup up to date: CONCURRENTLY, or only the days that can have changed."""
    step = plan_refresh(session, full, since)
    return (executor or Executor(session, dry_run)).run(step)
