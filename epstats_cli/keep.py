"""What a relation epstats replaces must keep: its owner, its grants (on the relation and on
columns), its comments (on the relation and on columns), its other indices (and the comments,
storage parameters and tablespaces of the indices the replacement has of its own), the views
that read it, and (carry.py) its settings, row-level security, policies, triggers, rules,
constraints and statistics. `view build --replace` (and any later swap of a relation) reads
them with `inspect` before building, refuses when it cannot keep them (naming what and why),
and carries them over with the statements made here: onto the new relation in its build, and
in the swap's transaction the dependent views, dropped before the old relation and created
again on the new one, with their owners, grants and comments.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from epstats_cli import carry
from epstats_cli.catalog import relation
from epstats_cli.config import QualifiedName, quote_ident
from epstats_cli.db import Session
from epstats_cli.execute import Statement
from epstats_cli.permissions import superuser_owned


@dataclass
class ViewCopy:
    """A view that reads the replaced relation (or such a view), to drop and create again."""

    name: QualifiedName
    oid: int
    depth: int  # 1: reads the relation itself; n: reads a view of depth n-1
    owner: str = ""
    options: str | None = None
    definition: str = ""
    comment: str | None = None
    column_comments: dict[str, str] = field(default_factory=dict)
    grants: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Keep:
    """What a replacement keeps of the relation it replaces, and why it cannot (refusals)."""

    owner: str
    grants: list[dict[str, Any]]
    indexes: list[dict[str, Any]]  # name, is_unique, definition (after USING), comment
    views: list[ViewCopy]
    refusals: list[str]
    comment: str | None = None  # the relation's own (the replacement may be given another)
    column_comments: dict[str, str] = field(default_factory=dict)  # of columns it will have
    # the old relation's indices of the replacement's own shapes (unique, definition without
    # storage parameters): their comments, storage parameters and tablespaces go to the
    # replacement's
    own: list[dict[str, Any]] = field(default_factory=list)
    carried: carry.Carried = field(default_factory=carry.Carried)


def comments(session: Session, oid: int) -> tuple[str | None, dict[str, str]]:
    """Relation `oid`'s comment and its columns' comments (column name -> comment)."""
    rows = session.all("keep/comments", {"oid": oid})
    own = next((r["comment"] for r in rows if r["column_name"] is None), None)
    return own, {r["column_name"]: r["comment"] for r in rows if r["column_name"] is not None}


def _rights(session: Session, owner: str, schema: str) -> dict[str, Any]:
    row = session.one("keep/owner_rights", {"owner": owner, "schema": schema})
    assert row is not None
    return row


def ownership_refusal(
    session: Session, what: str, owner: str, schema: str, alter: str | None = None
) -> str | None:
    """Why the running role cannot drop `what` (owned by `owner`) and give its replacement to
    `owner`, saying which role or grant it needs (never a superuser's role: `alter` names it
    as ALTER ... OWNER TO does, to give it an owner of its own); None when it can."""
    r = _rights(session, owner, schema)
    me, who, where = quote_ident(r["me"]), quote_ident(owner), quote_ident(schema)
    problems = []
    if not r["can_create"]:
        problems.append(
            f"{me} may not create relations in schema {where} "
            f"(GRANT CREATE ON SCHEMA {where} TO {me})"
        )
    if owner != r["me"] and not (r["can_use"] and r["can_give"]):
        cannot = " or ".join(
            phrase
            for phrase, ok in (
                ("drop it", r["can_use"]),
                (f"give the new one to {who}", r["can_give"]),
            )
            if not ok
        )
        if r["owner_superuser"]:
            advice = superuser_owned(who, alter or what, me)
        elif r["can_give"]:  # a member that does not inherit the owner's privileges: become it
            role = owner.replace("\\", "\\\\").replace(" ", "\\ ")  # libpq's escapes
            advice = f"run as {who} (PGOPTIONS='-c role={role}', a SET ROLE for the session)"
        else:
            option = " WITH INHERIT TRUE, SET TRUE" if session.server.version_num >= 160000 else ""
            advice = f"connect as {who}, or GRANT {who} TO {me}{option}"
        problems.append(f"{what} belongs to {who}, and {me} cannot {cannot}: {advice}")
    if owner != r["me"] and not r["superuser"] and not r["owner_can_create"]:
        problems.append(
            f"{who} may not own a relation in schema {where} "
            f"(GRANT CREATE ON SCHEMA {where} TO {who})"
        )
    return "; ".join(problems) or None


def _attached(session: Session, oid: int) -> tuple[list[dict[str, Any]], list[carry.Dependent]]:
    """The views that read relation `oid`, and what else depends on it."""
    views: dict[int, dict[str, Any]] = {}
    others: dict[tuple[str, int], carry.Dependent] = {}
    for row in session.all("keep/attached", {"oid": oid}):
        key = (row["catalog"], row["objid"])
        if row["other"] is not None:
            dep = others.setdefault(
                key, carry.Dependent(row["catalog"], row["objid"], row["other"])
            )
            if row["column_name"] is not None:
                dep.columns.add(row["column_name"])
        elif row["view_oid"] is not None:
            views.setdefault(row["view_oid"], row)
    return list(views.values()), list(others.values())


def _views(
    session: Session, oid: int, what: str, refusals: list[str]
) -> tuple[list[ViewCopy], list[carry.Dependent]]:
    """Every view that reads relation `oid`, directly or through other views, in the order
    to create them (a view after those it reads); and what else depends on the relation
    itself (a view's other dependents, its triggers or rules, are not kept: refused)."""
    found: dict[int, ViewCopy] = {}
    todo = [(oid, what, 0)]
    own: list[carry.Dependent] = []
    while todo:
        here, here_name, depth = todo.pop(0)
        readers, others = _attached(session, here)
        if depth == 0:
            own = others
        else:
            advice = carry.DEFAULT_ADVICE
            refusals += [f"{dep.what} depends on {here_name} ({advice})" for dep in others]
        for row in readers:
            name = QualifiedName(row["view_schema"], row["view_name"])
            copy = found.get(row["view_oid"])
            if copy is None:
                found[row["view_oid"]] = ViewCopy(name, row["view_oid"], depth + 1)
                todo.append((row["view_oid"], f"view {name}", depth + 1))
            elif copy.depth < depth + 1:
                copy.depth = depth + 1  # it also reads a deeper view: create it later
                todo.append((copy.oid, f"view {name}", depth + 1))
    views = sorted(found.values(), key=lambda v: (v.depth, str(v.name)))
    for v in views:
        d = session.one("keep/view_definition", {"oid": v.oid})
        assert d is not None
        v.owner, v.options = d["owner"], d["options"]
        v.comment, v.column_comments = comments(session, v.oid)
        v.definition = d["definition"].strip().rstrip(";")
        v.grants = session.all("keep/grants", {"oid": v.oid})
        refusal = ownership_refusal(
            session, f"view {v.name}", v.owner, v.name.schema, f"VIEW {v.name}"
        )
        if refusal:
            refusals.append(refusal)
    return views, own


def inspect(
    session: Session,
    oid: int,
    name: QualifiedName,
    owner: str,
    own_indexes: Collection[tuple[bool, str]],
    columns: Collection[str],
    *,
    table: bool = True,
    own_checks: Collection[str] = (),
) -> Keep:
    """What replacing relation `oid` (`name`, owned by `owner`) must keep, and what it cannot:
    indices other than `own_indexes` (the replacement's own: (unique, definition after
    USING, without storage parameters)), grants on columns in `columns`, views, the
    ownership, the comments (a comment on a column the replacement lacks has nowhere to go:
    left out), and what carry.py carries (`table`: the replacement is a table, else a
    materialized view; `own_checks`: the CHECK constraints it has of its own)."""
    what = f"{name}"
    refusals: list[str] = []
    found = relation(session, name.schema, name.name)
    kind = {"m": "MATERIALIZED VIEW", "v": "VIEW"}.get(found.relkind if found else "", "TABLE")
    refusal = ownership_refusal(session, what, owner, name.schema, f"{kind} {name}")
    if refusal:
        refusals.append(refusal)
    grants = session.all("keep/grants", {"oid": oid})
    for g in grants:
        if g["column_name"] is not None and g["column_name"] not in columns:
            refusals.append(
                f"a grant of {g['privilege']} on column {g['column_name']} of {what} to "
                f"{g['grantee'] or 'PUBLIC'} (the new one has no such column)"
            )
    indexes, own = [], []
    for idx in session.all("keep/indexes", {"oid": oid}):
        if not idx["readable"]:
            refusals.append(f"index {idx['name']} on {what} (its definition cannot be read)")
        elif (idx["is_unique"], idx["shape"]) in own_indexes:
            own.append(idx)
        else:
            indexes.append(idx)
    views, dependents = _views(session, oid, what, refusals)
    carried, why = carry.inspect(
        session, oid, name, columns, dependents, table=table, own_checks=own_checks
    )
    refusals += why
    for m in carried.members:
        if m["member"] == "statistics" and m["owner"] != session.server.user:
            stats = f"statistics {QualifiedName(m['schema'], m['name'])}"
            refusal = ownership_refusal(session, stats, m["owner"], m["schema"])
            if refusal:
                refusals.append(refusal)
    comment, column_comments = comments(session, oid)
    column_comments = {c: text for c, text in column_comments.items() if c in columns}
    refusals = list(dict.fromkeys(p for r in refusals for p in r.split("; ")))  # each once
    return Keep(owner, grants, indexes, views, refusals, comment, column_comments, own, carried)


def spare_index_name(name: str, position: int) -> str:
    """The name an extra index has on the replacement until the swap gives it its own."""
    return f"{name.encode()[:44].decode(errors='ignore')}_epstats_new{position}"


def _grants(session: Session, rows: list[dict[str, Any]], target: QualifiedName) -> list[Statement]:
    """GRANT statements giving `target` the grants `rows` (as keep/grants reads them)."""
    out = []
    for g in rows:
        # a keyword the server printed: SELECT, UPDATE, ...
        privilege: sql.Composable = sql.SQL(g["privilege"])
        if g["column_name"] is not None:
            privilege = sql.SQL("{} ({})").format(privilege, sql.Identifier(g["column_name"]))
        query = session.statement(
            "keep/grant",
            privileges=privilege,
            relation=(target.schema, target.name),
            grantee=sql.Identifier(g["grantee"]) if g["grantee"] else sql.SQL("PUBLIC"),
            option=sql.SQL(" WITH GRANT OPTION" if g["grantable"] else ""),
        )
        out.append(Statement(query))
    return out


def _comments(
    session: Session,
    kind: sql.SQL,
    relation: QualifiedName,
    comment: str | None,
    column_comments: dict[str, str],
) -> list[Statement]:
    """COMMENT statements giving `relation` a comment and its columns theirs."""
    ident = (relation.schema, relation.name)
    out = []
    if comment is not None:
        query = session.statement(
            "keep/comment", kind=kind, relation=ident, comment=sql.Literal(comment)
        )
        out.append(Statement(query))
    for column, text in column_comments.items():
        query = session.statement(
            "keep/comment_column", attribute=(*ident, column), comment=sql.Literal(text)
        )
        out.append(Statement(query))
    return out


def onto_new(session: Session, keep: Keep, new: QualifiedName, kind: sql.SQL) -> list[Statement]:
    """In the replacement's build: its comments, extra indices (under spare names), owner and
    grants (the comments first, while the running role still owns it)."""
    out = _comments(session, kind, new, keep.comment, keep.column_comments)
    for position, idx in enumerate(keep.indexes):
        query = session.statement(
            "keep/create_index",
            unique=sql.SQL("UNIQUE " if idx["is_unique"] else ""),
            index=spare_index_name(idx["name"], position),
            relation=(new.schema, new.name),
            indexed=sql.SQL(idx["definition"]),  # as the server printed it
        )
        out.append(Statement(query))
        index = QualifiedName(new.schema, spare_index_name(idx["name"], position))
        if idx["tablespace"] is not None:  # (its storage parameters are in its definition)
            out += carry.options(
                session, sql.SQL("INDEX"), index, {"tablespace": idx["tablespace"]}
            )
        if idx["comment"] is not None:
            out += _comments(session, sql.SQL("INDEX"), index, idx["comment"], {})
    if keep.owner != session.server.user:
        out.append(
            Statement(
                session.statement(
                    "keep/alter_owner", kind=kind, relation=(new.schema, new.name), owner=keep.owner
                )
            )
        )
    return out + _grants(session, keep.grants, new)


def before_drop(session: Session, keep: Keep) -> list[Statement]:
    """In the swap, before the old relation is dropped: drop the views that read it."""
    if not keep.views:
        return []
    names = sql.SQL(", ").join(sql.Identifier(v.name.schema, v.name.name) for v in keep.views)
    return [Statement(session.statement("keep/drop_views", views=names))]


def after_rename(session: Session, keep: Keep, name: QualifiedName) -> list[Statement]:
    """In the swap, once the replacement has the old name: its extra indices get their names
    back, what carry.py creates again (constraints, policies, triggers, rules, statistics)
    is, and the views are created again on it, with their comments, owners and grants."""
    out = [
        Statement(
            session.statement(
                "view/rename_index",
                index=(name.schema, spare_index_name(idx["name"], position)),
                new_name=idx["name"],
            )
        )
        for position, idx in enumerate(keep.indexes)
    ]
    out += carry.after_rename(session, keep.carried, name)
    for v in keep.views:
        view = (v.name.schema, v.name.name)
        options = sql.SQL(" WITH ({})").format(sql.SQL(v.options)) if v.options else sql.SQL("")
        definition = sql.SQL(v.definition)  # pg_get_viewdef, valid in this session
        out.append(
            Statement(
                session.statement(
                    "keep/create_view", view=view, with_options=options, definition=definition
                )
            )
        )
        kind = sql.SQL("VIEW")
        out += _comments(session, kind, v.name, v.comment, v.column_comments)
        if v.owner != session.server.user:
            query = session.statement("keep/alter_owner", kind=kind, relation=view, owner=v.owner)
            out.append(Statement(query))
        out += _grants(session, v.grants, v.name)
    return out
