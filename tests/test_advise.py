"""The guide's sizing rules, table-driven at and around every boundary (no database); then
the measurements they are applied to, against real servers."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest
import yaml

from epstats_cli.advise import kubernetes, rules
from epstats_cli.advise.measure import measure
from epstats_cli.advise.rules import GIB, Measured, Options
from epstats_cli.config import Config, DatabaseConfig, ViewConfig, build, load
from epstats_cli.db import session
from epstats_cli.errors import OperationFailed
from tests.conftest import Server, run_cli
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
    server_version_num=150018,
    database="endpoint_stats",
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


# --- Kubernetes manifests ---------------------------------------------------------------------

MODELS = {
    ("v1", "ConfigMap"): "V1ConfigMap",
    ("v1", "Service"): "V1Service",
    ("apps/v1", "Deployment"): "V1Deployment",
    ("apps/v1", "StatefulSet"): "V1StatefulSet",
    ("autoscaling/v2", "HorizontalPodAutoscaler"): "V2HorizontalPodAutoscaler",
    ("policy/v1", "PodDisruptionBudget"): "V1PodDisruptionBudget",
    ("batch/v1", "CronJob"): "V1CronJob",
}


def validate(doc: dict[str, Any]) -> None:
    """What kubectl would accept: the document parses into its Kubernetes API model (types,
    required fields) and serialises back to itself, so no key was unknown and dropped."""
    k8s = pytest.importorskip("kubernetes.client")
    model = getattr(k8s, MODELS[(doc["apiVersion"], doc["kind"])])
    obj = model.from_dict(doc)
    assert k8s.ApiClient().sanitize_for_serialization(obj) == doc


def _docs(measured: Measured = BASE, **opts: Any) -> list[dict[str, Any]]:
    text = kubernetes.to_yaml(
        kubernetes.manifests(rules.advise(measured), measured, kubernetes.KubeOptions(**opts))
    )
    return list(yaml.safe_load_all(text))


def _kind(docs: list[dict[str, Any]], kind: str, name_part: str = "") -> dict[str, Any]:
    return next(d for d in docs if d["kind"] == kind and name_part in d["metadata"]["name"])


def test_kubernetes_yaml_documents() -> None:
    docs = _docs()
    assert [(d["kind"], d["metadata"]["name"]) for d in docs] == [
        ("Deployment", "endpoint-stats-api"),
        ("HorizontalPodAutoscaler", "endpoint-stats-api"),
        ("PodDisruptionBudget", "endpoint-stats-api"),
        ("Service", "endpoint-stats-postgres"),
        ("StatefulSet", "endpoint-stats-postgres"),
        ("PodDisruptionBudget", "endpoint-stats-postgres"),
        ("Deployment", "endpoint-stats-redis"),
    ]
    hpa = docs[1]
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 70
    assert docs[0]["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"] == {
        "cpu": "150m",
        "memory": "128Mi",
    }
    assert (
        docs[4]["spec"]["serviceName"] == "endpoint-stats-postgres" == docs[3]["metadata"]["name"]
    )
    assert docs[3]["spec"]["clusterIP"] == "None"  # headless: the StatefulSet's pod DNS


@pytest.mark.parametrize(
    ("size", "gib"),
    [
        (0, 10),  # the top of the first tier
        (GB, 10),
        (5 * GB, 10),
        (int(5.01 * GB), 11),  # twice the database from here on
        (10 * GB - 1, 20),
        (10 * GB, 50),  # the second tier's top
        (25 * GB, 50),
        (25 * GB + 1, 51),
        (50 * GB, 100),
        (int(50.5 * GB), 101),  # the last tier has no top
        (500 * GB, 1000),
    ],
)
def test_the_volume_is_twice_the_database_and_at_least_its_tier(size: int, gib: int) -> None:
    assert kubernetes.volume_gib(size) == gib
    assert gib * GB >= 2 * size
    statefulset = _kind(_docs(replace(BASE, database_bytes=size)), "StatefulSet")
    claim = statefulset["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == f"{gib}Gi"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    mounts = statefulset["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert [m["name"] for m in mounts] == [claim["metadata"]["name"]]
    retention = statefulset["spec"]["persistentVolumeClaimRetentionPolicy"]
    assert retention == {"whenDeleted": "Retain", "whenScaled": "Retain"}


@pytest.mark.parametrize(
    ("version", "image", "mount", "pgdata"),
    [
        (150018, "postgres:15", "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
        (160004, "postgres:16", "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
        (170002, "postgres:17", "/var/lib/postgresql/data", "/var/lib/postgresql/data/pgdata"),
        (
            180001,
            "postgres:18",
            "/var/lib/postgresql",
            None,
        ),  # PGDATA /var/lib/postgresql/18/docker
    ],
)
def test_postgres_runs_the_measured_major_on_its_volume(
    version: int, image: str, mount: str, pgdata: str | None
) -> None:
    container = _kind(_docs(replace(BASE, server_version_num=version)), "StatefulSet")["spec"][
        "template"
    ]["spec"]["containers"][0]
    assert container["image"] == image
    assert container["volumeMounts"][0]["mountPath"] == mount
    env = {e["name"]: e for e in container["env"]}
    assert env.get("PGDATA", {}).get("value") == pgdata
    assert env["POSTGRES_DB"]["value"] == "endpoint_stats"


def test_the_password_comes_from_a_named_secret_and_is_never_a_value() -> None:
    for name, secret in ((None, "endpoint-stats-postgres"), ("pg-auth", "pg-auth")):
        docs = _docs(secret_name=name, cron_image="registry.example.com/epstats:1")
        envs = [
            e
            for d in docs
            for c in _containers(d)
            for e in c.get("env", [])
            if "PASSWORD" in e["name"]
        ]
        assert {e["name"] for e in envs} == {"POSTGRES_PASSWORD"}
        for e in envs:
            assert "value" not in e
            assert e["valueFrom"] == {"secretKeyRef": {"name": secret, "key": "password"}}


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    spec = doc.get("spec", {})
    pod = spec.get("jobTemplate", {}).get("spec", spec).get("template", {}).get("spec", {})
    return list(pod.get("containers", []))


def test_probes_let_crash_recovery_finish() -> None:
    docs = _docs()
    container = _kind(docs, "StatefulSet")["spec"]["template"]["spec"]["containers"][0]
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["exec"]["command"][0] == "pg_isready"
    startup = container["startupProbe"]
    assert startup["periodSeconds"] * startup["failureThreshold"] >= 3600
    assert "livenessProbe" not in container  # a restart would start crash recovery over
    text = kubernetes.to_yaml(kubernetes.manifests(rules.advise(BASE), BASE))
    assert "# Probes:" in text and "No livenessProbe on" in text


def test_no_disruption_budget_blocks_a_node_drain() -> None:
    """A drain may evict a pod when the budget allows one disruption with every replica up."""
    docs = _docs()
    replicas = {
        d["metadata"]["name"]: d["spec"].get("replicas", 1) for d in docs if "replicas" in d["spec"]
    }
    replicas["endpoint-stats-api"] = _kind(docs, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    for pdb in (d for d in docs if d["kind"] == "PodDisruptionBudget"):
        n = replicas[pdb["metadata"]["name"]]
        spec = pdb["spec"]
        allowed = spec["maxUnavailable"] if "maxUnavailable" in spec else n - spec["minAvailable"]
        assert allowed >= 1, pdb
    assert _kind(docs, "PodDisruptionBudget", "postgres")["spec"]["maxUnavailable"] == 1


def test_cronjobs_only_when_an_image_is_named() -> None:
    assert not [d for d in _docs() if d["kind"] in ("CronJob", "ConfigMap")]
    docs = _docs(cron_image="registry.example.com/epstats:1")
    crons = {d["metadata"]["name"]: d for d in docs if d["kind"] == "CronJob"}
    assert set(crons) == {"endpoint-stats-maintain", "endpoint-stats-check"}
    maintain = crons["endpoint-stats-maintain"]["spec"]
    assert maintain["schedule"] == "*/10 * * * *" and maintain["concurrencyPolicy"] == "Forbid"
    (container,) = _containers(crons["endpoint-stats-maintain"])
    assert container["image"] == "registry.example.com/epstats:1"
    assert container["command"] == ["epstats", "-q", "maintain"]
    (check,) = _containers(crons["endpoint-stats-check"])
    assert check["command"] == ["epstats", "check"]


SECRET_CONFIG = Config(
    database=DatabaseConfig(
        dsn="postgresql://app@db.internal:5432/endpoint_stats",
        maintenance_dsn="host=db.internal user=app",
        password_env="hunter2-the-password",
        lock_timeout=dt.timedelta(seconds=3),
    ),
    view=ViewConfig(strategy="incremental"),
)


def test_cronjobs_run_with_the_configuration_without_its_secrets() -> None:
    """A ConfigMap holds the configuration advise ran with, minus the DSNs and password_env;
    both CronJobs mount it and name it in EPSTATS_CONFIG."""
    docs = _docs(cron_image="img:1", config=SECRET_CONFIG)
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap"]
    text = configmap["data"]["config.yaml"]
    for secret in ("db.internal", "hunter2", "dsn", "password_env"):
        assert secret not in text
    loaded = build(yaml.safe_load(text))
    assert loaded == replace(
        SECRET_CONFIG,
        database=replace(SECRET_CONFIG.database, dsn=None, maintenance_dsn=None, password_env=None),
    )
    for cron in (d for d in docs if d["kind"] == "CronJob"):
        (container,) = _containers(cron)
        env = {e["name"]: e for e in container["env"]}
        mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
        assert env["EPSTATS_CONFIG"]["value"] == mount["mountPath"] + "/config.yaml"
        assert mount["readOnly"] is True
        pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        (volume,) = [v for v in pod["volumes"] if v["name"] == "config"]
        assert volume["configMap"]["name"] == configmap["metadata"]["name"]


def test_cronjobs_take_the_dsn_from_a_named_secret_and_run_as_the_maintenance_role() -> None:
    for secret, role in ((None, None), ("ep-dsn", "ep_maint")):
        opts: dict[str, Any] = {"cron_image": "img:1"}
        if secret:
            opts.update(dsn_secret_name=secret, maintenance_role=role)
        docs = _docs(**opts)
        crons = [d for d in docs if d["kind"] == "CronJob"]
        assert len(crons) == 2
        for cron in crons:
            (container,) = _containers(cron)
            env = {e["name"]: e for e in container["env"]}
            assert "value" not in env["EPSTATS_DSN"]  # never the DSN itself
            assert env["EPSTATS_DSN"]["valueFrom"] == {
                "secretKeyRef": {"name": secret or "endpoint-stats-epstats", "key": "dsn"}
            }
            assert env["PGUSER"]["value"] == (role or "epstats_maintainer")
            assert "PGPASSWORD" not in env and "POSTGRES_PASSWORD" not in env


def test_cronjobs_run_as_non_root_on_a_read_only_filesystem() -> None:
    for cron in (d for d in _docs(cron_image="img:1") if d["kind"] == "CronJob"):
        pod = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] > 0
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        (container,) = pod["containers"]
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        }
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        assert "/tmp" in mounts  # the one writable place


@pytest.mark.parametrize(
    ("version", "maintain"),
    [(150018, "GRANT app TO ep_maint;"), (180001, "GRANT MAINTAIN ON public.requests")],
)
def test_the_maintenance_role_grants_are_written_above_the_cronjob(
    version: int, maintain: str
) -> None:
    owners = (("TABLE public.requests", "app", False),)
    measured = replace(BASE, server_version_num=version, owners=owners)
    opts = kubernetes.KubeOptions(cron_image="img:1", maintenance_role="ep_maint")
    text = kubernetes.to_yaml(kubernetes.manifests(rules.advise(measured), measured, opts))
    comment = text.split("kind: CronJob")[0].rsplit("---\n", 1)[1]
    assert "GRANT USAGE ON SCHEMA epstats TO ep_maint;" in comment
    assert "ON epstats.runs, epstats.rollup_state TO ep_maint;" in comment
    assert maintain in comment
    assert "kubectl create secret generic endpoint-stats-epstats --from-literal=dsn=" in comment
    assert "(GRANT app TO ep_maint, or run that cleanup" in comment or version < 170000


@pytest.mark.parametrize("version", [150018, 180001])
def test_a_superusers_role_is_never_written_above_the_cronjob(version: int) -> None:
    owners = (("TABLE public.requests", "postgres", True),)
    measured = replace(BASE, server_version_num=version, owners=owners)
    opts = kubernetes.KubeOptions(cron_image="img:1", maintenance_role="ep_maint")
    text = kubernetes.to_yaml(kubernetes.manifests(rules.advise(measured), measured, opts))
    comment = text.split("kind: CronJob")[0].rsplit("---\n", 1)[1]
    assert "GRANT postgres" not in comment
    assert "ALTER TABLE public.requests OWNER TO <the new owner>;" in comment
    assert "GRANT <the new owner> TO ep_maint" in comment


def test_kubernetes_yaml_matches_the_official_api_models() -> None:
    """Every document, in every variant, against the Kubernetes API models; a document with a
    missing required field or an unknown key does not pass."""
    k8s = pytest.importorskip("kubernetes.client")
    for version in (150018, 180001):
        measured = replace(BASE, server_version_num=version)
        for doc in _docs(measured, cron_image="registry.example.com/epstats:1"):
            validate(doc)
    docs = _docs()
    broken = yaml.safe_load(yaml.safe_dump(docs[0]))
    del broken["spec"]["selector"]
    with pytest.raises(Exception, match="selector"):
        k8s.V1Deployment.from_dict(broken)
    typo = yaml.safe_load(yaml.safe_dump(_kind(docs, "StatefulSet")))
    typo["spec"]["volumeClaimTemplate"] = typo["spec"].pop("volumeClaimTemplates")
    with pytest.raises(AssertionError):
        validate(typo)


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
    assert r.code == 0 and len(list(yaml.safe_load_all(r.stdout))) == 7
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


def test_advise_yaml_on_a_real_server(
    server: Server, dsn: str, conn: psycopg.Connection[Any]
) -> None:
    """The manifests for this very server: its major version, a volume twice its size, the
    password from the named Secret, the CronJobs in the named image; all valid."""
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20_000)
    r = run_cli(
        *("--dsn", dsn, "advise", "--format", "yaml"),
        *("--secret-name", "pg-auth", "--with-cronjobs", "registry.example.com/epstats:1"),
    )
    assert r.code == 0, r.stderr
    docs = list(yaml.safe_load_all(r.stdout))
    for doc in docs:
        validate(doc)
    statefulset = _kind(docs, "StatefulSet")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["image"] == f"postgres:{server.version}"
    size = conn.execute("SELECT pg_database_size(current_database())").fetchone()
    assert size is not None
    storage = statefulset["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]
    assert int(storage["storage"].removesuffix("Gi")) * GB >= max(2 * size[0], 10 * GB)
    env = {e["name"]: e for e in container["env"]}
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "pg-auth"
    assert env["POSTGRES_DB"]["value"] == conn.info.dbname
    crons = [d for d in docs if d["kind"] == "CronJob"]
    assert [c["spec"]["concurrencyPolicy"] for c in crons] == ["Forbid", "Forbid"]
    assert "# Probes:" in r.stdout and "s3cret" not in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["advise", "--with-cronjobs", "img"],
        ["advise", "--secret-name", "pg-auth"],
        ["--format", "json", "advise", "--secret-name", "pg-auth"],
        ["advise", "--format", "yaml", "--secret-name", "Not_A_Name"],
        ["advise", "--format", "yaml", "--with-cronjobs", " "],
        ["advise", "--format", "yaml", "--maintenance-role", "ep_maint"],
        ["advise", "--format", "yaml", "--dsn-secret", "ep-dsn"],
        ["advise", "--format", "yaml", "--with-cronjobs", "i", "--maintenance-role", "Bad-Role"],
        ["advise", "--format", "yaml", "--with-cronjobs", "i", "--dsn-secret", "Not_A_Name"],
    ],
)
def test_advise_manifest_options_are_checked(dsn: str, args: list[str]) -> None:
    r = run_cli("--dsn", dsn, *args)
    assert r.code == 2 and r.stdout == "", r.stderr


@pytest.mark.parametrize("strategy", ["materialized", "incremental"])
def test_the_cronjobs_role_and_configuration_work_on_a_real_server(
    strategy: str, server: Server, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """The grants written above the CronJobs, given to a new role as written, are all that
    `maintain` (every task) and `check` need, run with the ConfigMap's configuration."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\ndatabase: {{lock_timeout: 4s}}\n")
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
    conn.execute("CREATE INDEX idx_requests_status ON requests (status)")
    db = conn.info.dbname
    owner, role = f"own_{db}", f"cron_{db}"
    conn.execute(f"CREATE ROLE {owner}")
    conn.execute(f"ALTER TABLE requests OWNER TO {owner}")
    kind = "MATERIALIZED VIEW" if strategy == "materialized" else "TABLE"
    conn.execute(f"ALTER {kind} endpoint_daily_stats OWNER TO {owner}")
    try:
        r = run_cli(
            *("-c", str(cfg), "--dsn", dsn, "advise", "--format", "yaml"),
            *("--with-cronjobs", "img:1", "--maintenance-role", role),
        )
        assert r.code == 0, r.stderr
        before_cron = r.stdout.split("kind: CronJob")[0].rsplit("---\n", 1)[1]
        # the real owner, known to advise, is filled in (it was `<the tables' owner>`)
        assert "<the" not in before_cron and f"GRANT {owner} TO {role}" in before_cron
        statements = [
            line.removeprefix("#   ").split("  -- ")[0].replace("'...'", "'cron-pw'")
            for line in before_cron.splitlines()
            if line.startswith("#   ") and not line.startswith("#   --") and ";" in line
        ]
        assert statements[0] == f"CREATE ROLE {role} LOGIN PASSWORD '...';".replace(
            "'...'", "'cron-pw'"
        )
        for statement in statements:
            conn.execute(statement.encode())
        configmap = next(d for d in yaml.safe_load_all(r.stdout) if d["kind"] == "ConfigMap")
        mounted = tmp_path / "config.yaml"
        mounted.write_text(configmap["data"]["config.yaml"])
        env: dict[str, str | None] = {"EPSTATS_CONFIG": str(mounted)}
        role_dsn = server.dsn_for(db, user=role, password="cron-pw")
        tasks = "cleanup,vacuum,analyze,reindex,refresh,verify"
        m = run_cli("--dsn", role_dsn, "--format", "json", "maintain", "--force", tasks, env=env)
        assert m.code == 0, (m.stdout, m.stderr)
        done = json.loads(m.stdout)["tasks"]
        assert {t["status"] for t in done} <= {"ok", "skipped"}, done
        assert {t["task"] for t in done if t["status"] == "ok"} >= set(tasks.split(",")) - {
            "analyze"  # done by VACUUM (ANALYZE)
        }
        c = run_cli("--dsn", role_dsn, "--format", "json", "check", env=env)
        assert c.code in (0, 1), c.stdout
        assert "permission denied" not in c.stdout
        assert all(ch["state"] != "UNKNOWN" for ch in json.loads(c.stdout)["checks"]), c.stdout
    finally:
        for name in (role, owner):
            conn.execute(f"DROP OWNED BY {name}")
        for name in (role, owner):
            server.execute(f"DROP ROLE IF EXISTS {name}")


