"""The judge of replication lag: on a primary each standby's (told apart when several share
an application_name), on a standby its own. Pure, like the other judges (beside which it sits
to keep them short)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from epstats_cli.durations import human_seconds
from epstats_cli.health.result import CheckResult, Perf, State, Thresholds, level
from epstats_cli.health.server_facts import ReplicationFacts, StandbyLag
from epstats_cli.health.server_judges import SEE_ALL, seconds
from epstats_cli.render import human_bytes


def _behind(n: int | None) -> str:
    return "" if not n else f", {human_bytes(n)} of WAL to replay"


def _apart(s: StandbyLag) -> tuple[str | None, ...]:
    """What may tell a standby from others of its name, the steadiest first: the slot it
    streams through, its address, its address and port (a new one at each reconnection), its
    pid."""
    where = f"{s.address}:{s.port}" if s.address and s.port else None
    return (
        f"slot {s.slot}" if s.slot else None,
        s.address,
        where,
        f"pid {s.pid}" if s.pid is not None else None,
    )


def standby_names(standbys: Sequence[StandbyLag]) -> list[str]:
    """Each standby's name in the message, perfdata and metrics: its own (application_name),
    and where several share it (pg_basebackup -R standbys all connect as "walreceiver") the
    steadiest of _apart that no other standby of that name shares: `walreceiver (slot s1)`,
    `walreceiver (10.0.0.7)`, `walreceiver (10.0.0.7:51234)`."""
    out = []
    for s in standbys:
        twins = [t for t in standbys if t.name == s.name and t is not s]
        if not twins:
            out.append(s.name)
            continue
        taken = [_apart(t) for t in twins]
        mine = _apart(s)
        unique = [v for i, v in enumerate(mine) if v and all(o[i] != v for o in taken)]
        out.append(f"{s.name} ({unique[0]})" if unique else f"{s.name} ({len(out) + 1})")
    return out


def replication_lag(facts: ReplicationFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """On a primary the worst standby's replay lag; on a standby its own, while WAL waits to
    be replayed. UNKNOWN when it cannot be told."""
    if facts.in_recovery:
        return _standby_lag(facts, t)
    levels = seconds((t.check.replication_lag.warning, t.check.replication_lag.critical))
    name = "replication_lag"
    if not facts.standbys:
        return CheckResult(
            name, State.OK, "no standbys", 0, levels.warning, levels.critical, unit="seconds"
        )
    seen = [s for s in facts.standbys if s.state is not None]
    hidden = len(facts.standbys) - len(seen)
    if not seen:
        return CheckResult(
            name,
            State.UNKNOWN,
            f"{hidden} standby(s) stream from this server, but this role cannot see their lag "
            f"({SEE_ALL})",
        )
    named = list(zip(standby_names(seen), seen, strict=True))
    lags = {label: max(0.0, s.lag_seconds or 0.0) for label, s in named}
    worst = max(lags.values())
    parts = []
    for label, s in sorted(named, key=lambda n: -lags[n[0]]):
        said = (
            "caught up" if s.lag_seconds is None else f"replays {human_seconds(lags[label])} behind"
        )
        state = "" if s.state == "streaming" else f" ({s.state})"
        parts.append(f"{label}{state} {said}{_behind(s.behind_bytes)}")
    if hidden:
        parts.append(f"{hidden} more not visible ({SEE_ALL})")
    extra = [
        Perf(
            "replication_lag_standby",
            round(lags[label], 3),
            levels.warning,
            levels.critical,
            "seconds",
            (("standby", label),),
        )
        for label, _s in named
    ] + [
        Perf("replication_behind", s.behind_bytes or 0, unit="bytes", labels=(("standby", label),))
        for label, s in named
    ]
    count = f"{len(facts.standbys)} standby" + ("s" if len(facts.standbys) > 1 else "")
    return CheckResult(
        name,
        level(worst, levels),
        f"{count}: " + "; ".join(parts),
        round(worst, 3),
        levels.warning,
        levels.critical,
        unit="seconds",
        extra=extra,
        caveat=f"{hidden} standby(s) not visible ({SEE_ALL})" if hidden else "",
    )


def _standby_lag(facts: ReplicationFacts, t: Thresholds) -> CheckResult:
    """This standby's lag: now() - its last replayed commit while received WAL waits."""
    levels = seconds((t.check.replication_lag.warning, t.check.replication_lag.critical))
    name = "replication_lag"
    if facts.receiver_hidden:
        cut_off = (
            "; this role cannot see pg_stat_wal_receiver, so whether WAL still arrives is "
            f"unknown (GRANT pg_read_all_stats TO {facts.role})"
        )
    elif not facts.receiving:
        cut_off = "; no WAL receiver streams (cut off from the primary?)"
    else:
        cut_off = ""
    if not facts.behind:
        state = State.OK if facts.receiving else State.UNKNOWN
        text = "this standby has replayed all the WAL it received" + cut_off
        return CheckResult(name, state, text, 0, levels.warning, levels.critical, unit="seconds")
    if facts.lag_seconds is None:
        return CheckResult(
            name,
            State.UNKNOWN,
            "WAL waits to be replayed, but no transaction was replayed since the standby "
            "started: the lag cannot be told yet" + cut_off,
        )
    lag = max(0.0, facts.lag_seconds)
    state = level(lag, levels)
    if not facts.receiving and state == State.OK:
        state = State.UNKNOWN
    return CheckResult(
        name,
        state,
        f"this standby replays {human_seconds(lag)} behind the primary"
        f"{_behind(facts.behind_bytes)}{cut_off}",
        round(lag, 3),
        levels.warning,
        levels.critical,
        unit="seconds",
    )
