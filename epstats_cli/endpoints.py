"""Endpoints as people mean them: `source.endpoint_ids` and `source.endpoint_rules` as SQL the
server runs, and what `epstats endpoints` measures of the endpoint column.

With `endpoint_ids: auto`, an endpoint's query string (from its first `?`) is dropped, the
rules apply in order (regexp_replace, every match), then each path segment that is an
identifier becomes `{id}` (fragments/endpoint_auto.sql says which); with `off`, the rules
alone apply, to the endpoint as stored. It is one SQL expression
(`expression`), built once here from the configuration. Running regular expressions on every
row costs several times a plain aggregate, so the rollup and the reports join instead on
`epstats.endpoint_map`, which holds each distinct key (`key`) normalized once for one rule
(`rule_id`, a fingerprint of the configuration): `fill` adds the keys it lacks from the rows a
build or a refresh reads, `joined` gives the join and the normalized endpoint, which falls back
to the expression for a key the map lacks, so the map is a cache that is never wrong, only
incomplete.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli import source
from epstats_cli.catalog import source_oid
from epstats_cli.config import Config, EndpointRule
from epstats_cli.db import Session, consistent
from epstats_cli.errors import ConfigError
from epstats_cli.schema import source_identifiers

# Part of every rule_id: a change to fragments/endpoint_auto.sql must change this number, so
# that mappings made by the old rule are never read as the new one's.
AUTO_VERSION = 1
# Paths longer than this (bytes) are not keys of the map (a btree entry has a size limit).
LONGEST_KEY = 2000
# `epstats endpoints` reads every row of a window up to about this many, else a sample.
SAMPLE_ROWS = 100_000


@dataclass(frozen=True)
class Normalization:
    """How raw endpoints become endpoints: `endpoint_ids` (off | auto) and the rules."""

    endpoint_ids: str = "off"
    rules: tuple[EndpointRule, ...] = ()

    @classmethod
    def of(cls, config: Config) -> Normalization:
        return cls(config.source.endpoint_ids, config.source.endpoint_rules)

    @classmethod
    def recorded(cls, params: dict[str, Any]) -> Normalization:
        """The normalization a rollup recorded (`parameters()`); none when it recorded none."""
        rules = tuple(
            EndpointRule(str(r["pattern"]), str(r["replace"]))
            for r in params.get("endpoint_rules") or ()
        )
        return cls(str(params.get("endpoint_ids") or "off"), rules)

    @property
    def active(self) -> bool:
        """False when endpoints are read as they are stored."""
        return self.endpoint_ids == "auto" or bool(self.rules)

    def parameters(self) -> dict[str, Any]:
        """What a rollup records of it (and compares with the configuration)."""
        return {
            "endpoint_ids": self.endpoint_ids,
            "endpoint_rules": [{"pattern": r.pattern, "replace": r.replace} for r in self.rules],
        }

    @property
    def rule_id(self) -> int:
        """A fingerprint of the rule (under 2**60): the map's key for its mappings."""
        canonical = json.dumps(
            {
                "auto": AUTO_VERSION if self.endpoint_ids == "auto" else None,
                "rules": [[r.pattern, r.replace] for r in self.rules],
            },
            sort_keys=True,
        )
        return int(hashlib.sha256(canonical.encode()).hexdigest()[:15], 16)

    def describe(self) -> str:
        """`auto`, `auto after 2 rules`, `1 rule`, `off`."""
        rules = f"{len(self.rules)} rule{'s' if len(self.rules) != 1 else ''}"
        if self.endpoint_ids == "auto":
            return f"auto after {rules}" if self.rules else "auto"
        return rules if self.rules else "off"


def key(session: Session, norm: Normalization, value: sql.Composable) -> sql.Composable:
    """What normalization reads of the text expression `value`, the map's key: its path (the
    text before any `?`) with `auto`, all of it with rules alone."""
    if norm.endpoint_ids == "auto":
        return session.statement("fragments/endpoint_path", value=value)
    return value


def expression(session: Session, norm: Normalization, value: sql.Composable) -> sql.Composable:
    """The normalized endpoint of the text expression `value`, computed on each evaluation
    (`value` itself when the normalization is off)."""
    if not norm.active:
        return value
    out = key(session, norm, value)
    for rule in norm.rules:
        out = session.statement(
            "fragments/endpoint_rule",
            value=out,
            pattern=sql.Literal(rule.pattern),
            replace=sql.Literal(rule.replace),
        )
    if norm.endpoint_ids == "auto":
        out = session.statement("fragments/endpoint_auto", value=out)
    return out


def raw_column(session: Session) -> sql.Composable:
    """The source's endpoint column as text (unqualified, as the statements name it)."""
    return sql.SQL("{}::text").format(sql.Identifier(session.config.source.columns.endpoint))