def test_a_rollup_with_fewer_but_wider_rows_is_larger_than_the_raw_table() -> None:
    """The trial's case: 64,489 rollup rows a day for 100,080 raw rows (64 % by rows), but a
    rollup row takes 166 bytes and a raw row 81: the rollup grows faster than the raw table
    (bytes, not rows, decide), so it is larger than it."""
    m = replace(
        BASE,
        table_bytes=244 * 1024 * 1024,
        table_rows=3_000_000,
        rollup_rows_per_day=64_489.0,
        rollup_raw_rows_per_day=100_080.0,
        rollup_rows_source="rollup",
        rollup_row_bytes=166.0,
    )
    growth = rules.rollup_growth(m)
    assert growth is not None and growth.level == "warning"
    assert "the rollup is larger than the raw table" in growth.recommendation
    assert growth.values["rollup_growth_ratio"] > 1
    # the same rows, as narrow as raw rows: it only saves little
    narrow = rules.rollup_growth(replace(m, rollup_row_bytes=85.0))
    assert narrow is not None and "saves little over" in narrow.recommendation
    # no rollup yet: projected with a rollup row about twice a raw row's bytes
    projected = rules.rollup_growth(
        replace(
            m, rollup_rows_source="projected", rollup_row_bytes=None, rollup_rows_per_day=60_000.0
        )
    )
    assert projected is not None and "would be larger than" in projected.recommendation
