"""Configuration: YAML file + environment + options -> frozen dataclasses.

The dataclasses are the one description of the configuration. A leaf key is a field whose
metadata is `leaf(parser)` (the parser validates a raw value), a nested mapping is a field whose
default is another such dataclass, a list of mappings is a field with `records(...)` metadata.
Validation (`build`) and `config show` (`as_dict`) both walk these fields, so a key cannot be
known to one and forgotten by the other. Validation collects every problem with its dotted
path, the bad value and what was expected, and raises them together as one ConfigError.

The module is over 400 lines because every section of the configuration is declared here, in
one place, next to the walker that validates and shows it; splitting the sections across files
would bring back the risk of a key known to one description and not the other.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, is_dataclass, replace
from datetime import timedelta
from pathlib import Path
from typing import Any, ClassVar

from epstats_cli.durations import TOO_LONG, format_duration, parse_duration
from epstats_cli.errors import ConfigError

STRATEGIES = ("materialized", "incremental")
ENDPOINT_IDS = ("off", "auto")
INDEX_METHODS = ("btree", "brin", "auto")
SEVERITIES = ("ok", "warning", "critical")


@dataclass(frozen=True)
class QualifiedName:
    """A schema-qualified relation name, exactly as it is spelled in the catalog."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


# --- identifiers -------------------------------------------------------------------------------

_IDENT_TOKEN = re.compile(r'"((?:[^"]|"")*)"|([^."]+)')


def quote_ident(name: str) -> str:
    """Quote an identifier only when PostgreSQL needs it (for display; SQL uses psycopg.sql)."""
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


def parse_qualified(text: str, default_schema: str = "public") -> QualifiedName:
    """Parse `schema.table` as SQL does: quotes keep case and dots, bare words fold to lower."""
    parts: list[str] = []
    pos = 0
    text = text.strip()
    while True:
        match = _IDENT_TOKEN.match(text, pos)
        if not match:
            raise ValueError("is not a table name (expected table or schema.table)")
        quoted, bare = match.groups()
        part = quoted.replace('""', '"') if quoted is not None else bare.strip().lower()
        if not part or (bare is not None and part != bare.strip().lower()):
            raise ValueError("is not a table name (expected table or schema.table)")
        if len(part.encode()) > 63:
            raise ValueError("is longer than PostgreSQL's 63-byte identifier limit")
        parts.append(part)
        pos = match.end()
        if pos == len(text):
            break
        if text[pos] != ".":
            raise ValueError("is not a table name (expected table or schema.table)")
        pos += 1
    if len(parts) == 1:
        return QualifiedName(default_schema, parts[0])
    if len(parts) == 2:
        return QualifiedName(parts[0], parts[1])
    raise ValueError("has too many dots (expected table or schema.table)")


# --- leaf parsers: a raw YAML value -> the field's value, or ValueError("is not ...") ----------

Leaf = Callable[[Any], Any]


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("is not a non-empty string")
    return value


def _text(value: Any) -> str:
    """Any string, the empty one included (a replacement may delete what it matched)."""
    if not isinstance(value, str):
        raise ValueError("is not a string")
    return value


def _regex(value: Any) -> str:
    # PostgreSQL's regular expressions are not Python's: the server checks the syntax when
    # the rule is first used (epstats_cli.endpoints.check_rules), naming the rule.
    pattern = _str(value)
    if "\x00" in pattern:
        raise ValueError("contains a NUL character")
    return pattern


def _endpoint_ids(value: Any) -> str:
    # YAML 1.1 reads a bare `off` as false
    return str(_one_of(ENDPOINT_IDS)("off" if value is False else value))


def _opt_str(value: Any) -> str | None:
    return None if value is None else _str(value)


def _identifier(value: Any) -> str:
    name = _str(value)
    if len(name.encode()) > 63:
        raise ValueError("is longer than PostgreSQL's 63-byte identifier limit")
    return name