@dataclass(frozen=True)
class Joined:
    """A FROM-clause addition (`join`, after the source table) and the normalized endpoint of
    each row (`endpoint`) that reads the map; an empty join and the raw endpoint when off."""

    join: sql.Composable
    endpoint: sql.Composable


def joined(session: Session, norm: Normalization, column: sql.Composable | None = None) -> Joined:
    """The normalized endpoint of the source rows through the map, for `column` (the raw
    endpoint as text; default: the source's endpoint column)."""
    column = raw_column(session) if column is None else column
    if not norm.active:
        return Joined(sql.SQL(""), column)
    join = session.statement(
        "fragments/endpoint_join", rule=sql.Literal(norm.rule_id), key=key(session, norm, column)
    )
    endpoint = session.statement(
        "fragments/endpoint_mapped", normalized=expression(session, norm, column)
    )
    return Joined(join, endpoint)


def fill(
    session: Session, norm: Normalization, where: sql.Composable
) -> tuple[sql.Composed, dict[str, Any]]:
    """The INSERT that maps the keys of the raw rows satisfying `where` that the map lacks
    for this rule, and its parameters. Run it before the statement that joins, in its own
    short transaction (its row locks are the map's only)."""
    query = session.statement(
        "endpoints/fill",
        **source_identifiers(session),
        key=key(session, norm, raw_column(session)),
        normalized=expression(session, norm, sql.SQL("n.raw")),
        where=where,
    )
    return query, {"rule": norm.rule_id, "longest": LONGEST_KEY}


def prune(session: Session, keep: Iterable[int]) -> tuple[sql.Composed, dict[str, Any]]:
    """The DELETE of every mapping of a rule not in `keep`, and its parameters."""
    return session.statement("endpoints/prune"), {"keep": sorted(set(keep))}


def check_rules(session: Session, norm: Normalization) -> None:
    """ConfigError (exit 3) naming each rule whose pattern the server refuses."""
    problems = []
    for i, rule in enumerate(norm.rules):
        try:
            with session.conn.transaction():
                session.value("endpoints/check_rule", {"pattern": rule.pattern, "replace": ""})
        except psycopg.errors.InvalidRegularExpression as exc:
            reason = (exc.diag.message_primary or str(exc)).strip()
            problems.append(
                f"source.endpoint_rules[{i}].pattern: {rule.pattern!r} is refused by the "
                f"server: {reason}"
            )
    if problems:
        raise ConfigError(problems)


def normalize(session: Session, norm: Normalization, raws: Sequence[str]) -> list[str]:
    """What the server makes of these raw endpoints (as the rollup and reports do)."""
    rows = session.all(
        "endpoints/normalize",
        {"raws": list(raws)},
        normalized=expression(session, norm, sql.SQL("r.raw")),
    )
    return [str(r["endpoint"]) for r in rows]


# --- what `epstats endpoints` measures --------------------------------------------------------


@dataclass(frozen=True)
class Cardinality:
    """Distinct values in the rows read: in the window, and per day (average, most)."""

    distinct: int
    per_day_avg: float | None
    per_day_max: int | None


@dataclass
class EndpointsReport:
    """The endpoint column of a window, raw and normalized, from every row or a sample."""

    from_day: dt.date
    to_day: dt.date
    from_ts: dt.datetime
    to_ts: dt.datetime
    as_of: dt.datetime
    timezone: str
    normalization: Normalization
    configured: bool  # False: normalization is off, and this is what `auto` would make
    estimated_rows: int | None  # the planner's estimate of the window's rows
    sample_percent: float | None  # None: every row of the window was read
    rows: int  # the requests read
    raw: Cardinality
    normalized: Cardinality
    days: list[dict[str, Any]] = field(default_factory=list)
    top: list[dict[str, Any]] = field(default_factory=list)
    planner_distinct: float | None = None  # pg_stats, the whole table
    seconds: float = 0.0

    def document(self) -> dict[str, Any]:
        return {
            "window": {"from": self.from_ts, "to": self.to_ts},
            "as_of": self.as_of,
            "timezone": self.timezone,
            "normalization": {
                **self.normalization.parameters(),
                "configured": self.configured,
            },
            "sample": {
                "sampled": self.sample_percent is not None,
                "method": "TABLESAMPLE SYSTEM" if self.sample_percent is not None else None,
                "percent": self.sample_percent,
                "estimated_rows": self.estimated_rows,
            },
            "rows": self.rows,
            "cardinality": {
                "raw": _cardinality_doc(self.raw),
                "normalized": _cardinality_doc(self.normalized),
            },
            "planner_distinct": self.planner_distinct,
            "days": self.days,
            "endpoints": self.top,
            "query_seconds": round(self.seconds, 6),
        }


