"""`epstats generate`: synthetic request data made inside the server, in batches."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from epstats_cli.catalog import relation_exists
from epstats_cli.db import Session
from epstats_cli.db import now as db_now
from epstats_cli.errors import OperationFailed
from epstats_cli.execute import Executor, Mode, Statement, Step, statement_texts
from epstats_cli.history import TaskResult
from epstats_cli.schema import plan_init, source_identifiers

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
    sql: list[str]  # the statements, without BEGIN and COMMIT
    task: TaskResult  # the executor's result for the one step


def batch_seed(seed: int, batch: int) -> float:
    """A setseed() value in [-1, 1] for one batch."""
    return ((seed * 1_000_003 + batch * 7_919) % 2_000_001) / 1_000_000.0 - 1.0


def plan_generate(
    session: Session,
    opts: GenerateOptions,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[Step, dt.datetime, dt.datetime]:
    """The one step (a transaction: Ctrl-C leaves nothing behind) that loads opts.rows
    synthetic rows, and the period they cover; on_batch(rows so far, total) after each batch."""
    table = session.config.source.table
    ids = source_identifiers(session)
    statements: list[Statement] = []
    exists = relation_exists(session, table.schema, table.name)
    if not exists and not opts.create_table:
        raise OperationFailed(
            f"table {table} does not exist: add --create-table (or run epstats init "
            "--with-requests-table)"
        )
    if not exists:
        for found, query in plan_init(session, with_requests_table=True):
            if not found.present:
                statements.append(Statement(query))
    if opts.truncate:
        statements.append(Statement(session.statement("generate/truncate", **ids)))
    until = opts.until
    if until is None:
        _now, until = db_now(session)
    assert until is not None
    start = until - dt.timedelta(days=opts.days)
    offset = (
        until.astimezone(dt.timezone.utc)
        - until.astimezone(dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    ).total_seconds() / 86400
    insert = session.statement("generate/insert_batch", **ids)
    seed_q = session.statement("generate/seed")
    names, medians, errors = endpoint_profile(opts.endpoints, opts.error_rate)
    first = 0
    number = 0
    while first < opts.rows:
        size = min(BATCH_ROWS, opts.rows - first)
        statements.append(Statement(seed_q, {"seed": batch_seed(opts.seed, number)}))
        params = {
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
        }
        after = partial(on_batch, first + size, opts.rows) if on_batch else None
        statements.append(Statement(insert, params, after))
        first += size
        number += 1
    step = Step(
        "generate",
        str(table),
        f"{opts.rows:,} synthetic rows over {opts.days} days",
        statements,
        Mode.TRANSACTION,
        retries=0,  # a lock not granted at once fails the load, as any error does
        raise_failure=True,
    )
    return step, start, until


def generate(
    session: Session,
    opts: GenerateOptions,
    executor: Executor,
    on_batch: Callable[[int, int], None] | None = None,
) -> GenerateResult:
    """Insert opts.rows synthetic rows in one transaction (Ctrl-C leaves nothing behind)."""
    step, start, until = plan_generate(session, opts, on_batch)
    texts = statement_texts(session, step)[1:-1]  # without BEGIN and COMMIT
    result = executor.run(step)
    rows = 0 if executor.dry_run else opts.rows
    return GenerateResult(rows, result.seconds, start, until, texts, result)
