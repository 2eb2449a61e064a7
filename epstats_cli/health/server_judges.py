"""The judges of the checks check_postgres and PgHero users expect: long transactions,
connections, database size against the guide's tiers, sequence exhaustion (replication lag:
replication_judges.py). Pure, like judges.py (beside which they sit to keep it short): facts,
thresholds and the clock in, a state and a one-line message out."""

from __future__ import annotations

import datetime as dt

from epstats_cli.advise import rules
from epstats_cli.catalog import ServerFacts
from epstats_cli.config import Levels
from epstats_cli.durations import format_duration, human_seconds
from epstats_cli.health.result import CheckResult, Perf, State, Thresholds, level
from epstats_cli.health.server_facts import (
    ConnectionFacts,
    Holder,
    SequenceFacts,
    TableSequences,
    TransactionFacts,
)
from epstats_cli.render import human_bytes

SEE_ALL = "grant pg_read_all_stats to see them"


def seconds(levels: tuple[dt.timedelta, dt.timedelta]) -> Levels:
    return Levels(levels[0].total_seconds(), levels[1].total_seconds())


def _holder(h: Holder) -> str:
    """One thing that holds back xmin, as a person reads it."""
    if h.kind == "active replication slot":
        return (
            f"active replication slot {h.name} (pid {h.pid}) holds back xmin by "
            f"{h.xid_age or 0:,} transactions (hot_standby_feedback: the oldest snapshot on "
            "its standby)"
        )
    if h.kind == "replication slot":
        since = (
            f"for {human_seconds(h.age_seconds)}"
            if h.age_seconds is not None
            else "(since when, this PostgreSQL does not record)"
        )
        return (
            f"replication slot {h.name} is inactive {since} and holds back xmin by "
            f"{h.xid_age or 0:,} transactions (drop it if nothing uses it)"
        )
    age = human_seconds(h.age_seconds or 0.0)
    if h.kind == "prepared transaction":
        return (
            f"prepared transaction {h.name!r} of {h.user} has been open for {age} "
            "(COMMIT PREPARED or ROLLBACK PREPARED it)"
        )
    app = f"application {h.application!r}" if h.application else "no application_name"
    if h.kind == "failed transaction":
        return (
            f"pid {h.pid} ({h.user}, {app}) has been idle in a failed transaction for {age} "
            "(since its error; it waits for a ROLLBACK)"
        )
    doing = "idle in transaction" if h.kind == "idle in transaction" else "in a transaction"
    return f"pid {h.pid} ({h.user}, {app}) has been {doing} for {age}"


def hidden_sessions(facts: TransactionFacts) -> str:
    """What long_transactions could not see, and the grant that shows it ("": nothing)."""
    if not facts.hidden:
        return ""
    return (
        f"{facts.hidden} session(s) of other roles could not be seen "
        f"(GRANT pg_read_all_stats TO {facts.role})"
    )


