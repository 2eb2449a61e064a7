"""Statements as text, exactly as the server receives them (for --dry-run and run history)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import psycopg
from psycopg import sql


def as_text(
    conn: psycopg.Connection[Any],
    query: sql.Composed | sql.SQL,
    params: Mapping[str, Any] | None = None,
) -> str:
    """The statement with identifiers quoted and values bound client-side."""
    cur = psycopg.ClientCursor(conn)
    try:
        return cur.mogrify(query, params).strip()
    finally:
        cur.close()