def _env_name(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", value):
        raise ValueError("is not an environment variable name")
    return value


def _duration(value: Any) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        if str(exc) == TOO_LONG:
            raise ValueError("is out of range (far too long)") from None
        raise ValueError(
            "is not a duration (expected a number and a unit: 500ms, 30s, 5m, 2h, 1d, 1w)"
        ) from None


def _positive_duration(value: Any) -> timedelta:
    delta = _duration(value)
    if delta <= timedelta(0):
        raise ValueError("must be longer than 0")
    return delta


# PostgreSQL's timeouts are int milliseconds: anything longer is refused by the server.
SERVER_TIMEOUT_MAX = timedelta(milliseconds=2**31 - 1)


def _server_timeout(value: Any, positive: bool) -> timedelta:
    delta = _positive_duration(value) if positive else _duration(value)
    if delta > SERVER_TIMEOUT_MAX:
        raise ValueError("is longer than PostgreSQL accepts for a timeout (at most 24d)")
    return delta


def _lock_timeout(value: Any) -> timedelta:
    return _server_timeout(value, positive=True)


def _statement_timeout(value: Any) -> timedelta:
    return _server_timeout(value, positive=False)


# tune.vacuum_every / analyze_every: autovacuum wakes about once a minute (autovacuum_naptime),
# so anything shorter cannot be honoured; a month of inserts is no longer "often".
TUNE_EVERY_RANGE = (timedelta(minutes=1), timedelta(days=30))


def _tune_every(value: Any) -> timedelta:
    low, high = TUNE_EVERY_RANGE
    out_of_range = f"is out of range (expected {format_duration(low)}..{format_duration(high)})"
    try:
        delta = _duration(value)
    except ValueError as exc:
        raise ValueError(out_of_range if "out of range" in str(exc) else str(exc)) from None
    if not low <= delta <= high:
        raise ValueError(out_of_range)
    return delta


def _opt_positive_duration(value: Any) -> timedelta | None:
    return None if value is None else _positive_duration(value)


def _int_range(low: int, high: int) -> Leaf:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"is not an integer (expected {low}..{high})")
        if not low <= value <= high:
            raise ValueError(f"is out of range (expected {low}..{high})")
        return value

    return check


def _ratio(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("is not a number (expected 0..1)")
    if not 0 <= float(value) <= 1:
        raise ValueError("is out of range (expected 0..1)")
    return float(value)


# view.latency_accuracy: the relative accuracy of the latency histograms (epstats_cli.latency)
LATENCY_ACCURACY_RANGE = (0.001, 0.1)


def _latency_accuracy(value: Any) -> float:
    low, high = LATENCY_ACCURACY_RANGE
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"is not a number (expected {low}..{high}, e.g. 0.01 for 1 %)")
    if not low <= float(value) <= high:
        raise ValueError(f"is out of range (expected {low}..{high}, e.g. 0.01 for 1 %)")
    return float(value)


