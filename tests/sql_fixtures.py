"""Prepare every SQL file against a real server: catches syntax and catalog errors per version."""

from __future__ import annotations

import re
from typing import Any

import psycopg

from epstats_cli import queries
from epstats_cli.db import Session
from epstats_cli.schema import source_identifiers

# Placeholders beyond the source table's, with values that exist in a freshly initialised db.
EXTRA_IDENTIFIERS: dict[str, Any] = {}


def _identifiers(session: Session) -> dict[str, Any]:
    ids: dict[str, Any] = dict(source_identifiers(session))
    ids.update(EXTRA_IDENTIFIERS)
    return ids


def check_statement(session: Session, name: str, version: int) -> None:
    """Run a statement's text through the parser and planner inside a rolled-back transaction."""
    text = queries.path_for(name, version).read_text()
    needed = set(re.findall(r"(?<!\{)\{(\w+)\}", text))
    ids = {k: v for k, v in _identifiers(session).items() if k in needed}
    missing = needed - set(ids)
    assert not missing, f"{name}: no test value for placeholders {missing}"
    query = queries.get(name, version, **ids)
    params = {p: None for p in re.findall(r"%\((\w+)\)s", text)}
    conn = session.conn
    try:
        with conn.transaction(force_rollback=True):
            if re.match(r"\s*(--[^\n]*\n\s*)*(SELECT|WITH|INSERT|UPDATE|DELETE)\b", text, re.I):
                conn.execute(psycopg.sql.SQL("EXPLAIN ") + query, params)
            elif "CONCURRENTLY" in text.upper() or re.search(r"\bVACUUM\b", text, re.I):
                pass  # cannot run in a transaction; exercised by the command tests
            else:
                conn.execute(query, params)
    except psycopg.Error as exc:
        raise AssertionError(f"{name} failed on {version}: {exc}") from exc
