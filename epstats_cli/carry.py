"""What a replaced relation keeps beyond its owner, grants, comments, indices and views
(keep.py): its settings (storage parameters, tablespace, persistence, replica identity, the
statistics target, storage, compression and options of its columns), row-level security and its
policies, triggers, rules, constraints and extended statistics. What it cannot keep is refused
before anything is built, named, with what to do: what a materialized view cannot have, a member
that uses a column the replacement will not have, a publication's membership, security labels,
and anything else that depends on it.

Settings go onto the new relation in its build, right after it is created (before it is filled,
so that fillfactor, storage and compression apply to its rows), and row-level security once it
is filled: until the swap creates the policies, nobody but its owner sees a row of it. Policies,
triggers, rules, constraints and statistics are created in the swap's transaction, once the
new relation has the old one's name, from the text the server printed for them (which names
the relation): recreated exactly, or refused.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from epstats_cli.config import QualifiedName
from epstats_cli.db import Session
from epstats_cli.steps import Statement

STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "x": "EXTENDED", "m": "MAIN"}
COMPRESSION = {"p": "pglz", "l": "lz4"}
STATE = {"D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}  # O: enabled, the default
COMMAND = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}
IDENTITY = {"f": "FULL", "n": "NOTHING"}  # d: the default; i: USING INDEX
CONSTRAINT_KIND = {"p": "PRIMARY KEY", "u": "UNIQUE", "x": "EXCLUDE"}

# What each catalog's dependent objects are carried as (the rest is refused).
CARRIED = {
    "pg_policy": "policy",
    "pg_trigger": "trigger",
    "pg_rewrite": "rule",
    "pg_constraint": "constraint",
    "pg_statistic_ext": "statistics",
}
ADVICE = {
    "pg_publication_rel": (
        "a replacement's rows would not reach the publication's subscribers: take the table "
        "out of the publication (ALTER PUBLICATION ... DROP TABLE), replace it, then add it "
        "back and refresh the subscriptions"
    ),
}
DEFAULT_ADVICE = "drop it, replace, then create it again"


@dataclass
class Dependent:
    """An object that depends on the replaced relation (keep/attached), with the relation's
    columns it uses."""

    catalog: str
    objid: int
    what: str  # as the server describes it
    columns: set[str] = field(default_factory=set)


@dataclass
class Carried:
    """What a replacement is given of the old relation's settings and members."""

    qualified: str = ""  # the old relation's name as the server prints it in definitions
    settings: dict[str, Any] = field(default_factory=dict)  # keep/settings
    columns: list[dict[str, Any]] = field(default_factory=list)  # keep/column_settings
    policies: list[dict[str, Any]] = field(default_factory=list)  # keep/policies
    members: list[dict[str, Any]] = field(default_factory=list)  # keep/members, to create


def _member_refusals(
    row: dict[str, Any], what: str, table: bool, qualified: str, own_checks: Collection[str]
) -> tuple[bool, list[str]]:
    """Whether member `row` (keep/members) is carried, and why it cannot be."""
    kind, name = row["member"], row["name"]
    if kind == "constraint":
        if row["definition"] in own_checks or row["type"] == "t":
            return False, []  # epstats's own (the new one has it), or its trigger's
        if row["type"] in CONSTRAINT_KIND:
            return False, [
                f"constraint {name} ({CONSTRAINT_KIND[row['type']]}) on {what}: a replacement "
                "keeps its index but not the constraint: drop it (a unique index in its place "
                "is kept), then replace"
            ]
    if kind != "statistics" and not table:
        return False, [
            f"{kind} {name} on {what}: a materialized view cannot have one (keep "
            "view.strategy incremental, or drop it first)"
        ]
    text = row["definition"]
    expected = {"trigger": f" ON {qualified} ", "rule": f" TO {qualified}"}.get(kind)
    if expected is not None and expected not in text:
        return False, [
            f"{kind} {name} on {what} cannot be recreated exactly (the server prints it as "
            f"{text!r}): drop it, replace, then create it again"
        ]
    return True, []


