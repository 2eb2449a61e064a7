"""What the rollup is: the one place that reads its kind, parameters, contents and state.

`facts(session)` gathers everything (catalog, the ownership comment with the parameters the
rollup was built with, its bookkeeping row's as-of and snapshot, its extent,
epstats.rollup_state) with SELECTs only, so it works on a standby and with a read-only role;
the judgements (`lacking`, `parameter_mismatch`, `RollupFacts.unreadable`) are plain code
over them.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from epstats_cli.catalog import relation_exists
from epstats_cli.config import LOGICAL_COLUMNS, Config, QualifiedName
from epstats_cli.db import Session
from epstats_cli.errors import ConfigError

# The comment epstats puts on the rollup it builds; anything else was made by hand. After the
# prefix: the parameters it was built with, as JSON (an earlier epstats wrote `key=value`s).
COMMENT_PREFIX = "epstats rollup:"
PARAMETERS_VERSION = 2

# The recorded parameters, each with its configuration key.
PARAMETER_KEYS = {
    "strategy": "view.strategy",
    "timezone": "source.timezone",
    "naive_timezone": "source.naive_timezone",
    "error_status_min": "source.error_status_min",
    **{f"{c}_column": f"source.columns.{c}" for c in LOGICAL_COLUMNS},
}

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
    "as_of": "timestamp with time zone",  # the bookkeeping row's (endpoint and day NULL)
    "snapshot": "text",
}

# The relation behind each strategy: its pg_class.relkind and its name in DDL.
RELKIND = {"materialized": "m", "incremental": "r"}
KIND_SQL = {"materialized": "MATERIALIZED VIEW", "incremental": "TABLE"}
RELKIND_NAMES = {"m": "materialized view", "r": "table", "v": "view"}


def strategy_of(relkind: str | None) -> str | None:
    """The strategy a relation of this kind serves (None: neither a table nor a mat. view)."""
    return next((s for s, kind in RELKIND.items() if kind == relkind), None)


def parameters(config: Config, strategy: str) -> dict[str, Any]:
    """The parameters a rollup built now with this configuration records."""
    src = config.source
    params: dict[str, Any] = {
        "version": PARAMETERS_VERSION,
        "strategy": strategy,
        "timezone": src.timezone,
        "naive_timezone": src.naive_timezone,
        "error_status_min": src.error_status_min,
    }
    for c in LOGICAL_COLUMNS:
        params[f"{c}_column"] = src.columns.physical(c)
    return params


def comment(params: dict[str, Any]) -> str:
    """The ownership comment of a rollup built by epstats, with its parameters."""
    return f"{COMMENT_PREFIX} {json.dumps(params, separators=(', ', ': '))}"


def parse_comment(text: str | None) -> dict[str, Any] | None:
    """The parameters in an epstats ownership comment ({} when an earlier epstats recorded
    none, only `key=value`s); None when the comment is not ours."""
    if not text or not text.startswith(COMMENT_PREFIX):
        return None
    rest = text[len(COMMENT_PREFIX) :].strip()
    try:
        params = json.loads(rest)
    except ValueError:
        params = None
    if isinstance(params, dict) and params.get("version") == PARAMETERS_VERSION:
        return params
    return {}


def legacy_value(text: str | None, wanted: str) -> str | None:
    """A `key=value` an earlier epstats wrote in its comment (strategy, timezone)."""
    for part in (text or "").split():
        key, _, value = part.partition("=")
        if key == wanted:
            return value
    return None


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
    # what it was built with (None: not ours, or an earlier epstats that recorded none)
    parameters: dict[str, Any] | None = None
    populated: bool = False
    columns: dict[str, str] = field(default_factory=dict)  # present: name -> type
    lacks: list[str] = field(default_factory=list)
    size_bytes: int | None = None
    estimated_rows: int | None = None
    index_names: list[str] = field(default_factory=list)
    # from its bookkeeping row (when populated): the instant it is complete through, and the
    # snapshot of the refresh that wrote it
    as_of: dt.datetime | None = None
    snapshot: str | None = None
    # from its contents (facts(contents=True), when populated)
    row_count: int | None = None
    first_day: dt.date | None = None
    last_day: dt.date | None = None
    newest: dt.datetime | None = None  # the newest timestamp it aggregated
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
        if self.as_of is None or self.snapshot is None:
            return (
                f"the rollup {self.name} has no bookkeeping row (endpoint NULL) saying what it "
                "holds (epstats view refresh writes it)"
            )
        return None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": str(self.name),
            "exists": self.exists,
            "kind": RELKIND_NAMES.get(self.relkind or "", self.relkind),
            "built_by_epstats": self.ours,
            "strategy": self.strategy,
            "timezone": self.timezone,
            "parameters": self.parameters,
            "populated": self.populated,
            "lacks": self.lacks,
            "size_bytes": self.size_bytes,
            "rows": self.row_count,
            "first_day": self.first_day,
            "last_day": self.last_day,
            "as_of": self.as_of,
            "snapshot": self.snapshot,
            "newest_aggregated": self.newest,
            "refreshed_at": self.refreshed_at,
            "refresh_seconds": self.refresh_seconds,
            "settled_through": self.settled_through,
        }


def lacking(facts: RollupFacts, has_unique_key: bool) -> list[str]:
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
    return out


def differences(
    facts: RollupFacts, config: Config, strategy: str | None = None
) -> list[tuple[str, str, Any, Any]]:
    """(configuration key, parameter, as built, as configured) for every recorded parameter
    that differs (none when the rollup recorded none); `strategy` stands for view.strategy."""
    if facts.parameters is None:
        return []
    wanted = parameters(config, strategy or config.view.strategy)
    return [
        (key, name, facts.parameters.get(name), wanted[name])
        for name, key in PARAMETER_KEYS.items()
        if facts.parameters.get(name) != wanted[name]
    ]


def parameter_mismatch(facts: RollupFacts, config: Config) -> list[str]:
    """Every way the rollup's recorded parameters differ from the configuration, each naming
    the key and what to do (empty: none, or no rollup of ours). A rollup built by an earlier
    epstats, which recorded none, is one difference. `view refresh` and `maintain` refuse to
    run on any (exit 3); `view status` shows them."""
    if not facts.exists or not facts.ours:
        return []
    fix = "run `epstats view build --replace`"
    if facts.parameters is None:
        return [
            f"{facts.name} was built by an earlier epstats, which recorded no parameters "
            f"(time zones, error threshold, columns): {fix}"
        ]
    return [
        f"{key}: {facts.name} was built with {name} {_show(built)}, "
        f"the configuration says {_show(configured)}: {fix}"
        for key, name, built, configured in differences(facts, config)
    ]


def require_parameters(facts: RollupFacts, config: Config) -> None:
    """ConfigError (exit 3) listing parameter_mismatch, when there is any."""
    problems = parameter_mismatch(facts, config)
    if problems:
        raise ConfigError(problems)


def _show(value: Any) -> str:
    return "(none)" if value is None else str(value)


def facts(
    session: Session,
    name: QualifiedName | None = None,
    *,
    contents: bool = True,
    state: bool = True,
) -> RollupFacts:
    """Read the rollup from the catalog and its comment, and its as-of from its bookkeeping row
    (an index lookup); with `contents`, its extent (a scan of the rollup); with `state`, what
    epstats.rollup_state recorded."""
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
        info.parameters = params or None
        info.strategy = params.get("strategy") or legacy_value(row["comment"], "strategy")
        info.timezone = params.get("timezone") or legacy_value(row["comment"], "timezone")
    else:
        info.strategy = strategy_of(row["relkind"])
    info.lacks = lacking(info, bool(row["has_unique_key"]))
    if info.populated and not info.missing_columns:
        view = (name.schema, name.name)
        mark = session.one("view/as_of", view=view)
        if mark is not None:
            info.as_of, info.snapshot = mark["as_of"], mark["snapshot"]
        c = session.one("view/contents", view=view) if contents else None
        if c is not None:
            info.row_count = c["row_count"]
            info.first_day, info.last_day = c["first_day"], c["last_day"]
            info.newest = c["newest"]
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
