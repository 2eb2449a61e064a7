"""What the rollup is: the one place that reads its kind, parameters, contents and state.

`facts(session)` gathers everything (catalog, the ownership comment, the contents' watermark,
epstats.rollup_state) with SELECTs only, so it works on a standby and with a read-only role;
the judgements (`lacking`, `RollupFacts.unreadable`) are plain code over them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from epstats_cli.catalog import relation_exists
from epstats_cli.config import QualifiedName
from epstats_cli.db import Session

# The comment epstats puts on the rollup it builds; anything else was made by hand.
COMMENT_PREFIX = "epstats rollup:"

# Every column of the rollup, whatever the strategy, with its type.
COLUMNS = {
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

# The relation behind each strategy: its pg_class.relkind and its name in DDL.
RELKIND = {"materialized": "m", "incremental": "r"}
KIND_SQL = {"materialized": "MATERIALIZED VIEW", "incremental": "TABLE"}
RELKIND_NAMES = {"m": "materialized view", "r": "table", "v": "view"}


def strategy_of(relkind: str | None) -> str | None:
    """The strategy a relation of this kind serves (None: neither a table nor a mat. view)."""
    return next((s for s, kind in RELKIND.items() if kind == relkind), None)


def comment(strategy: str, timezone: str) -> str:
    """The ownership comment of a rollup built by epstats, with its parameters."""
    return f"{COMMENT_PREFIX} strategy={strategy} timezone={timezone} version=1"


def parse_comment(text: str | None) -> dict[str, str] | None:
    """The parameters in an epstats ownership comment; None when the comment is not ours."""
    if not text or not text.startswith(COMMENT_PREFIX):
        return None
    parts = text[len(COMMENT_PREFIX) :].split()
    return dict(p.split("=", 1) for p in parts if "=" in p)


@dataclass
class RollupFacts:
    """What the rollup relation is now, what it lacks, what it holds and when it was refreshed."""

    name: QualifiedName
    exists: bool = False
    oid: int | None = None
    relkind: str | None = None
    ours: bool = False  # built by epstats (our comment on a table or materialized view)
    strategy: str | None = None  # from our comment, else from the relation's kind
    timezone: str | None = None  # the zone its days are in, from our comment
    populated: bool = False
    columns: dict[str, str] = field(default_factory=dict)  # present: name -> type
    lacks: list[str] = field(default_factory=list)
    size_bytes: int | None = None
    estimated_rows: int | None = None
    index_names: list[str] = field(default_factory=list)
    # from its contents (facts(contents=True), when populated)
    watermark: dt.datetime | None = None
    row_count: int | None = None
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    # from epstats.rollup_state (facts(state=True), when epstats is initialised)
    refreshed_at: dt.datetime | None = None
    refresh_seconds: float | None = None
    settled_through: dt.date | None = None
    state_table: bool = False  # epstats.rollup_state exists (facts(state=True) only)

    @property
    def missing_columns(self) -> list[str]:
        """Rollup columns the relation does not have at all."""
        return [c for c in COLUMNS if c not in self.columns]

    def unreadable(self) -> str | None:
        """Why reports cannot read the rollup (None: they can)."""
        if not self.exists:
            return f"no rollup {self.name} (epstats view build creates it)"
        if self.relkind == "m" and not self.populated:
            return f"the rollup {self.name} is not populated yet (epstats view refresh)"
        if self.missing_columns:
            missing = ", ".join(sorted(self.missing_columns))
            return f"the rollup {self.name} lacks {missing} (epstats view build --replace)"
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": str(self.name),
            "exists": self.exists,
            "kind": RELKIND_NAMES.get(self.relkind or "", self.relkind),
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


def lacking(facts: RollupFacts, has_unique_key: bool, timezone: str) -> list[str]:
    """What the relation lacks to be a rollup epstats can refresh for this configuration."""
    out = []
    for name, type_ in COLUMNS.items():
        if name not in facts.columns:
            out.append(f"column {name}")
        elif facts.columns[name] != type_:
            out.append(f"column {name} is {facts.columns[name]}, not {type_}")
    if not has_unique_key:
        out.append("a unique index on (endpoint, day)")
    if not facts.ours:
        out.append("days in source.timezone (the guide's date_trunc uses the session zone)")
    if facts.relkind not in RELKIND.values():
        out.append("being a materialized view or table")
    if facts.ours and facts.timezone != timezone:
        out.append(f"days in {timezone} (built for {facts.timezone})")
    return out


def facts(
    session: Session,
    name: QualifiedName | None = None,
    *,
    contents: bool = True,
    state: bool = True,
) -> RollupFacts:
    """Read the rollup from the catalog and its comment; with `contents`, its watermark and
    extent (a scan of the rollup); with `state`, what epstats.rollup_state recorded."""
    name = name or session.config.view_name
    info = RollupFacts(name, state_table=state and state_table_exists(session))
    row = session.one("view/info", {"schema": name.schema, "name": name.name})
    if row is None:
        return info
    info.exists = True
    info.oid = row["oid"]
    info.relkind = row["relkind"]
    info.populated = bool(row["populated"])
    info.size_bytes = row["size_bytes"]
    info.estimated_rows = row["estimated_rows"]
    info.index_names = list(row["index_names"])
    for col in row["columns"]:
        col_name, _, col_type = col.partition(" ")
        info.columns[col_name] = col_type
    params = parse_comment(row["comment"])
    if params is not None and row["relkind"] in RELKIND.values():
        info.ours = True
        info.strategy = params.get("strategy")
        info.timezone = params.get("timezone")
    else:
        info.strategy = strategy_of(row["relkind"])
    info.lacks = lacking(info, bool(row["has_unique_key"]), session.config.source.timezone)
    if contents and info.populated and "column max_timestamp" not in info.lacks:
        c = session.one("view/contents", view=(name.schema, name.name))
        if c is not None:
            info.watermark = c["watermark"]
            info.row_count = c["row_count"]
            info.first_day, info.last_day = c["first_day"], c["last_day"]
    if info.state_table:
        s = session.one("view/state_get", {"view": str(name)})
        if s is not None:
            info.refreshed_at = s["refreshed_at"]
            info.refresh_seconds = s["refresh_seconds"]
            info.settled_through = s["settled_through"]
    return info


def state_table_exists(session: Session) -> bool:
    """Whether `epstats init` has created epstats.rollup_state."""
    return relation_exists(session, "epstats", "rollup_state")
