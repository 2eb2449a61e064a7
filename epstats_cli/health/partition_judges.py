"""The judge of `check partition_runway`: how many intervals ahead the partitions reach, and
rows sitting in the DEFAULT partition (pure: facts, thresholds and the clock in)."""

from __future__ import annotations

import datetime as dt

from epstats_cli.health.judges import CheckResult, State, Thresholds
from epstats_cli.partition_runway import Runway

NAME = "partition_runway"


def partition_runway(r: Runway, t: Thresholds, now: dt.datetime) -> CheckResult:
    """WARNING below check.partition_runway.warning intervals ahead, CRITICAL below its
    critical (or when no partition holds the current time); rows in the DEFAULT partition are
    at least a WARNING (they slow every ATTACH and block a DETACH ... CONCURRENTLY)."""
    levels = t.check.partition_runway
    warn, crit = levels.warning, levels.critical
    if not r.partitioned:
        return CheckResult(NAME, State.OK, "the source table is not partitioned")
    ahead = r.ahead
    state = State.OK
    if not r.covers_now or (crit and ahead < crit):
        state = State.CRITICAL
    elif warn and ahead < warn:
        state = State.WARNING
    through = f", through {r.through.isoformat()}" if r.through else ""
    summary = f"{ahead} {r.interval} partition(s) ahead{through}"
    if not r.covers_now:
        summary += "; no partition holds the current time: new rows land in " + (
            f"the DEFAULT partition {r.default}" if r.default else "no partition (INSERTs fail)"
        )
    if state is not State.OK:
        summary += " (epstats maintain --only partitions makes them)"
    details: list[str] = []
    d = r.default_rows
    if d is not None and d.count:
        if state is State.OK:
            state = State.WARNING
        span = ""
        if d.oldest is not None and d.newest is not None:
            span = f", dated {d.oldest.isoformat()} to {d.newest.isoformat()}"
        summary += (
            f"; {d.count:,} row(s) in the DEFAULT partition {r.default}{span} (the partitions "
            "task moves those of the partitions it makes; older ones need a partition made by "
            "hand)"
        )
        if d.retired and d.retired_before is not None:
            summary += (
                f"; {d.retired:,} of them dated before {d.retired_before.date()} (older than "
                "source.retention: the retention task merges them into the rollup and deletes "
                "them)"
            )
    return CheckResult(NAME, state, summary, ahead, warn, crit, details, unit="")
