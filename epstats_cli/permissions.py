"""What a permission error (SQLSTATE 42501) is missing, and the grant or role that fixes it.

PostgreSQL says only "permission denied for table runs" or "must be owner of table requests":
neither the schema nor the privilege. The statement that raised the error says both, so
db.Session notes it on the exception (with the role and server version), and errors.RULES
turns the two into a hint: "INSERT on epstats.runs is missing: GRANT ... TO role".
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# epstats' own tables: it reads, writes and prunes them, so one grant serves every command
OWN_TABLES = {("epstats", "runs"), ("epstats", "rollup_state")}
OWN_TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE")
MAINTAIN_FROM = 170000  # PostgreSQL 17: the MAINTAIN privilege (and pg_maintain)
MAINTAIN_STATEMENTS = ("VACUUM", "ANALYZE", "REINDEX", "REFRESH", "CLUSTER", "LOCK")

RELATION_KINDS = ("table", "relation", "view", "materialized view", "foreign table", "index")
# longest first, so that "materialized view" is not read as "view"
_ALL_KINDS = (*RELATION_KINDS, "sequence", "schema", "database", "function", "procedure")
_KINDS = "|".join(sorted(_ALL_KINDS, key=len, reverse=True))
_DENIED = re.compile(rf"^permission denied for ({_KINDS}) (.+)$")
_NOT_OWNER = re.compile(rf"^must be owner of ({_KINDS}) (.+)$")
_PART = r'(?:"(?:[^"]|"")+"|[A-Za-z_][\w$]*)'
_QUALIFIED = re.compile(rf"({_PART})\s*\.\s*({_PART})")
_WRITE = re.compile(
    rf"(?<![Dd][Oo] )(?<![Ff][Oo][Rr] )\b(INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE)"
    rf"\s+(?:TABLE\s+)?(?:ONLY\s+)?({_PART}(?:\s*\.\s*{_PART})?)",
    re.IGNORECASE,
)


def superuser_owned(owner: str, alter: str, role: str) -> str:
    """What to do about an object a superuser owns, when the running role lacks the owner's
    rights: never to grant the superuser's role (that is every right on the server), but to run
    as a superuser, or to give the object an owner of its own. `alter` names the object as
    ALTER ... OWNER TO does ("VIEW api.daily"), the names already quoted."""
    return (
        f"its owner {owner} is a superuser, whose role is never to be granted: a superuser must "
        f"run this, or give it an owner of its own (ALTER {alter} OWNER TO {role})"
    )


@dataclass(frozen=True)
class Context:
    """Where an error came from: the statement's text, the role, the server version."""

    statement: str | None = None
    role: str | None = None
    server_version: int | None = None


def note(exc: BaseException, statement: str | None, role: str, server_version: int) -> None:
    """Record on a database error the statement, role and server it came from."""
    if context_of(exc).statement is None:
        setattr(exc, "_epstats_context", Context(statement, role, server_version))  # noqa: B010


def context_of(exc: BaseException) -> Context:
    found = getattr(exc, "_epstats_context", None)
    return found if isinstance(found, Context) else Context()


def _unquote(part: str) -> str:
    return part[1:-1].replace('""', '"') if part.startswith('"') else part.lower()


def _shown(name: str) -> str:
    return name if re.fullmatch(r"[a-z_][a-z0-9_$]*", name) else '"' + name.replace('"', '""') + '"'


def _strip_comments(statement: str) -> str:
    return re.sub(r"--[^\n]*", "", statement)


def _qualified(name: str, statement: str) -> str:
    """`schema.name` as the statement spells the relation `name`, else the name alone."""
    for m in _QUALIFIED.finditer(statement):
        if _unquote(m.group(2)) == name:
            return f"{_shown(_unquote(m.group(1)))}.{_shown(name)}"
    return _shown(name)


