"""The guide's sizing rules, table-driven at and around every boundary (no database); then
the measurements they are applied to, against real servers."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from epstats_cli.advise import rules
from epstats_cli.advise.measure import measure
from epstats_cli.advise.rules import GIB, Measured, Options
from epstats_cli.config import load
from epstats_cli.db import session
from epstats_cli.errors import OperationFailed
from tests.conftest import run_cli
from tests.helpers import fill

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


# --- measuring, against real servers -----------------------------------------------------------


def test_measure_agrees_with_the_catalog_and_the_raw_rows(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("source: {timezone: UTC}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 100_000)  # one row every 25 s, about 29 days back
    conn.execute("CREATE INDEX idx_requests_endpoint ON requests (endpoint)")
    for args in (["indexes", "apply"], ["view", "build"], ["maintain"]):
        r = run_cli("-c", str(cfg), "--dsn", dsn, *args)
        assert r.code == 0, r.stderr
    with session(load(str(cfg), {}), dsn) as s:
        m = measure(s)
    row = conn.execute(
        "SELECT pg_total_relation_size('requests'), "
        "(SELECT reltuples::bigint FROM pg_class WHERE oid = 'requests'::regclass), "
        "current_setting('max_connections')::int"
    ).fetchone()
    assert (m.table_bytes, m.table_rows, m.max_connections) == row
    week = conn.execute(
        "SELECT count(*) FROM requests WHERE timestamp >= date_trunc('day', now() AT TIME ZONE "
        "'UTC') AT TIME ZONE 'UTC' - interval '7 days' AND timestamp < date_trunc('day', now() "
        "AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
    ).fetchone()
    assert week is not None and m.avg_rps == pytest.approx(week[0] / (7 * 86400))
    peak = conn.execute(
        "SELECT max(n) FROM (SELECT count(*) AS n FROM requests WHERE timestamp >= now() - "
        "interval '7 days' AND timestamp < now() GROUP BY date_trunc('hour', timestamp)) h"
    ).fetchone()
    assert peak is not None and m.peak_rps == pytest.approx(peak[0] / 3600)
    assert (m.traffic_source, m.rollup_strategy) == ("rollup", "materialized")
    assert m.rollup_bytes and m.refresh_seconds is not None
    assert m.redundant_indexes == ("idx_requests_endpoint",)

    r = run_cli("-c", str(cfg), "--dsn", dsn, "advise", "--format", "yaml")
    assert r.code == 0 and len(list(yaml.safe_load_all(r.stdout))) == 5
    r = run_cli("-c", str(cfg), "--dsn", dsn, "--format", "json", "advise")
    assert r.code == 0 and json.loads(r.stdout)["measured"]["redundant_indexes"] == [
        "idx_requests_endpoint"
    ]


def test_measure_without_a_rollup_reads_the_raw_rows(
    dsn: str, conn: psycopg.Connection[Any]
) -> None:
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    conn.execute("INSERT INTO requests SELECT 'e', now() - interval '2 hours', 1, 200")
    with session(load(None, {}), dsn) as s:
        m = measure(s)
    # one row two hours old: the rate is averaged over its real age, at least an hour
    assert m.traffic_source == "raw rows" and m.rollup_strategy is None
    assert m.avg_rps == pytest.approx(1 / 7200, rel=0.01) and m.peak_rps == 1 / 3600
    conn.execute("DROP TABLE requests")
    with session(load(None, {}), dsn) as s, pytest.raises(OperationFailed, match="does not"):
        measure(s)
