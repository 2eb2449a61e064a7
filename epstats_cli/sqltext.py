"""Statements as text, exactly as the server receives them (for --dry-run and run history)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql
from psycopg.adapt import PyFormat, Transformer

# A named placeholder the SQL casts itself (`%(retention)s::interval`), or an escaped `%%`
# (matched so that `%%(x)s` is never read as a placeholder).
_CAST_PLACEHOLDER = re.compile(r"%%|%\((\w+)\)s(?=::)")


def as_text(
    conn: psycopg.Connection[Any],
    query: sql.Composed | sql.SQL,
    params: Mapping[str, Any] | None = None,
) -> str:
    """The statement with identifiers quoted and values bound client-side.

    A value binds as a typed literal (`'90 days'::interval`), except where the SQL casts the
    placeholder itself: there it is the bare literal, so the text reads `'90 days'::interval`,
    not `'90 days'::interval::interval` (the same statement, said once)."""
    cur = psycopg.ClientCursor(conn)
    try:
        if not params:
            return cur.mogrify(query, params).strip()
        tx = Transformer(conn)

        def bare(match: re.Match[str]) -> str:
            name = match.group(1)
            if name is None or name not in params:
                return match.group(0)
            value = params[name]
            literal = (
                b"NULL"
                if value is None
                else bytes(tx.get_dumper(value, PyFormat.TEXT).quote(value))
            )
            return literal.decode(conn.info.encoding).replace("%", "%%")

        text = _CAST_PLACEHOLDER.sub(bare, query.as_string(conn))
        return cur.mogrify(text, params).strip()
    finally:
        cur.close()
