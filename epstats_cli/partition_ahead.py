"""Partitions kept ahead (the `partitions` maintain task) and what `partition status` and
`check partition_runway` read: how many intervals ahead partitions exist, and the rows
sitting in the DEFAULT partition.

A partition made ahead never takes ACCESS EXCLUSIVE on the parent: it is created on its own
(`CREATE TABLE … (LIKE parent)` with the storage parameters of the newest partition, which
`tune apply` set), given a CHECK constraint matching its bounds, then attached (`ATTACH
PARTITION`: SHARE UPDATE EXCLUSIVE on the parent, INSERTs go on; the CHECK spares the scan of
the new table; the parent's indices are created on it, empty, as it is attached), all in one
transaction under lock_timeout. Rows of its range that landed in the DEFAULT partition
(a row dated beyond the partitions, written before this one existed) are moved into it in the
same transaction: an ATTACH would fail on them (pg_partman's users' most common complaint).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from epstats_cli import partition, source
from epstats_cli.catalog import source_oid
from epstats_cli.config import QualifiedName
from epstats_cli.db import Session, now
from epstats_cli.execute import Mode, Statement, Step
from epstats_cli.partition_runway import DefaultRows, Runway

TASK = "partitions"
DAYS = {"day": 1, "week": 7, "month": 31}


def _interval(session: Session, parts: list[partition.Partition]) -> str:
    found = partition.interval_of([p for p in parts if not p.default])
    configured = session.config.partition.interval
    return found or (configured if configured != "auto" else "day")


def default_rows(session: Session, part: partition.Partition, naive: bool) -> DefaultRows:
    """The rows in the DEFAULT partition (a scan of it: it is kept empty, or nearly)."""
    basis = source.Basis.of(session.config, source.check_columns(session))
    retention, before = session.config.source.retention, None
    if retention is not None:  # local midnight after the last day retention retires now
        at, _hour = now(session)
        zone = zoneinfo.ZoneInfo(basis.timezone)
        before = dt.datetime.combine((at - retention).astimezone(zone).date(), dt.time(), zone)
    row = session.one(
        "partition/default_rows",
        {"retired_before": before},
        default=part.qualified,
        instant=source.instant(session, basis),
    )
    assert row is not None
    return DefaultRows(int(row["count"]), row["oldest"], row["newest"], int(row["retired"]), before)


def runway(session: Session, with_default_rows: bool = True) -> Runway:
    """The partitions' reach from the server's now()."""
    oid = source_oid(session)
    naive = source.check_columns(session, oid).naive
    parts = partition.partitions_of(session, oid, naive)
    if not parts:
        return Runway(False)
    at, _hour = now(session)
    out = Runway(True, _interval(session, parts))
    spans = [(p.lower, p.upper) for p in parts if p.lower is not None and p.upper is not None]
    out.covers_now = any(lower <= at < upper for lower, upper in spans)
    out.ahead = sum(1 for lower, _upper in spans if lower >= at)
    uppers = [upper for _lower, upper in spans]
    out.through = max(uppers) if uppers else None
    default = next((p for p in parts if p.default), None)
    if default is not None:
        out.default = default.name
        if with_default_rows:
            out.default_rows = default_rows(session, default, naive)
    return out


@dataclass
class Status:
    table: QualifiedName
    rows: list[dict[str, Any]]
    runway: Runway
    conversion: str
    lines: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        r = self.runway
        d = r.default_rows
        return {
            "table": str(self.table),
            "partitioned": r.partitioned,
            "interval": r.interval,
            "partitions": self.rows,
            "ahead": r.ahead if r.partitioned else None,
            "covers_now": r.covers_now if r.partitioned else None,
            "through": r.through.isoformat() if r.through else None,
            "default_partition": r.default,
            "default_rows": d.count if d else None,
            "conversion": self.conversion,
        }


def status(session: Session) -> Status:
    """What `partition status` shows."""
    from epstats_cli import partition_convert  # its state: a conversion under way

    table = session.config.source.table
    parts = partition.partitions(session)
    rows = [
        {
            "name": p.name,
            "first_day": str(p.first_day) if p.first_day else ("DEFAULT" if p.default else None),
            "last_day": str(p.last_day) if p.last_day else None,
            "rows": p.rows,
        }
        for p in parts
    ]
    r = runway(session)
    conversion = partition_convert.state(session)
    out = Status(table, rows, r, conversion.stage)
    out.lines.append(conversion.said)
    if r.partitioned:
        out.lines.append(
            f"{r.ahead} {r.interval} partition(s) ahead"
            + (f", through {source.local(session, r.through)}" if r.through else "")
            + ("" if r.covers_now else "; no partition holds the current time")
        )
        if r.default_rows is not None and r.default_rows.count:
            out.lines.append(
                f"{r.default_rows.count:,} row(s) in the DEFAULT partition {r.default}: the "
                "partitions task moves them out when it makes their range's partition"
            )
    if conversion.stage == "swapped" and conversion.retired_at is not None:
        keep = session.config.partition.keep_old
        out.lines.append(
            f"the old table is kept until {source.local(session, conversion.retired_at + keep)} "
            "(partition.keep_old; then `cleanup` drops it), or `partition apply --drop-old`"
        )
    return out


def _options(session: Session, oid: int | None) -> sql.Composable:
    if oid is None:
        return sql.SQL("")
    raw = session.value("partition/options", {"oid": oid}) or []
    if not raw:
        return sql.SQL("")
    pairs = [o.split("=", 1) for o in raw]
    return sql.SQL(" WITH ({})").format(
        sql.SQL(", ").join(sql.SQL("{} = {}").format(sql.SQL(k), sql.Literal(v)) for k, v in pairs)
    )


def plan_partitions(session: Session) -> list[Step]:
    """The partitions to make so that they reach partition.premake intervals past today."""
    table = session.config.source.table
    oid = source_oid(session)
    naive = source.check_columns(session, oid).naive
    parts = partition.partitions_of(session, oid, naive)
    if not parts:
        return [
            Step(
                TASK,
                str(table),
                "make partitions ahead",
                [],
                done="nothing to do: not partitioned (epstats partition apply converts it)",
            )
        ]
    interval = _interval(session, parts)
    ranged = [p for p in parts if not p.default and p.upper is not None and p.last_day]
    leaves = [p for p in ranged if p.leaf]
    at, _hour = now(session)
    today = source.local(session, at).date()
    premake = session.config.partition.premake
    last = today + dt.timedelta(days=DAYS[interval] * premake)
    newest = max((p.upper for p in ranged if p.upper is not None), default=None)
    last_days = [p.last_day for p in ranged if p.last_day is not None]
    first = max(today, max(last_days) + dt.timedelta(days=1)) if last_days else today
    wanted = [
        b
        for b in partition.bounds(session, interval, first, last, naive)
        if newest is None or b.lower >= newest
    ]
    if interval == "month":  # `premake` months past the current one, not 31-day steps
        wanted = wanted[: max(0, premake - sum(1 for p in ranged if p.lower and p.lower > at))]
    owner = session.value("partition/owner", {"oid": oid})
    options = _options(session, leaves[-1].oid if leaves else None)
    default = next((p for p in parts if p.default), None)
    ts = session.config.source.columns.timestamp
    columns = sql.SQL(", ").join(
        sql.Identifier(r["name"]) for r in session.all("partition/columns", {"oid": oid})
    )
    steps = []
    for b in wanted:
        name = QualifiedName(
            table.schema, partition.partition_name(table.name, interval, b.first_day)
        )
        ident = (name.schema, name.name)
        check = name.name.encode()[:50].decode(errors="ignore") + "_bounds"
        lower, upper = sql.Literal(b.lower_value), sql.Literal(b.upper_value)
        statements = [
            Statement(
                session.statement(
                    "partition/create_detached",
                    partition=ident,
                    parent=(table.schema, table.name),
                    reloptions=options,
                )
            )
        ]
        if owner != session.server.user:
            statements.append(
                Statement(
                    session.statement(
                        "keep/alter_owner", kind=sql.SQL("TABLE"), relation=ident, owner=owner
                    )
                )
            )
        statements.append(
            Statement(
                session.statement(
                    "partition/add_check",
                    partition=ident,
                    constraint=check,
                    timestamp=ts,
                    lower=lower,
                    upper=upper,
                )
            )
        )
        if default is not None:
            statements.append(
                Statement(
                    session.statement(
                        "partition/move_from_default",
                        default=default.qualified,
                        partition=ident,
                        columns=columns,
                        range=session.statement(
                            "fragments/partition_range", timestamp=ts, lower=lower, upper=upper
                        ),
                    )
                )
            )
        statements += [
            Statement(
                session.statement(
                    "partition/attach",
                    parent=(table.schema, table.name),
                    partition=ident,
                    lower=lower,
                    upper=upper,
                )
            ),
            Statement(session.statement("partition/drop_check", partition=ident, constraint=check)),
        ]
        steps.append(
            Step(
                TASK,
                str(name),
                f"the {interval} partition from {b.first_day}, {premake} {interval}(s) ahead: "
                "created beside the table with a CHECK matching its bounds, then attached "
                "(SHARE UPDATE EXCLUSIVE on the table, no scan)"
                + (f"; its rows in {default.name} moved into it" if default else ""),
                statements,
                Mode.TRANSACTION,
                done=f"attached ({b.first_day})",
                relation_oid=oid,
            )
        )
    if not steps:
        return [
            Step(
                TASK,
                str(table),
                "make partitions ahead",
                [],
                done=f"nothing to do: partitions reach {premake} {interval}(s) ahead already",
            )
        ]
    return steps