def inspect(
    session: Session,
    oid: int,
    name: QualifiedName,
    columns: Collection[str],
    dependents: list[Dependent],
    *,
    table: bool = True,
    own_checks: Collection[str] = (),
) -> tuple[Carried, list[str]]:
    """What replacing relation `oid` (`name`) carries over, and why it cannot (refusals):
    `columns` are the replacement's, `table` whether it is a table (else a materialized
    view), `own_checks` the definitions of the CHECK constraints it has of its own,
    `dependents` what depends on the old one (keep/attached)."""
    what = str(name)
    refusals: list[str] = []
    settings = session.one("keep/settings", {"oid": oid})
    assert settings is not None
    carried = Carried(settings["qualified"], settings)
    for label in settings["security_labels"]:
        refusals.append(
            f"the security label {label} on {what} (a replacement cannot be given it): remove "
            "it (SECURITY LABEL ... IS NULL), replace, then label the new one"
        )
    if not table:
        for flag, text in (
            ("row_security", "row-level security"),
            ("force_row_security", "forced row-level security"),
        ):
            if settings[flag]:
                refusals.append(
                    f"{what} has {text}, which a materialized view cannot have (keep "
                    "view.strategy incremental, or disable it first)"
                )
        if settings["persistence"] == "u" or _identity(settings) is not None:
            refusals.append(
                f"{what} is unlogged or has a replica identity, which a materialized view "
                "cannot have (keep view.strategy incremental)"
            )
    carried.columns = [
        c for c in session.all("keep/column_settings", {"oid": oid}) if c["column_name"] in columns
    ]
    policies = session.all("keep/policies", {"oid": oid})
    handled = {("pg_policy", p["objid"]) for p in policies}  # carried, refused, or its own
    if policies and not table:
        refusals.append(
            f"the policies {', '.join(p['name'] for p in policies)} on {what}: a "
            "materialized view cannot have any (keep view.strategy incremental, or drop them)"
        )
    elif policies:
        carried.policies = policies
    for row in session.all("keep/members", {"oid": oid}):
        keep, why = _member_refusals(row, what, table, carried.qualified, own_checks)
        refusals += why
        if keep:
            carried.members.append(row)
        handled.add((_CATALOG[row["member"]], row["objid"]))
    kept = {("pg_policy", p["objid"]) for p in carried.policies}
    kept |= {(_CATALOG[m["member"]], m["objid"]) for m in carried.members}
    for dep in dependents:
        key = (dep.catalog, dep.objid)
        if key not in handled:
            advice = ADVICE.get(dep.catalog, DEFAULT_ADVICE)
            refusals.append(f"{dep.what} depends on {what} ({advice})")
            continue
        lacking = sorted(dep.columns - set(columns))
        if key in kept and lacking:
            refusals.append(
                f"{dep.what} uses {', '.join(lacking)}, which the replacement of {what} will "
                "not have: drop it, replace, then create it again"
            )
    return carried, refusals


_CATALOG = {kind: catalog for catalog, kind in CARRIED.items()}


def _identity(settings: dict[str, Any]) -> sql.Composable | None:
    """A table's replica identity when it is not the default (None: the default)."""
    identity = settings["replica_identity"]
    if settings["relkind"] != "r" or identity == "d":
        return None
    if identity in IDENTITY:
        return sql.SQL(IDENTITY[identity])
    return sql.SQL("USING INDEX {}").format(sql.Identifier(settings["identity_index"]))


def _pairs(pairs: list[list[str]], prefix: str | None = None) -> sql.Composable:
    """`name = 'value', ...` for SET (...), each name under `prefix` (toast) if given."""
    items = []
    for option, value in pairs:
        key: sql.Composable = sql.Identifier(option)
        if prefix is not None:
            key = sql.SQL("{}.{}").format(sql.Identifier(prefix), key)
        items.append(sql.SQL("{} = {}").format(key, sql.Literal(value)))
    return sql.SQL(", ").join(items)


def options(
    session: Session, kind: sql.SQL, target: QualifiedName, row: dict[str, Any]
) -> list[Statement]:
    """Storage parameters and tablespace of an index or relation (`row` has `options`,
    `tablespace`, and `toast_options` for a relation) for `target`."""
    view = (target.schema, target.name)
    out = []
    for key, prefix in (("options", None), ("toast_options", "toast")):
        if row.get(key):
            settings = _pairs(row[key], prefix)
            out.append(
                Statement(
                    session.statement("keep/set_options", kind=kind, view=view, settings=settings)
                )
            )
    if row.get("tablespace"):
        out.append(
            Statement(
                session.statement(
                    "keep/set_tablespace", kind=kind, view=view, tablespace=row["tablespace"]
                )
            )
        )
    return out


def onto_new(
    session: Session, carried: Carried, new: QualifiedName, kind: sql.SQL
) -> list[Statement]:
    """In the build, right after the new relation is created (empty): its settings and its
    columns' settings."""
    view = (new.schema, new.name)
    st = session.statement
    out = options(session, kind, new, carried.settings)
    if carried.settings.get("persistence") == "u":
        out.append(Statement(st("keep/set_unlogged", view=view)))
    for c in carried.columns:
        field_ = c["column_name"]
        if c["statistics"] is not None:
            target = sql.Literal(c["statistics"])
            out.append(
                Statement(
                    st("keep/column_statistics", kind=kind, view=view, field=field_, target=target)
                )
            )
        if c["storage"] in STORAGE:
            storage = sql.SQL(STORAGE[c["storage"]])
            out.append(
                Statement(
                    st("keep/column_storage", kind=kind, view=view, field=field_, storage=storage)
                )
            )
        if c["compression"] in COMPRESSION:
            method = sql.SQL(COMPRESSION[c["compression"]])
            out.append(
                Statement(
                    st(
                        "keep/column_compression",
                        kind=kind,
                        view=view,
                        field=field_,
                        compression=method,
                    )
                )
            )
        if c["options"]:
            settings = _pairs(c["options"])
            out.append(
                Statement(
                    st(
                        "keep/column_options",
                        kind=kind,
                        view=view,
                        field=field_,
                        column_settings=settings,
                    )
                )
            )
    return out


