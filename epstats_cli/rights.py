"""The rights a change needs, read from the catalog before it runs, and what grants them.

PostgreSQL stops at the first right a statement lacks, so a DBA who learns of missing grants
from errors learns of one per run. Instead, a changing command gathers every right it will
need (`Needs`: privileges on relations, schemas and the database; the owner's rights for
CREATE INDEX, DROP and ALTER; the owner's or, from PostgreSQL 17, MAINTAIN for REINDEX and
REFRESH; VACUUM and ANALYZE's own rule) and `lacking` reads them from the catalog
(has_table_privilege, has_schema_privilege, pg_has_role), so that all that are missing are
named at once, each with the GRANT, owner or role that gives it (preflight.py refuses the
command with them; a task whose right is missing fails with it). The hint of errors.RULES
(permissions.py) stays for what cannot be foreseen here.

The module is over 400 lines because what every command and task needs, and how the catalog
tells whether the role has it, is one table: split, a need and its reading would drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from epstats_cli.catalog import relation_exists
from epstats_cli.config import QualifiedName, quote_ident
from epstats_cli.db import Session
from epstats_cli.endpoints import Normalization
from epstats_cli.permissions import MAINTAIN_FROM, superuser_owned
from epstats_cli.rollup.build import new_name
from epstats_cli.rollup.inspect import identify

PRIVILEGE_ORDER = ("USAGE", "CREATE", "SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
RECORD = "record the run"
DDL_KIND = {"m": "MATERIALIZED VIEW", "v": "VIEW"}  # ALTER ... OWNER TO; anything else: TABLE


def _ordered(privileges: Iterable[str]) -> list[str]:
    return sorted(set(privileges), key=PRIVILEGE_ORDER.index)


@dataclass(frozen=True)
class Lack:
    """One missing right: what is missing, what it is needed for, and what gives it."""

    what: str
    why: str
    fix: str

    def __str__(self) -> str:
        why = f" ({self.why})" if self.why else ""
        return f"{self.what}{why}" + (f": {self.fix}" if self.fix else "")


# What a right is on: ("relation", QualifiedName), ("schema", name), ("database", ""), and
# the owner's rights ("owner"), REINDEX/REFRESH ("maintain"), VACUUM/ANALYZE ("vacuum") on a
# relation (QualifiedName).
Key = tuple[str, QualifiedName | str]


@dataclass
class Needs:
    """Rights a change needs, merged by object: for each, the privileges (a verb for vacuum,
    "" for the owner's rights and maintain), each with what it is needed for."""

    wants: dict[Key, dict[str, list[str]]] = field(default_factory=dict)

    def _add(
        self, kind: str, obj: QualifiedName | str, privileges: Iterable[str], why: str
    ) -> None:
        privs = self.wants.setdefault((kind, obj), {})
        for p in privileges:
            whys = privs.setdefault(p, [])
            if why and why not in whys:
                whys.append(why)

    def on(self, relation: QualifiedName, *privileges: str, why: str) -> Needs:
        """Privileges on a relation (and USAGE on its schema, which naming it needs)."""
        self._add("relation", relation, privileges, why)
        return self.in_schema(relation.schema, "USAGE", why=why)

    def in_schema(self, schema: str, *privileges: str, why: str) -> Needs:
        self._add("schema", schema, privileges, why)
        return self

    def in_database(self, *privileges: str, why: str) -> Needs:
        self._add("database", "", privileges, why)
        return self

    def owned(self, relation: QualifiedName, why: str) -> Needs:
        """The owner's rights (CREATE INDEX, DROP INDEX, DROP, ALTER)."""
        self._add("owner", relation, ("",), why)
        return self.in_schema(relation.schema, "USAGE", why=why)

    def maintained(self, relation: QualifiedName, why: str) -> Needs:
        """REINDEX or REFRESH: the owner's rights, or MAINTAIN from PostgreSQL 17."""
        self._add("maintain", relation, ("",), why)
        return self.in_schema(relation.schema, "USAGE", why=why)

    def vacuumed(self, relation: QualifiedName, verb: str) -> Needs:
        """VACUUM or ANALYZE (`verb`): see vacuum_lack."""
        self._add("vacuum", relation, (verb,), "")
        return self.in_schema(relation.schema, "USAGE", why=verb.upper())

    def merge(self, other: Needs) -> Needs:
        for (kind, obj), privs in other.wants.items():
            for p, whys in privs.items():
                for why in whys or [""]:
                    self._add(kind, obj, (p,), why)
        return self

    def of(self, kind: str) -> list[tuple[Any, dict[str, list[str]]]]:
        """The objects of one kind, with their privileges."""
        return [(obj, privs) for (k, obj), privs in self.wants.items() if k == kind]


def _reason(privs: dict[str, list[str]], missing: Iterable[str]) -> str:
    """What the missing privileges are needed for."""
    out: list[str] = []
    for p in missing:
        out += [w for w in privs.get(p, []) if w not in out]
    return "; ".join(out)


RUNS = QualifiedName("epstats", "runs")
STATE = QualifiedName("epstats", "rollup_state")
MAP = QualifiedName("epstats", "endpoint_map")


def record_needs(session: Session, needs: Needs | None = None) -> Needs:
    """What recording a run needs (INSERT ... RETURNING, UPDATE ... WHERE id), once `epstats
    init` has created epstats.runs (before, nothing is recorded)."""
    needs = needs or Needs()
    if relation_exists(session, RUNS.schema, RUNS.name):
        needs.on(RUNS, "SELECT", "INSERT", "UPDATE", why=RECORD)
    return needs


@dataclass(frozen=True)
class RollupShape:
    """What the rollup is, as rollup.inspect.identify says, without reading it (which may need
    a right)."""

    name: QualifiedName
    exists: bool = False
    # built by epstats (its rollup_state row, or an earlier epstats's comment), or perhaps:
    # this role cannot read rollup_state to tell, so its rights are asked for as if it were
    ours: bool = False
    strategy: str | None = None
    # rollup.facts reads its bookkeeping row: populated, with every rollup column
    read_by_facts: bool = False
    state_table: bool = False  # epstats.rollup_state exists


def rollup_shape(session: Session, name: QualifiedName | None = None) -> RollupShape:
    """The rollup as rollup.inspect.identify describes it (the one reader of whose it is)."""
    info = identify(session, name)
    readable = info.populated and not info.missing_columns
    ours = info.ours or info.unknown
    return RollupShape(info.name, info.exists, ours, info.strategy, readable, info.state_table)


def facts_needs(session: Session) -> Needs:
    """What rollup.facts(contents=False) reads: the rollup's bookkeeping row, and its row in
    epstats.rollup_state (whose the rollup is, and what it was built with)."""
    shape, needs = rollup_shape(session), Needs()
    why = "read the rollup's as-of"
    if shape.read_by_facts:
        needs.on(shape.name, "SELECT", why=why)
    if shape.state_table:
        needs.on(STATE, "SELECT", why="read what the rollup was built with")
    return needs


def history_needs() -> Needs:
    """Pruning the run history and closing the runs of dead processes (cleanup)."""
    return Needs().on(RUNS, "SELECT", "UPDATE", "DELETE", why="prune epstats.runs")


def spare_needs(session: Session) -> Needs:
    """Dropping the new rollup a stopped `view build --replace` left, and its state row."""
    spare = new_name(session.config.view_name)
    needs = Needs().owned(spare, why="drop what a stopped view build --replace left")
    if relation_exists(session, STATE.schema, STATE.name):
        needs.on(STATE, "SELECT", "DELETE", why="delete its state row")
    return needs


def map_needs(session: Session, writes: bool) -> Needs:
    """With endpoint normalization on (and the map there): reading epstats.endpoint_map (a
    statement that joins it), and with `writes` mapping new raw endpoints into it."""
    if not Normalization.of(session.config).active:
        return Needs()
    if not relation_exists(session, MAP.schema, MAP.name):
        return Needs()  # endpoints.require_map says itself what to do
    if writes:
        return Needs().on(MAP, "SELECT", "INSERT", why="map raw endpoints to normalized ones")
    return Needs().on(MAP, "SELECT", why="read the endpoint map")


def refresh_needs(session: Session, full: bool = False) -> Needs:
    """Refreshing the rollup epstats built: a materialized view needs its owner's rights (or
    MAINTAIN); an incremental one's days are deleted and inserted; both write the state row,
    which reads the rollup's as-of. With normalization on, a materialized or a `full`
    refresh maps the days' raw endpoints (an incremental one of recent days does not)."""
    shape, needs = rollup_shape(session), Needs()
    if not shape.exists or not shape.ours:
        return needs  # refresh says itself why it cannot run
    needs.merge(facts_needs(session))
    why = "refresh the rollup"
    if shape.strategy == "incremental":
        needs.on(shape.name, "SELECT", "INSERT", "DELETE", why=why)
        needs.on(session.config.source.table, "SELECT", why=why)
        if full:
            needs.merge(map_needs(session, writes=True))
    else:
        needs.maintained(shape.name, why="REFRESH MATERIALIZED VIEW")
        needs.merge(map_needs(session, writes=True))
    if shape.state_table:
        needs.on(shape.name, "SELECT", why="record the refresh")
        needs.on(STATE, "SELECT", "INSERT", "UPDATE", why="record the refresh")
    return needs


def _validity(session: Session, oid: int) -> list[bool]:
    """Whether each index on the table `oid` is valid, from the catalog alone (a REINDEX or a
    plain REFRESH holding its indices does not make the rights check wait)."""
    return [bool(r["valid"]) for r in session.all("catalog/index_validity", {"oid": oid})]


def task_needs(session: Session, task: str, targets: Iterable[tuple[QualifiedName, int]]) -> Needs:
    """Every right a maintenance task needs besides recording its run, given the relations it
    works on (maintenance.targets: name, oid)."""
    needs = Needs()
    if task in ("vacuum", "analyze"):
        for name, _oid in targets:
            needs.vacuumed(name, task)
    elif task == "reindex":
        for name, oid in targets:
            if any(_validity(session, oid)):
                needs.maintained(name, why="REINDEX")
    elif task == "cleanup":
        if relation_exists(session, RUNS.schema, RUNS.name):
            needs.merge(history_needs())
        for name, oid in targets:
            if not all(_validity(session, oid)):
                needs.owned(name, why="drop its invalid indices")
        spare = new_name(session.config.view_name)
        if relation_exists(session, spare.schema, spare.name):
            needs.merge(spare_needs(session))
    elif task == "refresh":
        needs.merge(refresh_needs(session))
    elif task == "verify":
        needs.merge(verify_needs(session))
        needs.merge(refresh_needs(session))  # a day that differs is recomputed
    elif task == "retention" and session.config.source.retention is not None:
        # verify a day, repair it, then delete its raw rows (off: the task never runs)
        needs.merge(verify_needs(session))
        needs.merge(refresh_needs(session))
        needs.on(session.config.source.table, "DELETE", why="retire raw rows")
    return needs


def verify_needs(session: Session, ours_only: bool = True) -> Needs:
    """Comparing the rollup with the raw rows: the verify task's (a rollup epstats built), and
    `view verify`'s (any, `ours_only` False)."""
    shape, needs = rollup_shape(session), Needs()
    if shape.exists and (shape.ours or not ours_only):
        why = "compare the rollup with the raw rows"
        needs.on(session.config.source.table, "SELECT", why=why)
        needs.on(shape.name, "SELECT", why=why)
        needs.merge(map_needs(session, writes=False))  # the raw rows' endpoints, normalized
    return needs


# --- reading them from the catalog ------------------------------------------------------------


def _role(session: Session) -> str:
    return quote_ident(session.server.user)


def relation_rights(
    session: Session, relation: QualifiedName, privileges: Iterable[str] = ()
) -> dict[str, Any] | None:
    """The role's rights on a relation (see sql/rights/relation.sql); None when it does not
    exist."""
    return session.one(
        "rights/relation",
        {"schema": relation.schema, "name": relation.name, "privileges": _ordered(privileges)},
    )


def owner_fix(session: Session, row: dict[str, Any]) -> str:
    """How to get the owner's rights on a relation: connect as the owner, or be its member
    (never a superuser's member: that is every right; see permissions.superuser_owned)."""
    owner, role = quote_ident(row["owner"]), _role(session)
    if row["owner_is_superuser"]:
        kind = DDL_KIND.get(row["relkind"], "TABLE")
        return superuser_owned(owner, f"{kind} {row['relation']}", role)
    return f"connect as {owner}, or GRANT {owner} TO {role}"


def maintain_fix(session: Session, row: dict[str, Any]) -> str:
    """How to get the right to REINDEX or REFRESH a relation."""
    if session.server.version_num >= MAINTAIN_FROM:
        role = _role(session)
        return (
            f"GRANT MAINTAIN ON {row['relation']} TO {role} (or GRANT pg_maintain TO {role}), "
            f"or {owner_fix(session, row)}"
        )
    return f"only its owner {quote_ident(row['owner'])} may: {owner_fix(session, row)}"


def maintain_lack(session: Session, relation: QualifiedName, why: str) -> Lack | None:
    """REINDEX or REFRESH of `relation` is not allowed to the role: what gives it."""
    row = relation_rights(session, relation)
    if row is None or row["may_maintain"]:
        return None
    what = (
        f"MAINTAIN on {row['relation']}"
        if session.server.version_num >= MAINTAIN_FROM
        else f"the owner's rights on {row['relation']}"
    )
    return Lack(what, why, maintain_fix(session, row))


def vacuum_lack(session: Session, oid: int, verb: str) -> Lack | None:
    """VACUUM or ANALYZE (`verb`) of a table (and its partitions) is not allowed to the role:
    up to PostgreSQL 16 only the owner (or a role with the owner's privileges) and the database
    owner may; from 17 also MAINTAIN and pg_maintain. The server would only warn and skip."""
    denied = session.all("catalog/maintain_denied", {"oid": oid})
    if not denied:
        return None
    role = _role(session)
    first = denied[0]
    which = first["relation"] + (f" (and {len(denied) - 1} more)" if len(denied) > 1 else "")
    owner = quote_ident(first["owner"])
    if session.server.version_num >= MAINTAIN_FROM:
        fix = (
            f"it needs the MAINTAIN privilege (GRANT MAINTAIN ON {first['relation']} TO {role}, "
            f"or GRANT pg_maintain TO {role}), or to connect as the owner {owner}"
        )
    else:
        become = f"connect as {owner}, or GRANT {owner} TO {role}"
        if first["owner_is_superuser"]:  # never its role: see permissions.superuser_owned
            kind = DDL_KIND.get(first["relkind"], "TABLE")
            become = superuser_owned(owner, f"{kind} {first['relation']}", role)
        fix = (
            f"only its owner {owner} (or a role with {owner}'s privileges) and the database "
            f"owner may: {become}"
        )
    return Lack(f"the right to {verb} {which}", "", fix)


def lacking(session: Session, needs: Needs) -> list[Lack]:
    """Every right in `needs` the role lacks, each once (objects that do not exist are left to
    the command, which says so in its own words)."""
    role = _role(session)
    out: list[Lack] = []
    for _db, privs in needs.of("database"):
        row = session.one("rights/database", {"privileges": _ordered(privs)})
        if row is not None and row["missing"]:
            shown, db = ", ".join(row["missing"]), quote_ident(row["database"])
            fix = f"GRANT {shown} ON DATABASE {db} TO {role}"
            out.append(Lack(f"{shown} on database {db}", _reason(privs, row["missing"]), fix))
    for schema, privs in needs.of("schema"):
        row = session.one("rights/schema", {"schema": schema, "privileges": _ordered(privs)})
        if row is not None and row["missing"]:
            shown, name = ", ".join(row["missing"]), quote_ident(schema)
            fix = f"GRANT {shown} ON SCHEMA {name} TO {role}"
            out.append(Lack(f"{shown} on schema {name}", _reason(privs, row["missing"]), fix))
    for relation, privs in needs.of("relation"):
        row = relation_rights(session, relation, privs)
        if row is not None and row["missing"]:
            shown, name = ", ".join(row["missing"]), row["relation"]
            fix = f"GRANT {shown} ON {name} TO {role}"
            out.append(Lack(f"{shown} on {name}", _reason(privs, row["missing"]), fix))
    owned = {relation for relation, _p in needs.of("owner")}
    for relation, privs in needs.of("owner"):
        row = relation_rights(session, relation)
        if row is not None and not row["owns"]:
            what = f"the owner's rights on {row['relation']}"
            out.append(Lack(what, _reason(privs, [""]), owner_fix(session, row)))
    maintain: dict[QualifiedName, int] = {}  # lacking MAINTAIN (17+): where it is in `out`
    for relation, privs in needs.of("maintain"):
        if relation not in owned:
            lack = maintain_lack(session, relation, _reason(privs, [""]))
            if lack is not None:
                maintain[relation] = len(out)
                out.append(lack)
    for relation, verbs in needs.of("vacuum"):
        row = relation_rights(session, relation)
        lack = None if row is None else vacuum_lack(session, int(row["oid"]), _verbs(verbs))
        if lack is None:
            continue
        at = maintain.get(relation)
        if (
            at is not None
            and session.server.version_num >= MAINTAIN_FROM
            and "more)" not in lack.what
        ):
            # MAINTAIN on the table gives VACUUM and ANALYZE too: one grant, one line
            was = out[at]
            out[at] = Lack(was.what, f"{was.why}; {_verbs(v.upper() for v in verbs)}", was.fix)
            continue
        out.append(lack)
    return out


def _verbs(verbs: Iterable[str]) -> str:
    return " and ".join(sorted(verbs, key=lambda v: (v.lower() != "vacuum", v)))


def summary(lacks: Iterable[Lack]) -> str:
    """The lacks on one line (a task's reason)."""
    return "; ".join(str(lack) for lack in lacks)
