"""Configuration: YAML file + environment + options -> frozen dataclasses.

Validation collects every problem with its dotted path, the bad value and what was expected,
and raises them together as one ConfigError.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import Any

from epstats_cli.durations import format_duration, parse_duration
from epstats_cli.errors import ConfigError

LOGICAL_COLUMNS = ("endpoint", "timestamp", "response_time", "status")
STRATEGIES = ("materialized", "incremental")
INDEX_METHODS = ("btree", "brin")
TASKS = ("refresh", "analyze", "vacuum", "reindex", "cleanup")
SEVERITIES = ("ok", "warning", "critical")


@dataclass(frozen=True)
class QualifiedName:
    """A schema-qualified relation name, exactly as it is spelled in the catalog."""

    schema: str
    name: str

    def __str__(self) -> str:
        return f"{quote_ident(self.schema)}.{quote_ident(self.name)}"


@dataclass(frozen=True)
class DatabaseConfig:
    dsn: str | None = None
    password_env: str | None = None
    connect_timeout: timedelta = timedelta(seconds=10)
    lock_timeout: timedelta = timedelta(seconds=5)
    statement_timeout: timedelta = timedelta(0)


@dataclass(frozen=True)
class Columns:
    endpoint: str = "endpoint"
    timestamp: str = "timestamp"
    response_time: str = "response_time"
    status: str = "status"

    def physical(self, logical: str) -> str:
        """The real column name behind a logical one (endpoint, timestamp, ...)."""
        return str(getattr(self, logical))


@dataclass(frozen=True)
class SourceConfig:
    table: QualifiedName = QualifiedName("public", "requests")
    columns: Columns = field(default_factory=Columns)
    error_status_min: int = 500
    timezone: str = "UTC"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    columns: tuple[str, ...]
    method: str = "btree"


DEFAULT_INDEXES = (
    IndexSpec("idx_requests_timestamp", ("timestamp",)),
    IndexSpec("idx_requests_endpoint_timestamp", ("endpoint", "timestamp")),
)


@dataclass(frozen=True)
class ViewConfig:
    name: str = "endpoint_daily_stats"
    strategy: str = "materialized"
    lookback: timedelta = timedelta(days=2)


@dataclass(frozen=True)
class Schedule:
    analyze: timedelta = timedelta(days=1)
    vacuum: timedelta = timedelta(days=7)
    reindex: timedelta = timedelta(days=30)
    refresh: timedelta = timedelta(hours=1)
    cleanup: timedelta = timedelta(days=1)


@dataclass(frozen=True)
class MaintenanceConfig:
    schedule: Schedule = field(default_factory=Schedule)
    max_runtime: timedelta = timedelta(minutes=30)
    history_retention: timedelta = timedelta(days=90)
    dead_tuple_ratio: float = 0.2
    freeze_age_ratio: float = 0.5
    reindex_bloat_ratio: float = 0.3
    lock_retries: int = 3


@dataclass(frozen=True)
class ReportsConfig:
    days: int = 30
    limit: int = 10


@dataclass(frozen=True)
class Levels:
    """A WARNING and a CRITICAL threshold."""

    warning: float
    critical: float


@dataclass(frozen=True)
class CheckConfig:
    overdue: Levels = Levels(1.5, 3.0)  # x the task's schedule (analyze, vacuum, refresh)
    dead_tuple_ratio: Levels = Levels(0.2, 0.5)
    xid_age_ratio: Levels = Levels(0.8, 1.2)  # x autovacuum_freeze_max_age
    table_bloat: Levels = Levels(0.5, 0.8)
    index_bloat: Levels = Levels(0.5, 0.8)
    bloat_min_size: int = 8 * 1024 * 1024  # smaller relations are never reported as bloated
    missing_index: str = "warning"
    redundant_index: str = "warning"
    invalid_index: str = "critical"
    maintain_failed: str = "critical"


@dataclass(frozen=True)
class Config:
    database: DatabaseConfig = field(default_factory=DatabaseConfig)
    source: SourceConfig = field(default_factory=SourceConfig)
    indexes: tuple[IndexSpec, ...] = DEFAULT_INDEXES
    view: ViewConfig = field(default_factory=ViewConfig)
    maintenance: MaintenanceConfig = field(default_factory=MaintenanceConfig)
    reports: ReportsConfig = field(default_factory=ReportsConfig)
    check: CheckConfig = field(default_factory=CheckConfig)
    path: str | None = None

    @property
    def view_name(self) -> QualifiedName:
        """The rollup's relation: `view.name`, in the source table's schema unless qualified."""
        return parse_qualified(self.view.name, self.source.table.schema)


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


# --- validation --------------------------------------------------------------------------------

Leaf = Callable[[Any], Any]


def _str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("is not a non-empty string")
    return value


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
    except ValueError:
        raise ValueError(
            "is not a duration (expected a number and a unit: 500ms, 30s, 5m, 2h, 1d, 1w)"
        ) from None


def _positive_duration(value: Any) -> timedelta:
    delta = _duration(value)
    if delta <= timedelta(0):
        raise ValueError("must be longer than 0")
    return delta


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


def _one_of(choices: tuple[str, ...]) -> Leaf:
    def check(value: Any) -> str:
        if value not in choices:
            raise ValueError("is not one of " + ", ".join(choices))
        return str(value)

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


SCHEMA: dict[str, Any] = {
    "database": {
        "dsn": _opt_str,
        "password_env": _env_name,
        "connect_timeout": _positive_duration,
        "lock_timeout": _positive_duration,
        "statement_timeout": _duration,
    },
    "source": {
        "table": _table,
        "columns": {name: _identifier for name in LOGICAL_COLUMNS},
        "error_status_min": _int_range(100, 599),
        "timezone": _timezone,
    },
    "indexes": "indexes",
    "view": {
        "name": _relation_name,
        "strategy": _one_of(STRATEGIES),
        "lookback": _positive_duration,
    },
    "maintenance": {
        "schedule": {task: _positive_duration for task in TASKS},
        "max_runtime": _positive_duration,
        "history_retention": _positive_duration,
        "dead_tuple_ratio": _ratio,
        "freeze_age_ratio": _ratio,
        "reindex_bloat_ratio": _ratio,
        "lock_retries": _int_range(0, 100),
    },
    "reports": {"days": _int_range(1, 3660), "limit": _int_range(1, 100000)},
    "check": {
        "overdue": "levels",
        "dead_tuple_ratio": "levels",
        "xid_age_ratio": "levels",
        "table_bloat": "levels",
        "index_bloat": "levels",
        "bloat_min_size": _int_range(0, 2**62),
        "missing_index": _one_of(SEVERITIES),
        "redundant_index": _one_of(SEVERITIES),
        "invalid_index": _one_of(SEVERITIES),
        "maintain_failed": _one_of(SEVERITIES),
    },
}


def _show(value: Any) -> str:
    return repr(value) if isinstance(value, str) else str(value)


def _unknown(path: str, key: Any, known: list[str]) -> str:
    close = difflib.get_close_matches(str(key), known, n=1, cutoff=0.6)
    hint = (
        f" (did you mean '{close[0]}'?)" if close else " (expected one of " + ", ".join(known) + ")"
    )
    return f"{path}{key}: unknown key{hint}"


def _walk(spec: dict[str, Any], data: Any, path: str, errors: list[str]) -> dict[str, Any]:
    """Validate one mapping against its spec; returns parsed values for the keys present."""
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        errors.append(f"{path.rstrip('.') or '(top level)'}: {_show(data)} is not a mapping")
        return {}
    out: dict[str, Any] = {}
    for key, value in data.items():
        sub = spec.get(key) if isinstance(key, str) else None
        if sub is None:
            errors.append(_unknown(path, key, list(spec)))
        elif sub == "indexes":
            out[key] = _indexes(value, f"{path}{key}", errors)
        elif sub == "levels":
            out[key] = _levels(value, f"{path}{key}", errors)
        elif isinstance(sub, dict):
            out[key] = _walk(sub, value, f"{path}{key}.", errors)
        else:
            try:
                out[key] = sub(value)
            except ValueError as exc:
                errors.append(f"{path}{key}: {_show(value)} {exc}")
    return out


def _indexes(value: Any, path: str, errors: list[str]) -> tuple[IndexSpec, ...] | None:
    if not isinstance(value, list) or not value:
        errors.append(f"{path}: {_show(value)} is not a non-empty list of {{name, columns}}")
        return None
    specs: list[IndexSpec] = []
    names: set[str] = set()
    for i, item in enumerate(value):
        here = f"{path}[{i}]"
        parsed = _walk(
            {"name": _identifier, "columns": _index_columns, "method": _one_of(INDEX_METHODS)},
            item,
            here + ".",
            errors,
        )
        if not isinstance(item, Mapping):
            continue
        for required in ("name", "columns"):
            if required not in item:
                errors.append(f"{here}.{required}: missing (every index needs a name and columns)")
        if "name" in parsed and "columns" in parsed:
            if parsed["name"] in names:
                errors.append(f"{here}.name: {parsed['name']!r} is listed twice")
            names.add(parsed["name"])
            specs.append(
                IndexSpec(parsed["name"], parsed["columns"], parsed.get("method", "btree"))
            )
    return tuple(specs)


def _levels(value: Any, path: str, errors: list[str]) -> Levels | None:
    parsed = _walk({"warning": _nonneg, "critical": _nonneg}, value, path + ".", errors)
    if not isinstance(value, Mapping) or set(parsed) != {"warning", "critical"}:
        if isinstance(value, Mapping) and not any(e.startswith(path + ".") for e in errors):
            errors.append(f"{path}: needs both warning and critical")
        return None
    if parsed["critical"] < parsed["warning"]:
        errors.append(f"{path}.critical: {parsed['critical']} is below warning {parsed['warning']}")
        return None
    return Levels(parsed["warning"], parsed["critical"])


def _nonneg(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ValueError("is not a number >= 0")
    return float(value)


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


def _dsn_has_password(dsn: str) -> bool:
    if re.match(r"^postgres(?:ql)?://[^/@]*:[^/@]*@", dsn):
        return True
    return re.search(r"(?:^|\s)password\s*=|[?&]password=", dsn) is not None


def build(data: Any, path: str | None = None) -> Config:
    """Validate raw YAML data and build a Config; raises ConfigError listing every problem."""
    errors: list[str] = []
    parsed = _walk(SCHEMA, data, "", errors)
    db = parsed.get("database", {})
    if db.get("dsn") and _dsn_has_password(db["dsn"]):
        errors.append(
            "database.dsn: contains a password; keep it out of the file and use .pgpass, "
            "PGPASSWORD or the variable named by database.password_env"
        )
    if errors:
        raise ConfigError(errors)
    src = parsed.get("source", {})
    mnt = parsed.get("maintenance", {})
    return Config(
        database=DatabaseConfig(**db),
        source=SourceConfig(
            **{k: v for k, v in src.items() if k != "columns"},
            columns=Columns(**src.get("columns", {})),
        ),
        indexes=parsed.get("indexes") or DEFAULT_INDEXES,
        view=ViewConfig(**parsed.get("view", {})),
        maintenance=MaintenanceConfig(
            **{k: v for k, v in mnt.items() if k != "schedule"},
            schedule=Schedule(**mnt.get("schedule", {})),
        ),
        reports=ReportsConfig(**parsed.get("reports", {})),
        check=CheckConfig(**parsed.get("check", {})),
        path=path,
    )


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


def with_overrides(config: Config, **database: Any) -> Config:
    """A copy with database settings overridden (e.g. from command-line options)."""
    return replace(config, database=replace(config.database, **database))


def redact_dsn(dsn: str | None) -> str | None:
    """The DSN with any password replaced by ***."""
    if dsn is None:
        return None
    dsn = re.sub(r"^(postgres(?:ql)?://[^/@:]*):[^/@]*@", r"\1:***@", dsn)
    dsn = re.sub(r"((?:^|\s)password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", r"\1***", dsn)
    return re.sub(r"([?&]password=)[^&]*", r"\1***", dsn)


def as_dict(config: Config) -> dict[str, Any]:
    """The configuration as plain data in the file's shape, with secrets redacted."""
    d = config.database
    m = config.maintenance
    return {
        "database": {
            "dsn": redact_dsn(d.dsn),
            "password_env": d.password_env,
            "connect_timeout": format_duration(d.connect_timeout),
            "lock_timeout": format_duration(d.lock_timeout),
            "statement_timeout": format_duration(d.statement_timeout),
        },
        "source": {
            "table": str(config.source.table),
            "columns": {c: config.source.columns.physical(c) for c in LOGICAL_COLUMNS},
            "error_status_min": config.source.error_status_min,
            "timezone": config.source.timezone,
        },
        "indexes": [
            {"name": i.name, "columns": list(i.columns), "method": i.method} for i in config.indexes
        ],
        "view": {
            "name": config.view.name,
            "strategy": config.view.strategy,
            "lookback": format_duration(config.view.lookback),
        },
        "maintenance": {
            "schedule": {t: format_duration(getattr(m.schedule, t)) for t in TASKS},
            "max_runtime": format_duration(m.max_runtime),
            "history_retention": format_duration(m.history_retention),
            "dead_tuple_ratio": m.dead_tuple_ratio,
            "freeze_age_ratio": m.freeze_age_ratio,
            "reindex_bloat_ratio": m.reindex_bloat_ratio,
            "lock_retries": m.lock_retries,
        },
        "reports": {"days": config.reports.days, "limit": config.reports.limit},
        "check": {
            k: ({"warning": v.warning, "critical": v.critical} if isinstance(v, Levels) else v)
            for k, v in vars(config.check).items()
        },
    }
