"""What the rollup is: the one place that reads its kind, parameters, contents and state.

`facts(session)` gathers everything (catalog, epstats.rollup_state: the mark that epstats
built it and the parameters it was built with, its bookkeeping row's as-of and snapshot, its
extent) with SELECTs only, so it works on a standby and with a read-only role; the
judgements (`lacking`, `parameter_mismatch`, `RollupFacts.unreadable`) are plain code over
them.

Which relation is epstats's (`_ownership`): the one whose oid its rollup_state row records
(written in the transaction that builds or refreshes it). A rollup an earlier epstats built
kept that mark in its COMMENT (`epstats rollup: {...}`): it is still recognised by it, and its
next refresh writes the mark into rollup_state (the comment stays; a `--replace` gives the new
one a description instead). A row whose oid is not the relation's (a dump restored elsewhere,
or a row from before the oid was recorded) still marks a relation of the kind it records with
every rollup column.

This module is over 400 lines because it is the one reader of whose the rollup is and what
it was built with (the catalog, rollup_state, an earlier epstats's comment) and of its rules:
every command and rights.py ask it, so that none of them reads the mark a second way.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

from epstats_cli.catalog import relation_exists
from epstats_cli.config import LOGICAL_COLUMNS, Config, QualifiedName, quote_ident
from epstats_cli.db import Session
from epstats_cli.endpoints import Normalization
from epstats_cli.errors import ConfigError, OperationFailed
from epstats_cli.latency import LATENCY_COLUMNS

# The comment an earlier epstats put on the rollup it built, its mark then. After the prefix:
# the parameters it was built with, as JSON (an even earlier one wrote `key=value`s). epstats
# now keeps both in epstats.rollup_state and leaves the comment to the rollup's users.
COMMENT_PREFIX = "epstats rollup:"
PARAMETERS_VERSION = 2
# What a first `view build` says in the comment of the rollup it creates (never starts with
# COMMENT_PREFIX).
DESCRIPTION = "Requests per endpoint and day, built and refreshed by epstats (epstats view status)"

# The recorded parameters, each with its configuration key.
PARAMETER_KEYS = {
    "strategy": "view.strategy",
    "timezone": "source.timezone",
    "naive_timezone": "source.naive_timezone",
    "error_status_min": "source.error_status_min",
    **{f"{c}_column": f"source.columns.{c}" for c in LOGICAL_COLUMNS},
    "endpoint_ids": "source.endpoint_ids",
    "endpoint_rules": "source.endpoint_rules",
    "latency_accuracy": "view.latency_accuracy",
}
# What a rollup that recorded no such parameter was built with (an earlier epstats).
PARAMETER_DEFAULTS: dict[str, Any] = Normalization().parameters()

# The status classes per endpoint and day; a rollup an earlier epstats built lacks them (reports
# read it all the same; refresh refuses it, as for another parameter, until --replace).
STATUS_COLUMNS = ("status_2xx", "status_3xx", "status_4xx", "status_5xx", "status_other")

# Every column of the rollup, whatever the strategy, with its type, in the definition's order
# (sql/view/definition.sql). The latency histograms (LATENCY_COLUMNS, epstats_cli.latency) are
# last; a rollup built before them lacks them (`missing_latency`): reports, refresh and verify
# read it all the same, `view status` says so and `view build --replace` adds them.
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
    **dict.fromkeys(STATUS_COLUMNS, "bigint"),
    "as_of": "timestamp with time zone",  # the bookkeeping row's (endpoint and day NULL)
    "snapshot": "text",
    "latency_buckets": "integer[]",
    "latency_counts": "bigint[]",
}
# Columns a rollup of an earlier epstats may lack and still be read (reports: NULLs in their
# place; `missing_status`, `missing_latency` say which).
OPTIONAL_COLUMNS = (*STATUS_COLUMNS, *LATENCY_COLUMNS)

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
        "latency_accuracy": config.view.latency_accuracy,
    }
    for c in LOGICAL_COLUMNS:
        params[f"{c}_column"] = src.columns.physical(c)
    return params | Normalization.of(config).parameters()


def comment(params: dict[str, Any]) -> str:
    """The ownership comment an earlier epstats put on a rollup it built (for tests)."""
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
    ours: bool = False  # built by epstats (see _ownership)
    strategy: str | None = None  # as recorded, else from the relation's kind
    timezone: str | None = None  # the zone its days are in, as recorded
    # what it was built with (None: not ours, or an earlier epstats that recorded none)
    parameters: dict[str, Any] | None = None
    # where the mark and parameters were found: "epstats.rollup_state", or "comment" (an
    # earlier epstats; the next refresh records them in epstats.rollup_state)
    recorded_in: str | None = None
    # why this role cannot read epstats.rollup_state (None: it can, or it does not exist): then
    # whether the rollup is epstats's is unknown, unless an earlier epstats's comment says so
    mark_unreadable: str | None = None
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
    # the retention horizon: days up to it are kept by the rollup alone (their raw rows are
    # retired), never recomputed (epstats_cli/retention.py); None: no day retired
    retired_through: dt.date | None = None
    state_table: bool = False  # epstats.rollup_state exists
    recorded: dict[str, Any] | None = None  # its row in epstats.rollup_state, as read

    @property
    def unknown(self) -> bool:
        """Whether this role cannot tell if epstats built the rollup (see mark_unreadable)."""
        return self.exists and not self.ours and self.mark_unreadable is not None

    @property
    def missing_status(self) -> list[str]:
        """The status class columns a relation read from the catalog lacks."""
        return [c for c in STATUS_COLUMNS if self.columns and c not in self.columns]

    @property
    def missing_latency(self) -> list[str]:
        """The latency histogram columns a relation read from the catalog lacks (one built
        before them: `view build --replace` adds them)."""
        return [c for c in LATENCY_COLUMNS if self.columns and c not in self.columns]

    @property
    def histograms(self) -> bool:
        """Whether the rollup keeps latency histograms (as far as its catalog entry says)."""
        return self.exists and bool(self.columns) and not self.missing_latency

    @property
    def missing_columns(self) -> list[str]:
        """Rollup columns the relation does not have at all (the optional ones aside)."""
        return [c for c in COLUMNS if c not in self.columns and c not in OPTIONAL_COLUMNS]

    def insert_columns(self) -> list[str]:
        """The rollup's columns this relation has, in the definition's order: what an
        INSERT of the definition's rows fills (a rollup without histograms gets the rest)."""
        return [c for c in COLUMNS if c not in self.missing_latency]

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
            "built_by_epstats": None if self.unknown else self.ours,
            "strategy": self.strategy,
            "timezone": self.timezone,
            "parameters": self.parameters,
            "parameters_recorded_in": self.recorded_in,
            "parameters_unreadable": self.mark_unreadable,
            "populated": self.populated,
            "lacks": self.lacks,
            "latency_histograms": self.histograms if self.exists else None,
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
            "retention_horizon": self.retired_through,
        }


