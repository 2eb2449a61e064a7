"""Endpoints as people mean them: `source.endpoint_ids` and `source.endpoint_rules` as SQL the
server runs (what `epstats endpoints` measures is in endpoint_stats.py).

With `endpoint_ids: auto`, an endpoint's query string (from its first `?`) is dropped, the
rules apply in order (regexp_replace, every match), then each path segment that is an
identifier becomes `{id}` (fragments/endpoint_auto.sql says which); with `off`, the rules
alone apply, to the endpoint as stored. It is one SQL expression
(`expression`), built once here from the configuration. Running regular expressions on every
row costs several times a plain aggregate, so the rollup and the reports join instead on
`epstats.endpoint_map`, which holds each distinct raw endpoint normalized once for one rule
(`rule_id`, a fingerprint of the configuration): `fill` adds those it lacks from the rows a
build or a refresh reads, `joined` gives the join and the normalized endpoint, which falls back
to the expression for a raw endpoint the map lacks, so the map is a cache that is never wrong, only
incomplete. A build or refresh runs `fill_lock` and `fill` over the rows it is about to read
(and `analyze_map` when that added many), then, in the transaction of the statement that joins,
`planner_settings` first. The fill finds the distinct raw endpoints first and normalizes only
those the map lacks; one fill of a rule runs at a time (a second maps nothing), so its INSERT
needs no ON CONFLICT (benchmarks/README.md: what each costs at 10M rows).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from epstats_cli.catalog import relation_exists
from epstats_cli.config import Config, EndpointRule
from epstats_cli.db import Session
from epstats_cli.errors import ConfigError, OperationFailed
from epstats_cli.schema import source_identifiers

# Part of every rule_id: a change to fragments/endpoint_auto.sql must change this number, so
# that mappings made by the old rule are never read as the new one's.
AUTO_VERSION = 1
# Paths longer than this (bytes) are not keys of the map (a btree entry has a size limit).
LONGEST_KEY = 2000
# The advisory-lock namespace of epstats ("epst"; maintain.LOCK_CLASS): a fill's lock is
# (LOCK_CLASS, hashtext('epstats.endpoint_map:<rule_id>')).
LOCK_CLASS = 0x65707374


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


def _input(session: Session, norm: Normalization, value: sql.Composable) -> sql.Composable:
    """What normalization reads of the text expression `value`: with `auto` its path (the text
    before any `?`), with rules alone all of it."""
    if norm.endpoint_ids == "auto":
        return session.statement("fragments/endpoint_path", value=value)
    return value


def expression(session: Session, norm: Normalization, value: sql.Composable) -> sql.Composable:
    """The normalized endpoint of the text expression `value`, computed on each evaluation
    (`value` itself when the normalization is off)."""
    if not norm.active:
        return value
    out = _input(session, norm, value)
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


def joined(
    session: Session,
    norm: Normalization,
    column: sql.Composable | None = None,
    *,
    inline: bool = False,
) -> Joined:
    """The normalized endpoint of the source rows through the map, for `column` (the raw
    endpoint as text; default: the source's endpoint column); `inline`: without the map (a
    role that may not read it), the expression on each row."""
    column = raw_column(session) if column is None else column
    if not norm.active:
        return Joined(sql.SQL(""), column)
    if inline:
        return Joined(sql.SQL(""), expression(session, norm, column))
    join = session.statement("fragments/endpoint_join", rule=sql.Literal(norm.rule_id), key=column)
    endpoint = session.statement(
        "fragments/endpoint_mapped", normalized=expression(session, norm, column)
    )
    return Joined(join, endpoint)


def fill(
    session: Session, norm: Normalization, where: sql.Composable
) -> tuple[sql.Composed, dict[str, Any]]:
    """The INSERT that maps the raw endpoints of the rows satisfying `where` that the map lacks
    for this rule (with `auto` alone, only those the long expression would normalize), and its
    parameters. Run it before the statement that joins, after `fill_lock` in the same
    transaction (without the lock it maps nothing)."""
    wanted: sql.Composable = sql.SQL("true")
    if norm.endpoint_ids == "auto" and not norm.rules:  # the short expression beats a lookup
        wanted = session.statement("fragments/endpoint_costly", value=sql.SQL("n.raw"))
    query = session.statement(
        "endpoints/fill",
        **source_identifiers(session),
        key=raw_column(session),
        normalized=expression(session, norm, sql.SQL("n.raw")),
        where=where,
        wanted=wanted,
    )
    return query, {"rule": norm.rule_id, "longest": LONGEST_KEY, "k1": LOCK_CLASS}


def fill_lock(session: Session, norm: Normalization) -> tuple[sql.Composed, dict[str, Any]]:
    """The statement that takes the rule's fill lock, never waiting, in the fill's transaction
    and before it: `fill` maps nothing without it (another fill of the rule is running, and
    its rows are normalized as they are read), so two fills never add the same key."""
    return session.statement("endpoints/fill_lock"), {"rule": norm.rule_id, "k1": LOCK_CLASS}


def map_unreadable(session: Session) -> str | None:
    """Why this role reads endpoints without the map (a footer note), or None: it can."""
    if session.value("endpoints/map_readable"):
        return None
    role = session.server.user
    return (
        f"role {role} cannot read epstats.endpoint_map: endpoints are normalized row by row, "
        f"which is slower (GRANT USAGE ON SCHEMA epstats TO {role}; "
        f"GRANT SELECT ON epstats.endpoint_map TO {role})"
    )


def planner_settings(session: Session) -> list[sql.Composed]:
    """What to run first in the transaction of a statement that joins the map (SET LOCAL)."""
    return [
        session.statement("endpoints/no_memoize"),
        session.statement("endpoints/hash_aggregate"),
    ]


def analyze_map(session: Session) -> sql.Composed:
    """ANALYZE of the map: after a fill that added many keys, before the statement that joins
    (planned for an empty map, the join would not be a hash join)."""
    return session.statement("endpoints/analyze_map")


def prune(session: Session, keep: Iterable[int]) -> tuple[sql.Composed, dict[str, Any]]:
    """The DELETE of every mapping of a rule not in `keep`, and its parameters."""
    return session.statement("endpoints/prune"), {"keep": sorted(set(keep))}


def require_map(session: Session, norm: Normalization) -> None:
    """Before a build or refresh: the rules checked (check_rules) and, when normalization is
    on, OperationFailed unless `epstats.endpoint_map` exists."""
    check_rules(session, norm)
    if norm.active and not relation_exists(session, "epstats", "endpoint_map"):
        raise OperationFailed(
            f"source.endpoint_ids/endpoint_rules ({norm.describe()}) need epstats.endpoint_map, "
            "which this database lacks (initialised by an earlier epstats): run `epstats init` "
            "again, then retry"
        )


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