def _nonneg(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("is not a number >= 0")
    return float(value)


def _one_of(choices: tuple[str, ...]) -> Leaf:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in choices:
            raise ValueError("is not one of " + ", ".join(choices))
        return value

    return check


def _table(value: Any) -> QualifiedName:
    return parse_qualified(_str(value))


def _relation_name(value: Any) -> str:
    parse_qualified(_str(value))
    return str(value)


def _timezone(value: Any) -> str:
    name = _str(value)
    import zoneinfo

    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        if zoneinfo.available_timezones():  # no tz database here: leave it to the server
            raise ValueError("is not a time zone name (e.g. UTC, Europe/Berlin)") from None
    return name


def _index_columns(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ValueError("is not a non-empty list of columns (" + ", ".join(LOGICAL_COLUMNS) + ")")
    for column in value:
        if column not in LOGICAL_COLUMNS:
            raise ValueError(
                f"names {_show(column)}, which is not one of " + ", ".join(LOGICAL_COLUMNS)
            )
    if len(set(value)) != len(value):
        raise ValueError("lists a column twice")
    return tuple(value)


# --- how a field is described ------------------------------------------------------------------


def leaf(parse: Leaf, *, secret: bool = False, echo: bool = True) -> dict[str, Any]:
    """A leaf key's metadata: the parser of its raw value; `secret` values are redacted in
    `config show`; neither a secret nor an `echo=False` value is ever quoted in an error."""
    return {"parse": parse, "secret": secret, "echo": echo and not secret}


def records(item: type[Any], *, unique: str, shape: str, empty: bool = False) -> dict[str, Any]:
    """A list key's metadata: a list of mappings, each described by dataclass `item`; non-empty
    unless `empty`."""
    return {"records": item, "unique": unique, "shape": shape, "empty": empty}


NOT_A_KEY: dict[str, Any] = {"key": False}  # a field that is not in the file (where it came from)


# --- the configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str | None = field(default=None, metadata=leaf(_opt_str, secret=True))
    # where `report` and `view verify` read (a hot standby); None: the primary DSN. Unreachable
    # within connect_timeout: they read the primary and say so.
    replica_dsn: str | None = field(default=None, metadata=leaf(_opt_str, secret=True))
    # where changing commands connect (past a transaction pooler); None: the primary DSN
    maintenance_dsn: str | None = field(default=None, metadata=leaf(_opt_str, secret=True))
    # A name, never shown (`config show` says only that it is set) nor quoted in an error:
    # users have been seen to put the password itself here.
    password_env: str | None = field(default=None, metadata=leaf(_env_name, echo=False))
    connect_timeout: timedelta = field(
        default=timedelta(seconds=10), metadata=leaf(_positive_duration)
    )
    lock_timeout: timedelta = field(default=timedelta(seconds=5), metadata=leaf(_lock_timeout))
    statement_timeout: timedelta = field(default=timedelta(0), metadata=leaf(_statement_timeout))


@dataclass(frozen=True)
class Columns:
    endpoint: str = field(default="endpoint", metadata=leaf(_identifier))
    timestamp: str = field(default="timestamp", metadata=leaf(_identifier))
    response_time: str = field(default="response_time", metadata=leaf(_identifier))
    status: str = field(default="status", metadata=leaf(_identifier))

    def physical(self, logical: str) -> str:
        """The real column name behind a logical one (endpoint, timestamp, ...)."""
        return str(getattr(self, logical))


LOGICAL_COLUMNS = tuple(f.name for f in fields(Columns))


@dataclass(frozen=True)
class EndpointRule:
    """One `source.endpoint_rules` entry: a PostgreSQL regular expression and its replacement
    (`\\1`..`\\9` and `\\&` as in regexp_replace), every match replaced."""

    REQUIRED: ClassVar[str] = "every rule needs a pattern and a replace"

    pattern: str = field(metadata=leaf(_regex))
    replace: str = field(metadata=leaf(_text))


@dataclass(frozen=True)
class SourceConfig:
    table: QualifiedName = field(default=QualifiedName("public", "requests"), metadata=leaf(_table))
    columns: Columns = field(default_factory=Columns)
    error_status_min: int = field(default=500, metadata=leaf(_int_range(100, 599)))
    timezone: str = field(default="UTC", metadata=leaf(_timezone))
    # a `timestamp without time zone` column holds wall-clock time in this zone
    naive_timezone: str = field(default="UTC", metadata=leaf(_timezone))
    # auto: path segments that are identifiers become {id} (epstats_cli/endpoints.py)
    endpoint_ids: str = field(default="off", metadata=leaf(_endpoint_ids))
    # applied in order, to the path without its query string, before endpoint_ids
    endpoint_rules: tuple[EndpointRule, ...] = field(
        default=(),
        metadata=records(EndpointRule, unique="pattern", shape="{pattern, replace}", empty=True),
    )
    # raw rows of whole days older than this are retired by the `retention` task (None: kept
    # for ever); the rollup keeps every day (epstats_cli/retention.py)
    retention: timedelta | None = field(default=None, metadata=leaf(_opt_positive_duration))


@dataclass(frozen=True)
class IndexSpec:
    REQUIRED: ClassVar[str] = "every index needs a name and columns"

    name: str = field(metadata=leaf(_identifier))
    columns: tuple[str, ...] = field(metadata=leaf(_index_columns))
    # auto: BRIN or btree, from a measurement of the heap's order in time (index_method.py)
    method: str = field(default="btree", metadata=leaf(_one_of(INDEX_METHODS)))

    def problems(self) -> dict[str, str]:
        """What is wrong with the index as a whole, by key."""
        if self.method == "auto" and self.columns != ("timestamp",):
            return {"method": "auto is for an index of the timestamp column alone"}
        return {}


DEFAULT_INDEXES = (
    IndexSpec("idx_requests_timestamp", ("timestamp",), "auto"),
    IndexSpec("idx_requests_endpoint_timestamp", ("endpoint", "timestamp")),
)


@dataclass(frozen=True)
class IndexesConfig:
    # `indexes:` written as a list is its `recommended` list (the form SPEC.md shows)
    SHORTHAND: ClassVar[str] = "recommended"

    recommended: tuple[IndexSpec, ...] = field(
        default=DEFAULT_INDEXES, metadata=records(IndexSpec, unique="name", shape="{name, columns}")
    )
    # lock_timeout of CREATE/DROP INDEX and REINDEX CONCURRENTLY: their waits (for older
    # transactions) never block INSERTs, so they may wait longer than database.lock_timeout
    max_wait: timedelta = field(default=timedelta(minutes=10), metadata=leaf(_positive_duration))


@dataclass(frozen=True)
class ViewConfig:
    name: str = field(default="endpoint_daily_stats", metadata=leaf(_relation_name))
    strategy: str = field(default="materialized", metadata=leaf(_one_of(STRATEGIES)))
    lookback: timedelta = field(default=timedelta(days=2), metadata=leaf(_positive_duration))
    # auto counts rows committed up to this long after their timestamp, without a refresh
    commit_delay: timedelta = field(default=timedelta(minutes=10), metadata=leaf(_duration))
    # how far back the verify task compares the rollup with the raw rows (None: every day that
    # still has raw rows)
    verify_horizon: timedelta | None = field(default=None, metadata=leaf(_opt_positive_duration))
    # every percentile read from the rollup's latency histograms is within this fraction of
    # the exact value (fixed when the rollup is built, and recorded with it)
    latency_accuracy: float = field(default=0.01, metadata=leaf(_latency_accuracy))

    def problems(self) -> dict[str, str]:
        """What is wrong with the section as a whole, by key."""
        if self.strategy == "incremental" and self.commit_delay >= self.lookback:
            # a row committed late must still land in a day the next refresh recomputes
            return {
                "commit_delay": f"{format_duration(self.commit_delay)} is not shorter than "
                f"view.lookback ({format_duration(self.lookback)})"
            }
        return {}


@dataclass(frozen=True)
class Schedule:
    refresh: timedelta = field(default=timedelta(hours=1), metadata=leaf(_positive_duration))
    analyze: timedelta = field(default=timedelta(days=1), metadata=leaf(_positive_duration))
    vacuum: timedelta = field(default=timedelta(days=7), metadata=leaf(_positive_duration))
    reindex: timedelta = field(default=timedelta(days=30), metadata=leaf(_positive_duration))
    cleanup: timedelta = field(default=timedelta(days=1), metadata=leaf(_positive_duration))
    verify: timedelta = field(default=timedelta(days=1), metadata=leaf(_positive_duration))
    partitions: timedelta = field(default=timedelta(days=1), metadata=leaf(_positive_duration))
    retention: timedelta = field(default=timedelta(days=1), metadata=leaf(_positive_duration))


TASKS = tuple(f.name for f in fields(Schedule))


@dataclass(frozen=True)
class MaintenanceConfig:
    schedule: Schedule = field(default_factory=Schedule)
    # also the longest a refresh waits for another one (a lock_timeout)
    max_runtime: timedelta = field(default=timedelta(minutes=30), metadata=leaf(_lock_timeout))
    history_retention: timedelta = field(
        default=timedelta(days=90), metadata=leaf(_positive_duration)
    )
    dead_tuple_ratio: float = field(default=0.2, metadata=leaf(_ratio))
    freeze_age_ratio: float = field(default=0.5, metadata=leaf(_ratio))
    reindex_bloat_ratio: float = field(default=0.3, metadata=leaf(_ratio))
    # ANALYZE early when n_mod_since_analyze reaches this share of a table's rows (0: off)
    analyze_modified_ratio: float = field(default=0.1, metadata=leaf(_ratio))
    lock_retries: int = field(default=3, metadata=leaf(_int_range(0, 100)))


@dataclass(frozen=True)
class TuneConfig:
    """`epstats tune`: how often autovacuum should come, in time of inserts at the measured
    rate (the thresholds are that many rows)."""

    vacuum_every: timedelta = field(default=timedelta(hours=1), metadata=leaf(_tune_every))
    analyze_every: timedelta = field(default=timedelta(hours=6), metadata=leaf(_tune_every))


PARTITION_INTERVALS = ("auto", "day", "week", "month")


@dataclass(frozen=True)
class PartitionConfig:
    """`epstats partition` and the `partitions` task: the interval of new partitions (auto:
    from the table's size and traffic, which `partition plan` explains), how many intervals
    ahead they are made, and how long `cleanup` keeps the table a conversion replaced."""

    interval: str = field(default="auto", metadata=leaf(_one_of(PARTITION_INTERVALS)))
    premake: int = field(default=7, metadata=leaf(_int_range(1, 1000)))
    keep_old: timedelta = field(default=timedelta(days=7), metadata=leaf(_duration))
    # rows per batch of a conversion's copy (each batch its own short transaction)
    batch_rows: int = field(default=100_000, metadata=leaf(_int_range(1000, 100_000_000)))


@dataclass(frozen=True)
class ReportsConfig:
    days: int = field(default=30, metadata=leaf(_int_range(1, 3660)))
    limit: int = field(default=10, metadata=leaf(_int_range(1, 100000)))


# Every threshold pair under `check:` follows one rule: each level is >= 0 and 0 turns that
# level off (both 0: the check is off, `check` says so); a share (ShareLevels) is at most 1;
# when both levels are on, critical may not come before warning.


def _ordered(warning: Any, critical: Any, shown: Any) -> dict[str, str]:
    """Two levels that are both on, whose critical level comes before its warning level, are
    an error (a level of 0 is off, and compares with nothing)."""
    if warning and critical and critical < warning:
        return {"critical": f"{shown(critical)} is below warning {shown(warning)}"}
    return {}


@dataclass(frozen=True)
class Levels:
    """A WARNING and a CRITICAL threshold (numbers, such as multiples); 0 turns a level off."""

    REQUIRED: ClassVar[str] = "a threshold needs both warning and critical"

    warning: float = field(metadata=leaf(_nonneg))
    critical: float = field(metadata=leaf(_nonneg))

    def problems(self) -> dict[str, str]:
        """What is wrong with the pair as a whole, by key: only levels that are on compare."""
        return _ordered(self.warning, self.critical, str)

    @property
    def off(self) -> bool:
        """Both levels are 0: the check is off."""
        return not self.warning and not self.critical


@dataclass(frozen=True)
class ShareLevels(Levels):
    """Levels that are shares of a whole (a ratio): each in 0..1, 0 turns a level off."""

    warning: float = field(metadata=leaf(_ratio))
    critical: float = field(metadata=leaf(_ratio))


@dataclass(frozen=True)
class BelowLevels(Levels):
    """Levels a value is judged *below* (a runway: fewer is worse): WARNING below warning,
    CRITICAL below critical, which may not be above warning; 0 turns a level off."""

    def problems(self) -> dict[str, str]:
        if self.warning and self.critical and self.critical > self.warning:
            return {"critical": f"{self.critical} is above warning {self.warning}"}
        return {}


@dataclass(frozen=True)
class DurationLevels:
    """A WARNING and a CRITICAL threshold that are durations; 0 turns a level off."""

    REQUIRED: ClassVar[str] = Levels.REQUIRED

    warning: timedelta = field(metadata=leaf(_duration))
    critical: timedelta = field(metadata=leaf(_duration))

    def problems(self) -> dict[str, str]:
        """What is wrong with the pair as a whole, by key: only levels that are on compare."""
        return _ordered(self.warning, self.critical, format_duration)

    @property
    def off(self) -> bool:
        """Both levels are 0: the check is off."""
        return not self.warning and not self.critical


@dataclass(frozen=True)
class LatencyRule:
    """One `check.latency_p95` entry: endpoints LIKE a pattern, and the p95 (milliseconds) over
    check.latency_window from which each is WARNING and CRITICAL (the first rule an endpoint
    matches judges it; 0 turns a level off)."""

    REQUIRED: ClassVar[str] = "every rule needs an endpoint pattern, a warning and a critical"

    endpoint: str = field(metadata=leaf(_str))
    warning: float = field(metadata=leaf(_nonneg))
    critical: float = field(metadata=leaf(_nonneg))

    def problems(self) -> dict[str, str]:
        """What is wrong with the rule as a whole, by key: only levels that are on compare."""
        return _ordered(self.warning, self.critical, lambda ms: f"{ms:g} ms")


@dataclass(frozen=True)
class CheckConfig:
    overdue: Levels = Levels(1.5, 3.0)  # x the task's schedule (analyze, vacuum, refresh)
    dead_tuple_ratio: ShareLevels = ShareLevels(0.2, 0.5)
    xid_age_ratio: Levels = Levels(0.8, 1.2)  # x autovacuum_freeze_max_age
    table_bloat: ShareLevels = ShareLevels(0.5, 0.8)
    index_bloat: ShareLevels = ShareLevels(0.5, 0.8)
    # smaller relations are never reported as bloated
    bloat_min_size: int = field(default=8 * 1024 * 1024, metadata=leaf(_int_range(0, 2**62)))
    missing_index: str = field(default="warning", metadata=leaf(_one_of(SEVERITIES)))
    redundant_index: str = field(default="warning", metadata=leaf(_one_of(SEVERITIES)))
    invalid_index: str = field(default="critical", metadata=leaf(_one_of(SEVERITIES)))
    # a single failure of a task that is not a busy lock (a busy lock is at most WARNING)
    maintain_failed: str = field(default="critical", metadata=leaf(_one_of(SEVERITIES)))
    # changing commands would connect through a transaction/statement pooler (and refuse)
    pooler: str = field(default="warning", metadata=leaf(_one_of(SEVERITIES)))
    # CRITICAL when a task failed this many times in a row, whatever the reason
    maintain_failed_runs: int = field(default=3, metadata=leaf(_int_range(1, 1000)))
    # how far ahead of the server's clock the newest row may be dated
    future_rows: DurationLevels = DurationLevels(timedelta(minutes=5), timedelta(days=1))
    # how long a verify run that found rows later than view.lookback keeps late_rows WARNING
    late_rows: timedelta = field(default=timedelta(days=7), metadata=leaf(_positive_duration))
    # the oldest open transaction, idle-in-transaction session, prepared transaction or
    # replication slot holding back xmin (epstats' own sessions left out)
    long_transactions: DurationLevels = DurationLevels(timedelta(minutes=15), timedelta(hours=1))
    # age of the newest row dated up to now (an API that stopped logging)
    ingest_stalled: DurationLevels = DurationLevels(timedelta(minutes=15), timedelta(hours=1))
    # connections in use / max_connections less the reserved ones
    connections: ShareLevels = ShareLevels(0.8, 0.95)
    # replay lag of each standby (on a primary) or of this standby
    replication_lag: DurationLevels = DurationLevels(timedelta(minutes=1), timedelta(minutes=5))
    # WARNING this share below a resource tier boundary of the guide (10 GB, 50 GB); 0: never
    database_size: float = field(default=0.1, metadata=leaf(_ratio))
    # a sequence feeding the source table: share used of min(its maximum, its column type's)
    sequence_exhaustion: ShareLevels = ShareLevels(0.75, 0.9)
    # distinct endpoints per day (normalized ones when source.endpoint_ids/endpoint_rules are
    # on): each is a row of the rollup every day; past this the rollup saves little
    endpoint_cardinality: Levels = Levels(10_000, 0)
    # each endpoint's p95 over the last latency_window (report --source auto), judged by the
    # first rule whose pattern (SQL LIKE) it matches; no rule: the check is off
    latency_p95: tuple[LatencyRule, ...] = field(
        default=(),
        metadata=records(
            LatencyRule, unique="endpoint", shape="{endpoint, warning, critical}", empty=True
        ),
    )
    latency_window: timedelta = field(default=timedelta(hours=1), metadata=leaf(_positive_duration))
    # partitions made ahead of the current time, in intervals: WARNING below 3, CRITICAL below 1
    partition_runway: BelowLevels = BelowLevels(3, 1)


def retention_problems(retention: timedelta | None, view: ViewConfig) -> dict[str, str]:
    """source.retention needs the incremental rollup (a materialized refresh recomputes every
    day from the raw rows, so retired days would vanish from it), and must leave the days a
    refresh still recomputes (view.lookback) and a day more."""
    if retention is None:
        return {}
    if view.strategy != "incremental":
        return {
            "source.retention": f"{format_duration(retention)} needs view.strategy incremental "
            f"(a {view.strategy} rollup is recomputed from the raw rows on every refresh, so the "
            "retired days would vanish from it)"
        }
    least = max(view.lookback, view.commit_delay) + timedelta(days=1)
    if retention < least:
        return {
            "source.retention": f"{format_duration(retention)} is shorter than view.lookback "
            f"and a day ({format_duration(least)}): a refresh still recomputes those days"
        }
    return {}


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    indexes: IndexesConfig = field(default_factory=IndexesConfig)
    view: ViewConfig = field(default_factory=ViewConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    tune: TuneConfig = field(default_factory=TuneConfig)
    partition: PartitionConfig = field(default_factory=PartitionConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    path: str | None = field(default=None, metadata=NOT_A_KEY)

    def problems(self) -> dict[str, str]:
        """What is wrong across sections, by dotted key."""
        return retention_problems(self.source.retention, self.view)

    @property
    def view_name(self) -> QualifiedName:
        """The rollup's relation: `view.name`, in the source table's schema unless qualified."""
        return parse_qualified(self.view.name, self.source.table.schema)


# --- walking the description: validation and `config show` -------------------------------------


def keys(cls: type[Any]) -> list[Field[Any]]:
    """The fields of a configuration dataclass that are keys in the file, in file order."""
    return [f for f in fields(cls) if f.metadata.get("key", True)]


def _section_class(f: Field[Any]) -> type[Any]:
    """The dataclass describing a nested mapping (a field that is neither leaf nor list)."""
    if f.default is not MISSING:
        cls: Any = type(f.default)
    elif f.default_factory is not MISSING:
        cls = f.default_factory
    else:
        cls = None
    if not (isinstance(cls, type) and is_dataclass(cls)):
        raise TypeError(f"configuration field {f.name} is not described (give it leaf() metadata)")
    return cls


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None


def _is_required(f: Field[Any]) -> bool:
    return f.default is MISSING and f.default_factory is MISSING


def _show(value: Any) -> str:
    """A value as the YAML file spells it (null, true), a string quoted."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    return repr(value) if isinstance(value, str) else str(value)


def _unknown(path: str, key: Any, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = (
        f" (did you mean '{close[0]}'?)" if close else " (expected one of " + ", ".join(known) + ")"
    )
    return f"{path}{key}: unknown key{hint}"


class _Invalid:
    """A value that failed validation (its error is already recorded)."""


_INVALID = _Invalid()


def _parse_section(cls: type[Any], data: Any, path: str, errors: list[str], base: Any) -> Any:
    """Validate one mapping against dataclass `cls`: an instance with `base`'s values for the
    keys that are absent, or _INVALID."""
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        errors.append(f"{path.rstrip('.') or '(top level)'}: {_show(data)} is not a mapping")
        return _INVALID
    known = {f.name: f for f in keys(cls)}
    values: dict[str, Any] = {}
    complete = True
    for key, value in data.items():
        f = known.get(key) if isinstance(key, str) else None
        if f is None:
            errors.append(_unknown(path, key, list(known)))
            continue
        parsed = _parse_field(f, value, f"{path}{key}", errors)
        if parsed is _INVALID:
            complete = False
        else:
            values[key] = parsed
    for f in known.values():
        if _is_required(f) and f.name not in data:
            errors.append(f"{path}{f.name}: missing ({getattr(cls, 'REQUIRED', 'required')})")
            complete = False
    if not complete:
        return _INVALID
    instance = cls(**values) if base is None else replace(base, **values)
    problems = instance.problems() if hasattr(instance, "problems") else {}
    for key, problem in problems.items():
        errors.append(f"{path}{key}: {problem}")
    return _INVALID if problems else instance


def _parse_field(f: Field[Any], value: Any, path: str, errors: list[str]) -> Any:
    if "parse" in f.metadata:
        try:
            return f.metadata["parse"](value)
        except ValueError as exc:
            shown = _show(value) if f.metadata.get("echo", True) else "the value"
            errors.append(f"{path}: {shown} {exc}")
            return _INVALID
    if "records" in f.metadata:
        return _parse_records(f, value, path, errors)
    cls = _section_class(f)
    shorthand = getattr(cls, "SHORTHAND", None)
    if shorthand is not None and isinstance(value, list):
        listed = next(k for k in keys(cls) if k.name == shorthand)
        parsed = _parse_records(listed, value, path, errors)
        return parsed if parsed is _INVALID else replace(_default(f), **{shorthand: parsed})
    # a pair of thresholds is given whole; any other section keeps its defaults for absent keys
    base = None if any(_is_required(k) for k in keys(cls)) else _default(f)
    return _parse_section(cls, value, path + ".", errors, base)


def _parse_records(f: Field[Any], value: Any, path: str, errors: list[str]) -> Any:
    if f.metadata["empty"] and value is None:
        return ()
    if not isinstance(value, list) or not (value or f.metadata["empty"]):
        what = "list" if f.metadata["empty"] else "non-empty list"
        errors.append(f"{path}: {_show(value)} is not a {what} of {f.metadata['shape']}")
        return _INVALID
    unique = f.metadata["unique"]
    items: list[Any] = []
    seen: set[Any] = set()
    for i, item in enumerate(value):
        here = f"{path}[{i}]"
        parsed = _parse_section(f.metadata["records"], item, here + ".", errors, None)
        if parsed is _INVALID:
            continue
        if getattr(parsed, unique) in seen:
            errors.append(f"{here}.{unique}: {getattr(parsed, unique)!r} is listed twice")
        seen.add(getattr(parsed, unique))
        items.append(parsed)
    return tuple(items)


def _dsn_has_password(dsn: str) -> bool:
    if re.match(r"^postgres(?:ql)?://[^/@]*:[^/@]*@", dsn):
        return True
    return re.search(r"(?:^|\s)password\s*=|[?&]password=", dsn) is not None


def build(data: Any, path: str | None = None) -> Config:
    """Validate raw YAML data and build a Config; raises ConfigError listing every problem."""
    errors: list[str] = []
    config = _parse_section(Config, data, "", errors, Config())
    # read from the raw data, so the warning comes even when other keys are wrong
    database = data.get("database") if isinstance(data, dict) else None
    for key in ("dsn", "replica_dsn", "maintenance_dsn"):
        dsn = database.get(key) if isinstance(database, dict) else None
        if isinstance(dsn, str) and _dsn_has_password(dsn):
            errors.append(
                f"database.{key}: contains a password; keep it out of the file and use .pgpass, "
                "PGPASSWORD or the variable named by database.password_env"
            )
    if errors or not isinstance(config, Config):
        raise ConfigError(errors)
    return replace(config, path=path)


def _shown(instance: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in keys(type(instance)):
        value = getattr(instance, f.name)
        if f.metadata.get("secret"):
            out[f.name] = redact_dsn(value)
        elif "parse" in f.metadata and not f.metadata["echo"]:
            out[f.name] = None if value is None else REDACTED  # may hold a password by mistake
        elif "parse" in f.metadata:
            out[f.name] = _plain(value)
        elif "records" in f.metadata:
            out[f.name] = [_shown(item) for item in value]
        else:
            _section_class(f)
            out[f.name] = _shown(value)
    return out


REDACTED = "***"


def _plain(value: Any) -> Any:
    """A leaf value as it is written in the file."""
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, QualifiedName):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def as_dict(config: Config) -> dict[str, Any]:
    """The configuration as plain data in the file's shape, with secrets redacted."""
    return _shown(config)


def find_config_file(explicit: str | None, env: Mapping[str, str]) -> Path | None:
    """--config, else $EPSTATS_CONFIG, else ./epstats.yaml, else ~/.config/epstats/config.yaml."""
    if explicit:
        return Path(explicit)
    if env.get("EPSTATS_CONFIG"):
        return Path(env["EPSTATS_CONFIG"])
    for candidate in (Path("epstats.yaml"), Path.home() / ".config" / "epstats" / "config.yaml"):
        if candidate.is_file():
            return candidate
    return None


def load(explicit: str | None = None, env: Mapping[str, str] | None = None) -> Config:
    """Load the effective configuration (file or built-in defaults)."""
    env = os.environ if env is None else env
    path = find_config_file(explicit, env)
    if path is None:
        return Config()
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            [f"config file {path} does not exist (check --config/EPSTATS_CONFIG)"]
        ) from None
    except OSError as exc:
        raise ConfigError([f"config file {path} cannot be read: {exc.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ConfigError([f"config file {path}{where}: {problem}"]) from None
    return build(data, str(path))


def redact_dsn(dsn: str | None) -> str | None:
    """The DSN with any password replaced by ***."""
    if dsn is None:
        return None
    dsn = re.sub(r"^(postgres(?:ql)?://[^/@:]*):[^/@]*@", r"\1:***@", dsn)
    dsn = re.sub(r"((?:^|\s)password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", dsn)