# What a relation no rollup_state row marks lacks (one made by hand, such as the guide's view,
# groups days by date_trunc in the session's time zone, not necessarily source.timezone).
NOT_MARKED = (
    "a row in epstats.rollup_state saying that epstats built it (else its days are not known "
    "to be in source.timezone: the guide's date_trunc uses the session zone)"
)


def lacking(facts: RollupFacts, has_unique_key: bool) -> list[str]:
    """What the relation lacks to be a rollup epstats can refresh for this configuration."""
    out = column_problems(facts)
    if not has_unique_key:
        out.append("a unique index on (endpoint, day)")
    if not facts.ours and not facts.unknown:
        out.append(
            NOT_MARKED
            if facts.state_table
            else "epstats.rollup_state, which records whether epstats built it (this database "
            "has none: a dump restored without schema epstats?)"
        )
    if facts.relkind not in RELKIND.values():
        out.append("being a materialized view or table")
    return out


def column_problems(facts: RollupFacts) -> list[str]:
    """Rollup columns the relation lacks or has with another type."""
    out = []
    for name, type_ in COLUMNS.items():
        if name not in facts.columns:
            if name not in OPTIONAL_COLUMNS:  # those say missing_status, missing_latency
                out.append(f"column {name}")
        elif facts.columns[name] != type_:
            out.append(f"column {name} is {facts.columns[name]}, not {type_}")
    return out


