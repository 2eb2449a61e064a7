"""`epstats generate`: synthetic request data made inside the server, in batches."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from psycopg import sql

from epstats_cli import queries
from epstats_cli.catalog import relation_exists
from epstats_cli.db import Session
from epstats_cli.db import now as db_now
from epstats_cli.errors import OperationFailed
from epstats_cli.schema import plan_init, source_identifiers
from epstats_cli.sqltext import as_text

ENDPOINT_NAMES = [
    "/api/v1/users",
    "/api/v1/orders",
    "/api/v1/products",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/checkout",
    "/api/v1/login",
    "/api/v1/sessions",
    "/api/v1/payments",
    "/api/v1/inventory",
    "/api/v1/reviews",
    "/api/v1/recommendations",
    "/api/v1/notifications",
    "/api/v1/shipping",
    "/api/v1/invoices",
    "/api/v1/reports",
    "/health",
    "/metrics",
    "/api/v1/logout",
    "/api/v1/admin/audit",
]
BATCH_ROWS = 2_000_000
SIGMA = 0.55  # log-normal shape of every endpoint's latency


def endpoint_profile(count: int, error_rate: float) -> tuple[list[str], list[float], list[float]]:
    """Names and median latencies (ms) of `count` endpoints, hottest first, and the 5xx rates
    of the (up to five) classes they cycle through: half to 1.5 times the average rate."""
    names = [
        ENDPOINT_NAMES[i] if i < len(ENDPOINT_NAMES) else f"/api/v1/resource/{i}"
        for i in range(count)
    ]
    medians = [round(15 * 1.4 ** (i % 10) * (1 + (i % 7) * 0.1), 3) for i in range(count)]
    errors = [error_rate * (0.5 + i * 0.25) for i in range(min(count, 5))]
    return names, medians, errors


@dataclass(frozen=True)
class GenerateOptions:
    rows: int
    days: int
    endpoints: int = 20
    error_rate: float = 0.01
    seed: int = 1
    until: dt.datetime | None = None  # default: the start of the current hour
    truncate: bool = False
    create_table: bool = False


@dataclass
class GenerateResult:
    rows: int
    seconds: float
    start: dt.datetime
    until: dt.datetime
    sql: list[str]


def batch_seed(seed: int, batch: int) -> float:
    """A setseed() value in [-1, 1] for one batch."""
    return ((seed * 1_000_003 + batch * 7_919) % 2_000_001) / 1_000_000.0 - 1.0


def generate(
    session: Session,
    opts: GenerateOptions,
    dry_run: bool = False,
    on_batch: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Insert opts.rows synthetic rows in one transaction (Ctrl-C leaves nothing behind)."""
    v = session.server.version_num
    table = session.config.source.table
    ids = source_identifiers(session)
    statements: list[tuple[str, sql.Composed, dict[str, Any]]] = []
    exists = relation_exists(session, table.schema, table.name)
    if not exists and not opts.create_table:
        raise OperationFailed(
            f"table {table} does not exist: add --create-table (or run epstats init "
            "--with-requests-table)"
        )
    if not exists:
        for step, query in plan_init(session, with_requests_table=True):
            if not step.present:
                statements.append(("create", query, {}))
    if opts.truncate:
        statements.append(("truncate", queries.get("generate/truncate", v, **ids), {}))
    until = opts.until
    if until is None:
        _now, until = db_now(session)
    assert until is not None
    start = until - dt.timedelta(days=opts.days)
    offset = (
        until.astimezone(dt.timezone.utc)
        - until.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    ).total_seconds() / 86400
    insert = queries.get("generate/insert_batch", v, **ids)
    seed_q = queries.get("generate/seed", v)
    names, medians, errors = endpoint_profile(opts.endpoints, opts.error_rate)
    batches = []
    done = 0
    n = 0
    while done < opts.rows:
        size = min(BATCH_ROWS, opts.rows - done)
        batches.append((n, size))
        done += size
        n += 1
    first = 0
    for number, size in batches:
        statements.append(("seed", seed_q, {"seed": batch_seed(opts.seed, number)}))
        statements.append(
            (
                "insert",
                insert,
                {
                    "names": names,
                    "medians": medians,
                    "errors": errors,
                    "classes": len(errors),
                    "sigma": SIGMA,
                    "start_epoch": start.timestamp(),
                    "offset": offset,
                    "days": opts.days,
                    "endpoints": opts.endpoints,
                    "rows": size,
                    "first": first,
                    "total": opts.rows,
                },
            )
        )
        first += size
    texts = [as_text(session.conn, q, p or None) for _k, q, p in statements]
    if dry_run:
        return GenerateResult(0, 0.0, start, until, texts)
    begin = time.monotonic()
    inserted = 0
    with session.conn.transaction():
        for kind, query, params in statements:
            session.conn.execute(query, params or None)
            if kind == "insert":
                inserted += int(params["rows"])
                if on_batch:
                    on_batch(inserted, opts.rows)
    return GenerateResult(inserted, time.monotonic() - begin, start, until, texts)
