"""The guide's sizing rules, table-driven at and around every boundary (no database)."""

from __future__ import annotations

from dataclasses import replace

import pytest
import yaml

from epstats_cli.advise import rules
from epstats_cli.advise.rules import GIB, Measured, Options

GB = GIB


@pytest.mark.parametrize(
    ("rps", "cpu"),
    [
        (0, 100),
        (99, 100),
        (99.99, 100),
        (100, 150),
        (101, 150),
        (199, 150),
        (200, 200),
        (1000, 600),
    ],
)
def test_api_cpu_per_100_rps(rps: float, cpu: int) -> None:
    assert rules.api_cpu_millicores(rps) == cpu


def test_api_memory() -> None:
    assert rules.api_memory_mi(False) == 128
    assert rules.api_memory_mi(True) == 256


@pytest.mark.parametrize(
    ("size", "tier"),
    [
        (0, (500, 1024)),
        (int(9.99 * GB), (500, 1024)),
        (10 * GB - 1, (500, 1024)),
        (10 * GB, (1000, 2048)),
        (int(30 * GB), (1000, 2048)),
        (50 * GB, (1000, 2048)),
        (int(50.01 * GB), (2000, 4096)),
        (500 * GB, (2000, 4096)),
    ],
)
def test_postgres_tiers(size: int, tier: tuple[int, int]) -> None:
    assert rules.postgres_tier(size) == tier


@pytest.mark.parametrize(
    ("reads", "writes", "replica"),
    [
        (0, 0, False),
        (19, 1, False),
        (20, 1, True),
        (1999, 100, False),
        (2000, 100, True),
        (10, 0, False),
        (20, 0, True),
    ],
)
def test_read_replicas(reads: int, writes: int, replica: bool) -> None:
    assert rules.reads_dominate(reads, writes) is replica


@pytest.mark.parametrize(
    ("persistence", "dataset", "expected"),
    [
        (False, 0, (100, 256, False)),
        (True, 0, (200, 512, False)),
        (False, 2 * GB, (100, 256, False)),
        (False, 2 * GB + 1, (100, 256, True)),
        (True, 3 * GB, (200, 512, True)),
    ],
)
def test_redis(persistence: bool, dataset: int, expected: tuple[int, int, bool]) -> None:
    assert rules.redis_resources(persistence, dataset) == expected


@pytest.mark.parametrize(
    ("pods", "max_connections", "reserved", "fits", "largest"),
    [
        (5, 100, 3, False, 18),
        (5, 108, 3, True, 20),
        (5, 107, 3, False, 19),
        (3, 100, 3, True, 30),
        (10, 100, 3, False, 9),
        (5, 20, 3, False, 2),
    ],
)
def test_pools_against_max_connections(
    pods: int, max_connections: int, reserved: int, fits: bool, largest: int
) -> None:
    assert rules.pool_fits(pods, 20, max_connections, reserved) == (fits, largest)


BASE = Measured(
    database_bytes=2 * GB,
    table_bytes=GB,
    table_rows=10_000_000,
    rows_per_day=170_000,
    avg_rps=2.0,
    peak_rps=450.0,
    reads=1000,
    writes=1000,
    max_connections=200,
    reserved_connections=3,
    rollup_bytes=10_000_000,
    rollup_strategy="materialized",
    refresh_seconds=5.0,
)


def _by_rule(advice: list[rules.Advice], text: str) -> rules.Advice:
    return next(a for a in advice if text in a.rule)


def test_advise_applies_every_rule() -> None:
    advice = rules.advise(BASE)
    api = _by_rule(advice, "+50m CPU")
    assert api.values == {"cpu_m": 150, "memory_mi": 128, "rps_per_pod": 150.0}
    assert "150.0 req/s per pod" in api.measured
    assert _by_rule(advice, "HPA").values == {"min": 3, "max": 5, "cpu": 70}
    assert _by_rule(advice, "PodDisruptionBudget").values == {"min_available": 2}
    assert _by_rule(advice, "under 10 GB").values == {"cpu_m": 500, "memory_mi": 1024}
    assert _by_rule(advice, "read replicas").values == {"read_replica": False}
    assert {a.values["ttl_seconds"] for a in advice if "TTL" in a.rule} == {300, 3600, 86400}
    pool = _by_rule(advice, "database pool")
    assert pool.values["fits"] and pool.level == "info"
    assert _by_rule(advice, "keep the rollup").recommendation == "no change"


def test_advise_warnings() -> None:
    m = replace(
        BASE,
        max_connections=60,
        refresh_seconds=120.0,
        table_bytes=200 * GB,
        redundant_indexes=("idx_requests_endpoint",),
        reads=100_000,
        writes=10,
    )
    advice = rules.advise(m, Options(heavy_analysis=True, redis_persistence=True))
    assert _by_rule(advice, "database pool").level == "warning"
    assert "PgBouncer" in _by_rule(advice, "database pool").recommendation
    assert "incremental" in _by_rule(advice, "incremental rollup").recommendation
    assert _by_rule(advice, "partition").level == "warning"
    assert "idx_requests_endpoint" in _by_rule(advice, "drop indices").recommendation
    assert _by_rule(advice, "read replicas").values == {"read_replica": True}
    assert _by_rule(advice, "+50m CPU").values["memory_mi"] == 256


def test_kubernetes_yaml_documents() -> None:
    docs = rules.kubernetes(rules.advise(BASE))
    text = yaml.safe_dump_all(docs)
    parsed = list(yaml.safe_load_all(text))
    assert [d["kind"] for d in parsed] == [
        "Deployment",
        "HorizontalPodAutoscaler",
        "PodDisruptionBudget",
        "StatefulSet",
        "Deployment",
    ]
    for d in parsed:
        assert d["apiVersion"] and d["kind"] and d["metadata"]["name"]
    hpa = parsed[1]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert parsed[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "150m",
        "memory": "128Mi",
    }
    assert parsed[3]["spec"]["serviceName"] == "endpoint-stats-postgres"


def test_kubernetes_yaml_matches_the_official_api_models() -> None:
    """What kubectl would accept: each document validates against the Kubernetes API models
    (types and required fields); a document missing a required field does not."""
    k8s = pytest.importorskip("kubernetes.client")
    models = {
        ("apps/v1", "Deployment"): k8s.V1Deployment,
        ("apps/v1", "StatefulSet"): k8s.V1StatefulSet,
        ("autoscaling/v2", "HorizontalPodAutoscaler"): k8s.V2HorizontalPodAutoscaler,
        ("policy/v1", "PodDisruptionBudget"): k8s.V1PodDisruptionBudget,
    }
    docs = list(yaml.safe_load_all(yaml.safe_dump_all(rules.kubernetes(rules.advise(BASE)))))
    for doc in docs:
        obj = models[(doc["apiVersion"], doc["kind"])].from_dict(doc)
        assert obj.metadata.name == doc["metadata"]["name"]
    broken = yaml.safe_load(yaml.safe_dump(docs[0]))
    del broken["spec"]["selector"]
    with pytest.raises(Exception, match="selector"):
        k8s.V1Deployment.from_dict(broken)