def _needed(name: str, statement: str) -> tuple[str, tuple[str, ...]]:
    """The privilege the statement needed on relation `name` (its verb, else SELECT), and
    every privilege it needs there."""
    for m in _WRITE.finditer(statement):
        target = m.group(2)
        if _unquote(re.split(r"\s*\.\s*", target)[-1]) != name:
            continue
        verb = m.group(1).split()[0].upper()
        more = (
            ["SELECT"] if re.search(r"\b(RETURNING|WHERE|ON\s+CONFLICT)\b", statement, re.I) else []
        )
        if verb == "INSERT" and re.search(r"\bDO\s+UPDATE\b", statement, re.I):
            more.append("UPDATE")
        order = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE")
        return verb, tuple(p for p in order if p in {verb, *more})
    return "SELECT", ("SELECT",)


@dataclass(frozen=True)
class Missing:
    """What is missing ("INSERT on epstats.runs") and what fixes it (a GRANT, or a role)."""

    what: str
    fix: str


def _role(ctx: Context) -> str:
    return _shown(ctx.role) if ctx.role else "<role>"


def _maintains(statement: str | None) -> bool:
    words = _strip_comments(statement or "").split()
    return bool(words) and words[0].upper() in MAINTAIN_STATEMENTS


def not_owner(line: str, ctx: Context) -> Missing | None:
    """`must be owner of table requests`: connect as the owner (or, from PostgreSQL 17, have
    MAINTAIN for VACUUM, ANALYZE, REINDEX, REFRESH)."""
    m = _NOT_OWNER.match(line)
    if m is None:
        return None
    kind, name = m.group(1), m.group(2)
    shown = _qualified(name, _strip_comments(ctx.statement or "")) if kind != "schema" else name
    fix = f"connect as the owner of {shown} (or a member of its owning role)"
    if _maintains(ctx.statement) and (ctx.server_version or 0) >= MAINTAIN_FROM:
        fix += f", or GRANT MAINTAIN ON {shown} TO {_role(ctx)}"
    return Missing(f"owner of {shown}", fix)


def privilege(line: str, ctx: Context) -> Missing | None:
    """`permission denied for table runs`, `... for schema epstats`, ...: the privilege the
    statement needed there and the GRANT that gives it."""
    m = _DENIED.match(line)
    if m is None:
        return None
    kind, name = m.group(1), m.group(2)
    statement = _strip_comments(ctx.statement or "")
    role = _role(ctx)
    creates = statement.lstrip().upper().startswith("CREATE")
    if kind == "schema":
        priv = "CREATE" if creates else "USAGE"
        return Missing(f"{priv} on schema {name}", f"GRANT {priv} ON SCHEMA {name} TO {role}")
    if kind == "database":
        priv = "CREATE" if creates else "CONNECT"
        return Missing(f"{priv} on database {name}", f"GRANT {priv} ON DATABASE {name} TO {role}")
    if kind in ("function", "procedure"):
        return Missing(
            f"EXECUTE on {kind} {name}", f"GRANT EXECUTE ON {kind.upper()} {name} TO {role}"
        )
    if kind == "sequence":
        return Missing(f"USAGE on sequence {name}", f"GRANT USAGE ON SEQUENCE {name} TO {role}")
    if not statement:
        return Missing(f"a privilege on {kind} {name}", f"see its grants with \\dp {name}")
    shown = _qualified(name, statement)
    if _maintains(statement) and kind == "index":  # MAINTAIN is granted on its table
        return Missing(
            f"MAINTAIN on the table of index {shown}",
            f"GRANT MAINTAIN ON <its table> TO {role} (or GRANT pg_maintain TO {role}, "
            "or connect as the table's owner)",
        )
    if _maintains(statement):  # PostgreSQL 17 and later say "permission denied" for these
        fix = f"GRANT MAINTAIN ON {shown} TO {role} (or connect as its owner)"
        return Missing(f"MAINTAIN on {shown}", fix)
    verb, needed = _needed(name, statement)
    schema = shown.split(".")[0] if "." in shown else None
    if schema is not None and (_unquote(schema), name) in OWN_TABLES:
        needed = OWN_TABLE_PRIVILEGES
    return Missing(f"{verb} on {shown}", f"GRANT {', '.join(needed)} ON {shown} TO {role}")
