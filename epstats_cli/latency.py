"""Latency histograms: log-spaced buckets of a fixed relative accuracy alpha, as in DDSketch
(Masson, Rim, Lee, PVLDB 12(12), 2019).

With gamma = (1 + alpha) / (1 - alpha), a response time v > 0 falls in bucket
k = ceil(ln v / ln gamma), so gamma^(k-1) < v <= gamma^k, and the bucket stands for
2 gamma^k / (1 + gamma), within alpha of every value in it. Buckets of the same gamma merge by
adding counts: a window's histogram is the sum of its days'. A quantile q is read with
nearest-rank semantics (the value of rank ceil(q n) among the n response times, what
`percentile_disc` returns) from the running sum of the counts in bucket order, and is within
alpha of the exact value.

Zero and negative values (bad data) share the lowest bucket ZERO (it stands for 0), Infinity
and NaN the highest, BEYOND; NULL response times are left out, as from the averages.

The rollup stores one histogram per endpoint and day in two arrays of the same length,
ordered by bucket, with no empty bucket: `latency_buckets integer[]` and `latency_counts
bigint[]` (NULL when the day has no response time). The SQL that makes a bucket and the value
of one is in sql/fragments/latency_bucket.sql and latency_value.sql; this module composes it
and mirrors it in Python (for tests and the reader of a quantile).
"""

from __future__ import annotations

import math

from psycopg import sql

from epstats_cli.db import Session

ZERO = -(2**31)  # zero and negative values
BEYOND = 2**31 - 1  # Infinity and NaN
LATENCY_COLUMNS = ("latency_buckets", "latency_counts")


def ln_gamma(accuracy: float) -> float:
    """ln gamma for a relative accuracy alpha (0 < alpha < 1)."""
    return math.log((1 + accuracy) / (1 - accuracy))


def bucket(value: float, accuracy: float) -> int:
    """The bucket of one value (as sql/fragments/latency_bucket.sql computes it)."""
    if math.isnan(value) or value == math.inf:
        return BEYOND
    if value <= 0:
        return ZERO
    return math.ceil(math.log(value) / ln_gamma(accuracy))


def value(k: int, accuracy: float) -> float:
    """The value bucket `k` stands for (as sql/fragments/latency_value.sql computes it)."""
    if k == ZERO:
        return 0.0
    if k == BEYOND:
        return math.inf
    lg = ln_gamma(accuracy)
    return 2 * math.exp(k * lg) / (1 + math.exp(lg))


def bucket_sql(session: Session, expression: sql.Composable, accuracy: float) -> sql.Composed:
    """SQL: the bucket of the response time `expression` (NULL for NULL)."""
    return session.statement(
        "fragments/latency_bucket",
        value=expression,
        ln_gamma=sql.Literal(ln_gamma(accuracy)),
        zero=sql.Literal(ZERO),
        beyond=sql.Literal(BEYOND),
    )


def value_sql(session: Session, expression: sql.Composable, accuracy: float) -> sql.Composed:
    """SQL: the value the bucket `expression` stands for."""
    return session.statement(
        "fragments/latency_value",
        bucket=expression,
        ln_gamma=sql.Literal(ln_gamma(accuracy)),
        zero=sql.Literal(ZERO),
        beyond=sql.Literal(BEYOND),
    )
