"""Helpers for database tests: fill tables, snapshot catalogs, a writer that times inserts."""

from __future__ import annotations

import threading
import time
from typing import Any

import psycopg

FILL = """
INSERT INTO {table} ({endpoint}, {timestamp}, {response_time}, {status})
SELECT '/api/v1/e' || (g % 40),
       now() - (g % 100000) * interval '25 seconds',
       CASE WHEN g % 97 = 0 THEN NULL ELSE (g % 1000) / 3.0 END,
       CASE WHEN g % 53 = 0 THEN 503 WHEN g % 31 = 0 THEN 404 ELSE 200 END
FROM generate_series(1, {rows}) g
"""


def fill(
    conn: psycopg.Connection[Any],
    rows: int,
    table: str = "requests",
    endpoint: str = "endpoint",
    timestamp: str = '"timestamp"',
    response_time: str = "response_time",
    status: str = "status",
) -> None:
    conn.execute(
        FILL.format(
            table=table,
            endpoint=endpoint,
            timestamp=timestamp,
            response_time=response_time,
            status=status,
            rows=rows,
        )
    )


CATALOG = """
SELECT n.nspname, c.relname, c.relkind, i.indisvalid, pg_get_indexdef(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_index i ON i.indexrelid = c.oid
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
ORDER BY 1, 2
"""


def catalog(conn: psycopg.Connection[Any]) -> list[tuple[Any, ...]]:
    return conn.execute(CATALOG).fetchall()


def invalid_indexes(conn: psycopg.Connection[Any]) -> list[str]:
    rows = conn.execute(
        "SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE NOT i.indisvalid"
    ).fetchall()
    return [r[0] for r in rows]


class Writer:
    """Inserts one row at a time in autocommit until stopped; records the slowest insert."""

    def __init__(self, dsn: str, table: str = "requests") -> None:
        self.dsn = dsn
        self.table = table
        self.max_wait = 0.0
        self.count = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                start = time.monotonic()
                try:
                    conn.execute(f"INSERT INTO {self.table} VALUES ('/writer', now(), 1.5, 200)")
                except psycopg.Error as exc:
                    self.errors.append(str(exc))
                self.max_wait = max(self.max_wait, time.monotonic() - start)
                self.count += 1
                time.sleep(0.005)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