def long_transactions(facts: TransactionFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """The oldest open transaction, session idle in a failed transaction, prepared transaction
    or inactive slot holding back xmin (they hold back vacuum and make CONCURRENTLY builds
    wait), against the long_transactions levels; a slot whose age the server does not record
    (before PostgreSQL 17) is at least WARNING. A slot's xmin age in transactions, active or
    not (an active one's age in time is not known), is judged against check.xid_age_ratio x
    autovacuum_freeze_max_age: the age at which the table's own xid_age is judged."""
    levels = seconds((t.check.long_transactions.warning, t.check.long_transactions.critical))
    ratio = t.check.xid_age_ratio
    xid_levels = Levels(ratio.warning * facts.freeze_max_age, ratio.critical * facts.freeze_max_age)
    slots = [h for h in facts.holders if h.kind in ("replication slot", "active replication slot")]
    active = [h for h in slots if h.kind == "active replication slot"]
    held = [h for h in facts.holders if h.kind != "active replication slot"]
    timed = sorted(
        (h for h in held if h.age_seconds is not None), key=lambda h: -(h.age_seconds or 0.0)
    )
    untimed = [h for h in held if h.age_seconds is None]
    oldest = timed[0].age_seconds or 0.0 if timed else 0.0
    state = level(oldest, levels)
    if untimed:
        state = max(state, State.WARNING)
    for h in slots:
        state = max(state, level(h.xid_age or 0, xid_levels))
    if held:
        text = "oldest: " + "; ".join(_holder(h) for h in untimed + timed[:1])
        first = levels.warning or levels.critical
        over = [h for h in timed[1:] if (h.age_seconds or 0.0) >= first]
        if over:
            text += f"; {len(over)} more open over {format_duration(dt.timedelta(seconds=first))}"
    else:
        text = "no open transaction, prepared transaction or inactive slot holds back xmin"
    text += "".join(f"; {_holder(h)}" for h in sorted(active, key=lambda h: -(h.xid_age or 0)))
    caveat = hidden_sessions(facts)
    extra = [
        Perf(
            "long_transactions_slot_xmin_age",
            h.xid_age or 0,
            xid_levels.warning,
            xid_levels.critical,
            labels=(("slot", h.name or ""),),
        )
        for h in slots
    ]
    return CheckResult(
        "long_transactions",
        state,
        text + (f"; {caveat}" if caveat else ""),
        round(oldest),
        levels.warning,
        levels.critical,
        unit="seconds",
        extra=extra,
        caveat=caveat,
    )


def connections(facts: ConnectionFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Connections in use against max_connections less the reserved ones, and whether the
    guide's pools (its most pods x the largest pool, plus room for admin) fit."""
    levels = t.check.connections
    available = max(facts.max_connections - facts.reserved, 1)
    ratio = facts.used / available
    pods, pool = rules.API_MAX_PODS, rules.DB_POOL[1]
    need = pods * pool + rules.ADMIN_CONNECTIONS
    fits, largest = rules.pool_fits(pods, pool, facts.max_connections, facts.reserved)
    text = (
        f"{facts.used} of {available} connections in use ({ratio:.0%}; max_connections "
        f"{facts.max_connections} less {facts.reserved} reserved)"
    )
    if fits:
        text += f"; the guide's pools fit ({pods} pods x {pool} + {rules.ADMIN_CONNECTIONS} admin)"
    else:
        text += (
            f"; the guide's pools would need {need} ({pods} pods x {pool} + "
            f"{rules.ADMIN_CONNECTIONS} admin): cap the pool at {largest} per pod, raise "
            "max_connections or put PgBouncer in front (epstats advise)"
        )
    return CheckResult(
        "connections",
        level(ratio, levels),
        text,
        round(ratio, 4),
        levels.warning,
        levels.critical,
        unit="ratio",
        extra=[
            Perf("connections_used", facts.used),
            Perf("connections_available", available),
            Perf("connections_pool_need", need),
        ],
    )


def _tier(size: int) -> int:
    """The guide's resource tier of a database of `size` bytes (1: under 10 GB, 2: 10-50 GB,
    3: over 50 GB), as advise reads rules.POSTGRES_TIERS."""
    for number, (upper, _cpu, _mem) in enumerate(rules.POSTGRES_TIERS, start=1):
        if size <= upper:
            return number
    raise AssertionError("unreachable")


TIER_NAMES = ("under 10 GB", "10-50 GB", "over 50 GB")
# Where each tier but the last ends: the next tier starts at 10 GB, and above 50 GB.
TIER_BOUNDARIES = (10 * rules.GIB, 50 * rules.GIB)


def database_size(server: ServerFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """The database's size against the guide's resource tiers: WARNING within
    check.database_size (a share) below the next tier's boundary, with advise's figures for
    the next tier."""
    size = server.database_bytes
    tier = _tier(size)
    _upper, cpu, mem = rules.POSTGRES_TIERS[tier - 1]
    text = (
        f"database {human_bytes(size)}: tier {tier} of the guide ({TIER_NAMES[tier - 1]}: "
        f"cpu {cpu}m, memory {mem}Mi)"
    )
    margin = t.check.database_size
    extra = [Perf("database_size_tier", tier)]
    if tier == len(rules.POSTGRES_TIERS):
        return CheckResult("database_size", State.OK, text, size, unit="bytes", extra=extra)
    boundary = TIER_BOUNDARIES[tier - 1]
    warn_at = boundary * (1 - margin)
    _next_upper, next_cpu, next_mem = rules.POSTGRES_TIERS[tier]
    if margin and size >= warn_at:
        state = State.WARNING
        text += (
            f"; within {margin:.0%} of {human_bytes(boundary)}: time to resize to the next tier "
            f"(cpu {next_cpu}m, memory {next_mem}Mi; epstats advise)"
        )
    else:
        state = State.OK
        text += f"; {human_bytes(boundary - size)} to the next tier"
    warning = round(warn_at) if margin else None
    return CheckResult("database_size", state, text, size, warning, None, unit="bytes", extra=extra)


def _used(s: SequenceFacts) -> tuple[float, int, str]:
    """The share of a sequence's range used, the limit it runs into, and whose limit it is."""
    ascending = s.increment > 0
    own = s.max_value if ascending else s.min_value
    typ = s.type_max if ascending else s.type_min
    limit = own if typ is None else (min(own, typ) if ascending else max(own, typ))
    if typ is not None and limit == typ:
        whose = f"the {s.column_type} column's limit"
    else:
        whose = "its MAXVALUE" if ascending else "its MINVALUE"
    last = s.last_value if s.last_value is not None else 0
    return (max(0.0, last / limit) if limit else 0.0), limit, whose


def sequence_exhaustion(facts: TableSequences, t: Thresholds, now: dt.datetime) -> CheckResult:
    """The sequence feeding the source table that has used the largest share of the smaller of
    its own limit and its column type's (an integer column stops every INSERT at 2^31 - 1)."""
    levels = t.check.sequence_exhaustion
    name = "sequence_exhaustion"
    seqs = facts.sequences
    if not seqs:
        return CheckResult(
            name,
            State.OK,
            f"no sequence feeds {facts.table}",
            0,
            levels.warning,
            levels.critical,
            unit="ratio",
        )
    readable = [s for s in seqs if s.readable]
    unreadable = sorted({s.sequence for s in seqs if not s.readable})
    denied = (
        f"; this role may not read {', '.join(unreadable)} (grant SELECT on it)"
        if unreadable
        else ""
    )
    if not readable:
        return CheckResult(name, State.UNKNOWN, "cannot check: " + denied.lstrip("; "))
    judged = [(s, *_used(s)) for s in readable]
    judged.sort(key=lambda j: -j[1])
    worst, ratio, limit, whose = judged[0]
    state = level(ratio, levels)
    if unreadable and state == State.OK:
        state = State.UNKNOWN
    cycles = "; it cycles: ids repeat after the limit" if worst.cycles else ""
    fix = ""
    if state in (State.WARNING, State.CRITICAL):
        fix = (
            " (ALTER the column to bigint, and the sequence AS bigint, before INSERTs stop)"
            if whose.endswith("column's limit")
            else " (raise it with ALTER SEQUENCE before INSERTs stop)"
        )
    at = "unused" if worst.last_value is None else f"at {worst.last_value:,}"
    text = (
        f"{worst.sequence} ({worst.column} {worst.column_type}) {at} of {limit:,}, "
        f"{whose}: {ratio:.1%} used{fix}{cycles}"
    )
    if len(judged) > 1:
        text += f"; {len(judged) - 1} more sequence(s) below that"
    extra = [
        Perf(
            "sequence_used",
            round(r, 6),
            levels.warning,
            levels.critical,
            "ratio",
            (("sequence", s.sequence), ("column", s.column)),
        )
        for s, r, _limit, _whose in judged
    ]
    return CheckResult(
        name,
        state,
        text + denied,
        round(ratio, 6),
        levels.warning,
        levels.critical,
        unit="ratio",
        extra=extra,
    )
