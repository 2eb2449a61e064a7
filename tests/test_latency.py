"""The latency histogram's buckets (epstats_cli/latency.py), pure: every value is within the
accuracy of the value its bucket stands for, negative ones too; bucket order is value order;
the special values have buckets of their own at the ends and in the middle."""

from __future__ import annotations

import math
import random

import pytest

from epstats_cli import latency


@pytest.mark.parametrize("accuracy", [0.001, 0.01, 0.02, 0.1])
def test_every_value_is_within_the_accuracy_of_its_bucket(accuracy: float) -> None:
    rnd = random.Random(15)
    values = [10 ** rnd.uniform(-6, 6) for _ in range(5000)] + [1.0, 2.0, 1e-300, 1e300]
    for v in values + [-v for v in values]:
        stands = latency.value(latency.bucket(v, accuracy), accuracy)
        assert abs(stands - v) <= accuracy * abs(v) * (1 + 1e-9), (v, stands)


def test_bucket_order_is_value_order() -> None:
    rnd = random.Random(7)
    values = sorted(
        [rnd.uniform(-1e4, 1e4) for _ in range(2000)]
        + [0.0, -math.inf, math.inf, 1e-9, -1e-9, 5e-324, -5e-324, 1.7e308, -1.7e308]
    )
    buckets = [latency.bucket(v, 0.001) for v in values]
    assert buckets == sorted(buckets)
    assert all(latency.BELOW <= b <= latency.BEYOND for b in buckets)


def test_the_special_values() -> None:
    assert latency.bucket(0.0, 0.01) == latency.ZERO and latency.value(latency.ZERO, 0.01) == 0
    assert latency.bucket(math.nan, 0.01) == latency.BEYOND
    assert latency.value(latency.bucket(math.inf, 0.01), 0.01) == math.inf
    assert latency.value(latency.bucket(-math.inf, 0.01), 0.01) == -math.inf
    # the smallest and largest finite values stay clear of the special buckets
    for v in (5e-324, 1.7e308):
        assert latency.ZERO < latency.bucket(v, 0.001) < latency.BEYOND
        assert latency.BELOW < latency.bucket(-v, 0.001) < latency.ZERO