def _ownership(info: RollupFacts, text: str | None, recorded: dict[str, Any] | None) -> None:
    """Whether epstats built the relation, and with what: from its rollup_state row
    (`recorded`) and, for a rollup of an earlier epstats, its comment (`text`)."""
    info.strategy = kind = strategy_of(info.relkind)
    if kind is None:
        return  # neither a table nor a materialized view: never a rollup of ours
    old = parse_comment(text)  # an earlier epstats's mark ({}: one with no parameters)
    # its row: the relation's oid, or (a restored dump, a row written before the oid was) a
    # relation of the recorded kind with every rollup column
    row = recorded
    if (
        row is not None
        and row["relation_oid"] != info.oid
        and (row["strategy"] != kind or column_problems(info))
    ):
        row = None
    if row is None and old is None:
        return
    info.ours = True
    params = row["parameters"] if row is not None else None
    if isinstance(params, dict) and params.get("version") == PARAMETERS_VERSION:
        info.recorded_in = "epstats.rollup_state"
    else:
        params = old or None  # what the comment of an earlier epstats records, if anything
        info.recorded_in = "comment" if params is not None else None
    info.parameters = params
    legacy = text if old is not None else None  # an even earlier epstats's `key=value`s
    info.strategy = (
        (params or {}).get("strategy")
        or (row or {}).get("strategy")
        or legacy_value(legacy, "strategy")
        or kind
    )
    info.timezone = (
        (params or {}).get("timezone")
        or (row or {}).get("timezone")
        or legacy_value(legacy, "timezone")
    )


def differences(
    facts: RollupFacts, config: Config, strategy: str | None = None
) -> list[tuple[str, str, Any, Any]]:
    """(configuration key, parameter, as built, as configured) for every recorded parameter
    that differs (none when the rollup recorded none); `strategy` stands for view.strategy.
    A rollup without latency histograms (built before them, which recorded no
    latency_accuracy) has no accuracy to differ."""
    if facts.parameters is None:
        return []
    wanted = parameters(config, strategy or config.view.strategy)
    built = PARAMETER_DEFAULTS | facts.parameters
    skip = (
        {"latency_accuracy"}
        if facts.missing_latency or "latency_accuracy" not in facts.parameters
        else set()
    )
    return [
        (key, name, built.get(name), wanted[name])
        for name, key in PARAMETER_KEYS.items()
        if name not in skip and built.get(name) != wanted[name]
    ]


def parameter_mismatch(facts: RollupFacts, config: Config) -> list[str]:
    """Every way the rollup's recorded parameters differ from the configuration, each naming
    the key and what to do (empty: none, or no rollup of ours). A rollup built by an earlier
    epstats, which recorded none, is one difference. `view refresh` and `maintain` refuse to
    run on any (exit 3); `view status` shows them."""
    if not facts.exists or not facts.ours:
        return []
    fix = "run `epstats view build --replace`"
    if facts.retired_through is not None:
        fix = (
            f"days up to {facts.retired_through} are retired (kept by the rollup alone, never "
            "recomputed), so old and new days would disagree: "
            "`epstats view build --replace --keep-retired` accepts that"
        )
    if facts.parameters is None:
        return [
            f"{facts.name} was built by an earlier epstats, which recorded no parameters "
            f"(time zones, error threshold, columns): {fix}"
        ]
    status = (
        [f"{facts.name} has no status classes ({', '.join(facts.missing_status)}): {fix} adds them"]
        if facts.missing_status
        else []
    )
    return status + [
        f"{key}: {facts.name} was built with {name} {_show(built)}, "
        f"the configuration says {_show(configured)}: {fix}"
        for key, name, built, configured in differences(facts, config)
    ]