def row_security(session: Session, carried: Carried, new: QualifiedName) -> list[Statement]:
    """In the build, once the new table is filled (forced, row-level security would hold its
    owner's rows back too, with no policy yet): row-level security, enabled and forced as the
    old one's. Until the swap creates the policies, nobody but its owner sees a row of it."""
    view = (new.schema, new.name)
    out = []
    if carried.settings.get("row_security"):
        out.append(Statement(session.statement("keep/enable_row_security", view=view)))
    if carried.settings.get("force_row_security"):
        out.append(Statement(session.statement("keep/force_row_security", view=view)))
    return out


def _member_comment(
    session: Session, kind: str, name: str, view: tuple[str, str], comment: str | None
) -> list[Statement]:
    if comment is None:
        return []
    member = sql.SQL("{} {}").format(sql.SQL(kind.upper()), sql.Identifier(name))
    query = session.statement(
        "keep/comment_member", member=member, view=view, comment=sql.Literal(comment)
    )
    return [Statement(query)]


def _policy(session: Session, p: dict[str, Any], view: tuple[str, str]) -> list[Statement]:
    roles: list[sql.Composable] = [sql.SQL("PUBLIC")] if p["public"] else []
    roles += [sql.Identifier(r) for r in p["roles"]]
    using = p["using_expression"]
    check = p["check_expression"]
    query = session.statement(
        "keep/create_policy",
        policy=p["name"],
        view=view,
        permissive=sql.SQL("PERMISSIVE" if p["permissive"] else "RESTRICTIVE"),
        command=sql.SQL(COMMAND[p["command"]]),
        roles=sql.SQL(", ").join(roles),
        # expressions as the server printed them, valid in this session
        using=sql.SQL(" USING ({})").format(sql.SQL(using)) if using else sql.SQL(""),
        check=sql.SQL(" WITH CHECK ({})").format(sql.SQL(check)) if check else sql.SQL(""),
    )
    return [Statement(query), *_member_comment(session, "policy", p["name"], view, p["comment"])]


def _member(session: Session, m: dict[str, Any], name: QualifiedName) -> list[Statement]:
    view = (name.schema, name.name)
    st = session.statement
    text = m["definition"].strip().rstrip(";")
    if m["member"] == "constraint":
        condition = sql.SQL(text)  # as pg_get_constraintdef printed it
        out = [
            Statement(
                st("keep/add_constraint", view=view, constraint=m["name"], condition=condition)
            )
        ]
        return out + _member_comment(session, "constraint", m["name"], view, m["comment"])
    out = [Statement(st("keep/as_printed", definition=sql.SQL(text)))]
    if m["member"] == "statistics":
        stats = (m["schema"], m["name"])
        if m["target"] is not None:
            target = sql.Literal(m["target"])
            out.append(Statement(st("keep/statistics_target", statistics=stats, target=target)))
        kind = sql.SQL("STATISTICS")
        if m["comment"] is not None:
            comment = sql.Literal(m["comment"])
            out.append(Statement(st("keep/comment", kind=kind, relation=stats, comment=comment)))
        if m["owner"] != session.server.user:
            out.append(
                Statement(st("keep/alter_owner", kind=kind, relation=stats, owner=m["owner"]))
            )
        return out
    if m["enabled"] in STATE:
        member = sql.SQL("{} {}").format(sql.SQL(m["member"].upper()), sql.Identifier(m["name"]))
        out.append(
            Statement(
                st("keep/set_state", view=view, state=sql.SQL(STATE[m["enabled"]]), switched=member)
            )
        )
    return out + _member_comment(session, m["member"], m["name"], view, m["comment"])


def after_rename(session: Session, carried: Carried, name: QualifiedName) -> list[Statement]:
    """In the swap, once the new relation has the old one's name (and its indices theirs):
    its replica identity, constraints, policies, triggers, rules and statistics, as the old
    one had them."""
    view = (name.schema, name.name)
    out = []
    how = _identity(carried.settings)
    if how is not None:
        out.append(Statement(session.statement("keep/replica_identity", view=view, identity=how)))
    order = {"constraint": 0, "trigger": 2, "rule": 3, "statistics": 4}
    members = sorted(carried.members, key=lambda m: order[m["member"]])
    for m in members:
        if m["member"] == "constraint":
            out += _member(session, m, name)
    for p in carried.policies:
        out += _policy(session, p, view)
    for m in members:
        if m["member"] != "constraint":
            out += _member(session, m, name)
    return out