def _cardinality_doc(c: Cardinality) -> dict[str, Any]:
    return {"distinct": c.distinct, "per_day_avg": c.per_day_avg, "per_day_max": c.per_day_max}


def _cardinality(days: list[dict[str, Any]], total: int, key: str) -> Cardinality:
    values = [int(d[key]) for d in days]
    avg = sum(values) / len(values) if values else None
    return Cardinality(total, avg, max(values) if values else None)


def sample_percent(estimated_rows: int | None, sample_rows: int) -> float | None:
    """The TABLESAMPLE SYSTEM percentage that reads about `sample_rows` of the window's
    estimated rows; None when reading them all is within that bound."""
    if estimated_rows is None or estimated_rows <= sample_rows:
        return None
    return max(100.0 * sample_rows / estimated_rows, 1e-6)


def measure(
    session: Session,
    days: int | None = None,
    limit: int | None = None,
    sample_rows: int = SAMPLE_ROWS,
) -> EndpointsReport:
    """The endpoint column over the last `days` days (reports' window, in source.timezone):
    distinct raw and normalized endpoints, per day, and the busiest normalized endpoints.
    Read-only, one REPEATABLE READ snapshot."""
    config = session.config
    configured = Normalization.of(config)
    norm = configured if configured.active else Normalization("auto", configured.rules)
    check_rules(session, norm)
    columns = source.check_columns(session)
    basis = source.Basis.of(config, columns)
    oid = source_oid(session)

    def read() -> EndpointsReport:
        win = session.one(
            "reports/window",
            {
                "tz": basis.timezone,
                "days": days or config.reports.days,
                "from_day": None,
                "from_local": None,
                "to_day": None,
            },
        )
        assert win is not None
        bounds = {"from_ts": win["from_ts"], "to_ts": win["to_ts"]}
        ids = dict(
            source_identifiers(session),
            from_ts=source.param(session, basis, "from_ts"),
            to_ts=source.param(session, basis, "to_ts"),
        )
        plan = session.value("endpoints/window_rows", bounds, **ids)
        estimated = _plan_rows(plan)
        percent = sample_percent(estimated, sample_rows)
        sample = (
            session.statement("fragments/endpoint_sample") if percent is not None else sql.SQL("")
        )
        params = dict(bounds, percent=percent, limit=limit or config.reports.limit)
        reading = dict(
            ids,
            day=source.day(session, basis),
            sample=sample,
            normalized=expression(session, norm, sql.SQL("d.raw")),
        )
        start = time.perf_counter()
        rows = session.all("endpoints/days", params, **reading)
        top = session.all("endpoints/top", params, **reading)
        seconds = time.perf_counter() - start
        per_day = [
            {
                "day": r["day"],
                "requests": int(r["requests"]),
                "raw_endpoints": int(r["raw_endpoints"]),
                "endpoints": int(r["endpoints"]),
            }
            for r in rows
            if r["day"] is not None
        ]
        total = next((r for r in rows if r["day"] is None), None)
        requests = int(total["requests"]) if total else 0
        src = config.source
        distinct = session.value(
            "endpoints/planner_distinct",
            {
                "oid": oid,
                "schema": src.table.schema,
                "table": src.table.name,
                "column": src.columns.endpoint,
            },
        )
        return EndpointsReport(
            from_day=win["from_day"],
            to_day=win["to_day"],
            from_ts=win["from_ts"],
            to_ts=win["to_ts"],
            as_of=win["as_of"],
            timezone=basis.timezone,
            normalization=norm,
            configured=configured.active,
            estimated_rows=estimated,
            sample_percent=percent,
            rows=requests,
            raw=_cardinality(per_day, int(total["raw_endpoints"]) if total else 0, "raw_endpoints"),
            normalized=_cardinality(per_day, int(total["endpoints"]) if total else 0, "endpoints"),
            days=per_day,
            top=[
                {
                    "endpoint": r["endpoint"],
                    "requests": int(r["requests"]),
                    "share": int(r["requests"]) / requests if requests else None,
                    "raw_endpoints": int(r["raw_endpoints"]),
                    "example": r["example"],
                }
                for r in top
            ],
            planner_distinct=None if distinct is None else float(distinct),
            seconds=seconds,
        )

    return consistent(session, read, lambda: None)


def _plan_rows(plan: Any) -> int | None:
    """`Plan Rows` of an EXPLAIN (FORMAT JSON) result."""
    try:
        doc = json.loads(plan) if isinstance(plan, str) else plan
        return int(doc[0]["Plan"]["Plan Rows"])
    except (TypeError, ValueError, KeyError, IndexError):
        return None