def require_parameters(facts: RollupFacts, config: Config) -> None:
    """ConfigError (exit 3) listing parameter_mismatch, when there is any; OperationFailed
    when this role cannot read what the rollup was built with."""
    require_mark(facts)
    problems = parameter_mismatch(facts, config)
    if problems:
        raise ConfigError(problems)


def require_mark(facts: RollupFacts) -> None:
    """OperationFailed naming the grant when this role cannot read epstats.rollup_state, or
    what to run when there is none (a command that changes or verifies the rollup must know
    whether epstats built it, and with what)."""
    if facts.exists and facts.mark_unreadable is not None:
        raise OperationFailed(facts.mark_unreadable)
    if facts.exists and not facts.ours and not facts.state_table:
        raise OperationFailed(
            f"cannot tell whether epstats built {facts.name}: this database has no "
            "epstats.rollup_state, which records that (a dump restored without schema "
            "epstats?): run `epstats init`, then `epstats view build --replace` (or restore "
            "epstats.rollup_state from the same dump: pg_restore --schema epstats)"
        )


def _show(value: Any) -> str:
    return "(none)" if value is None else str(value)


def identify(session: Session, name: QualifiedName | None = None) -> RollupFacts:
    """What the relation at the rollup's name is, whether epstats built it and with what (its
    epstats.rollup_state row, or an earlier epstats's comment), from the catalog and
    rollup_state alone: never reads the rollup, so it needs no right on it. Every command asks
    this (rights.py too, for the rights a refresh needs), so they agree on whose it is."""
    name = name or session.config.view_name
    access = session.one("view/state_access")
    assert access is not None
    info = RollupFacts(name, state_table=bool(access["present"]))
    if info.state_table and not access["readable"]:
        info.mark_unreadable = _unreadable(session, bool(access["usage"]))
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
    readable = info.state_table and info.mark_unreadable is None
    info.recorded = session.one("view/state_get", {"view": str(name)}) if readable else None
    _ownership(info, row["comment"], info.recorded)
    if info.ours and info.recorded is not None:
        info.retired_through = info.recorded.get("retired_through")
    info.lacks = lacking(info, bool(row["has_unique_key"]))
    return info


def facts(
    session: Session,
    name: QualifiedName | None = None,
    *,
    contents: bool = True,
    state: bool = True,
) -> RollupFacts:
    """Read the rollup from the catalog and epstats.rollup_state (`identify`: whether it is
    ours, what it was built with), and its as-of from its bookkeeping row (an index lookup);
    with `contents`, its extent (a scan of the rollup); with `state`, when epstats last
    refreshed it."""
    info = identify(session, name)
    if not info.exists:
        return info
    if info.populated and not info.missing_columns:
        view = (info.name.schema, info.name.name)
        mark = session.one("view/as_of", view=view)
        if mark is not None:
            info.as_of, info.snapshot = mark["as_of"], mark["snapshot"]
        c = session.one("view/contents", view=view) if contents else None
        if c is not None:
            info.row_count = c["row_count"]
            info.first_day, info.last_day = c["first_day"], c["last_day"]
            info.newest = c["newest"]
    recorded = info.recorded
    if state and recorded is not None and info.ours:
        info.refreshed_at = recorded["refreshed_at"]
        info.refresh_seconds = recorded["refresh_seconds"]
        info.settled_through = recorded["settled_through"]
    return info


def _unreadable(session: Session, usage: bool) -> str:
    role = quote_ident(session.server.user)
    grants = ("" if usage else f"GRANT USAGE ON SCHEMA epstats TO {role}; ") + (
        f"GRANT SELECT ON epstats.rollup_state TO {role}"
    )
    return (
        f"role {role} may not read epstats.rollup_state, which records whether epstats built "
        f"the rollup and with what parameters: {grants}"
    )


def state_table_exists(session: Session) -> bool:
    """Whether `epstats init` has created epstats.rollup_state."""
    return relation_exists(session, "epstats", "rollup_state")
