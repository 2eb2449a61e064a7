"""Latency histograms: log-spaced buckets of a fixed relative accuracy alpha, as in DDSketch
(Masson, Rim, Lee, PVLDB 12(12), 2019).

With gamma = (1 + alpha) / (1 - alpha), a response time v > 0 falls in bucket
k = ceil(ln v / ln gamma), so gamma^(k-1) < v <= gamma^k, and the bucket stands for
2 gamma^k / (1 + gamma), within alpha of every value in it. Buckets of the same gamma merge by
adding counts: a window's histogram is the sum of its days'. A quantile q is read with
nearest-rank semantics (the value of rank ceil(q n) among the n response times, what
`percentile_disc` returns) from the running sum of the counts in bucket order, and is within
alpha of the exact value.

Zero has its own bucket, ZERO (it stands for 0); a negative value (bad data, kept as exactly
as the rest, so that every source reads the same percentiles) falls in the mirror image of its
absolute value's bucket below ZERO: NEGATIVE - k; -Infinity in the lowest, BELOW; Infinity and
NaN in the highest, BEYOND. Bucket order is value order. NULL response times are left out, as
from the averages.

The rollup stores one histogram per endpoint and day in two arrays of the same length,
ordered by bucket, with no empty bucket: `latency_buckets integer[]` and `latency_counts
bigint[]` (NULL when the day has no response time). The SQL that makes a bucket and the value
of one is in sql/fragments/latency_bucket.sql and latency_value.sql; this module composes it
and mirrors it in Python (for tests and the reader of a quantile).
"""

from __future__ import annotations

import math
import re
from typing import Any

from psycopg import sql

from epstats_cli.db import Session

# The buckets' integers: a finite v > 0 is within +-400,000 of 0 at any accuracy epstats takes
# (ln of the largest double / ln gamma at alpha = 0.001), and so is k of a negative one.
BELOW = -(2**31)  # -Infinity
NEGATIVE = -(2**30) - 2**29  # a finite v < 0: NEGATIVE - k, k the bucket of -v
ZERO = -(2**30)  # 0
BEYOND = 2**31 - 1  # Infinity and NaN
LATENCY_COLUMNS = ("latency_buckets", "latency_counts")


def ln_gamma(accuracy: float) -> float:
    """ln gamma for a relative accuracy alpha (0 < alpha < 1)."""
    return math.log((1 + accuracy) / (1 - accuracy))


def bucket(value: float, accuracy: float) -> int:
    """The bucket of one value (as sql/fragments/latency_bucket.sql computes it)."""
    if math.isnan(value) or value == math.inf:
        return BEYOND
    if value == -math.inf:
        return BELOW
    if value == 0:
        return ZERO
    if value < 0:
        return NEGATIVE - math.ceil(math.log(-value) / ln_gamma(accuracy))
    return math.ceil(math.log(value) / ln_gamma(accuracy))


def value(k: int, accuracy: float) -> float:
    """The value bucket `k` stands for (as sql/fragments/latency_value.sql computes it)."""
    if k == ZERO:
        return 0.0
    if k == BEYOND:
        return math.inf
    if k == BELOW:
        return -math.inf
    lg = ln_gamma(accuracy)
    if k < ZERO:
        return -2 * math.exp((NEGATIVE - k) * lg) / (1 + math.exp(lg))
    return 2 * math.exp(k * lg) / (1 + math.exp(lg))


def _placeholders(accuracy: float) -> dict[str, sql.Composable]:
    """The buckets' constants as both fragments name them."""
    return {
        "ln_gamma": sql.Literal(ln_gamma(accuracy)),
        "zero": sql.Literal(ZERO),
        "negative": sql.Literal(NEGATIVE),
        "below": sql.Literal(BELOW),
        "beyond": sql.Literal(BEYOND),
    }


def bucket_sql(session: Session, expression: sql.Composable, accuracy: float) -> sql.Composed:
    """SQL: the bucket of the response time `expression` (NULL for NULL)."""
    return session.statement(
        "fragments/latency_bucket", value=expression, **_placeholders(accuracy)
    )


def value_sql(session: Session, expression: sql.Composable, accuracy: float) -> sql.Composed:
    """SQL: the value the bucket `expression` stands for."""
    return session.statement(
        "fragments/latency_value", bucket=expression, **_placeholders(accuracy)
    )


# The percentiles every report row carries (p50_ms, p95_ms, p99_ms); --percentiles adds others.
DEFAULT_PERCENTILES = (50.0, 95.0, 99.0)


def percentile_key(p: float) -> str:
    """The report key of a percentile: 50 -> p50_ms, 99.9 -> p99_9_ms."""
    text = f"{p:.10f}".rstrip("0").rstrip(".")
    return f"p{text.replace('.', '_')}_ms"


# A percentile as --percentiles takes it: plain decimal digits, at most 4 after the point (its
# report key, p99_99_ms, names it exactly; no exponent, no other script's digits).
PERCENTILE_TEXT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,4})?")


def parse_percentiles(text: str) -> tuple[float, ...]:
    """--percentiles `50,90,99.9`: numbers in (0, 100] with at most 4 decimals; ValueError
    saying what is wrong."""
    found: list[float] = []
    for part in text.split(","):
        item = part.strip()
        if not PERCENTILE_TEXT.fullmatch(item):
            raise ValueError(
                f"{item!r} is not a percentile like 50, 99.9 or 99.99 (at most 4 decimals)"
            )
        p = float(item)
        if not 0 < p <= 100:
            raise ValueError(f"{item} is not in (0, 100]")
        found.append(p)
    return tuple(found)


def percentiles(extra: tuple[float, ...] = ()) -> tuple[float, ...]:
    """The percentiles a report reads: the defaults and `extra`, once each, ascending."""
    keys = {percentile_key(p): p for p in (*DEFAULT_PERCENTILES, *extra)}
    return tuple(sorted(keys.values()))


def fractions(wanted: tuple[float, ...]) -> list[float]:
    """The percentiles as the fractions a statement reads them with (%(quantiles)s)."""
    return [p / 100 for p in wanted]


def quantiles_sql(session: Session, accuracy: float) -> sql.Composed:
    """SQL: the relation `latency_quantiles` (key, percentiles) read from the statement's
    relation `histogram` (sql/fragments/latency_quantiles.sql)."""
    return session.statement(
        "fragments/latency_quantiles",
        value=value_sql(session, sql.Identifier("bucket"), accuracy),
    )


def spread(row: dict[str, Any], wanted: tuple[float, ...]) -> dict[str, Any]:
    """A statement's row with its `percentiles` array as one key per percentile (None when the
    window has no response time), after the error rate when the row has one."""
    values = row.pop("percentiles", None) or [None] * len(wanted)
    read = {
        percentile_key(p): None if v is None else float(v)
        for p, v in zip(wanted, values, strict=True)
    }
    if "error_rate" not in row:
        return row | read
    out: dict[str, Any] = {}
    for key, value in row.items():  # after the error rate, as the tables and CSV show them
        out[key] = value
        if key == "error_rate":
            out |= read
    return out
