"""Watching a statement from a second connection while it runs (progress bars, whom a lock
wait waits for): one place for the thread, the connection and the rule that watching is never
worth failing the work for."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from epstats_cli.db import Session


@contextmanager
def polling(
    session: Session,
    application_name: str,
    interval: float,
    tick: Callable[[psycopg.Cursor[dict[str, Any]]], None],
) -> Iterator[None]:
    """Call tick(cursor) every `interval` seconds on a second connection while the block
    runs; a database error ends the watching quietly."""
    stop = threading.Event()

    def poll() -> None:
        try:
            with session.another(application_name) as c:
                cur = c.cursor(row_factory=dict_row)
                while not stop.wait(interval):
                    tick(cur)
        except psycopg.Error:
            return

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=2)
