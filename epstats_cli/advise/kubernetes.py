"""`advise --format yaml`: Kubernetes manifests carrying the advice, safe to apply as written.

The PostgreSQL StatefulSet keeps its data on a PersistentVolumeClaim sized from the measured
database, takes its password from a Secret (named, never given), runs the server's own major
version and is probed with pg_isready; each document carries a comment saying why. The
CronJobs are cronjobs.py's. Pure: the measurements and options in, documents and YAML out.
"""

from __future__ import annotations

import math
import textwrap
from typing import Any

from epstats_cli.advise.cronjobs import (
    DNS_NAME,
    PG_PORT,
    KubeOptions,
    Manifest,
    cronjobs,
    database_name,
)
from epstats_cli.advise.rules import GIB, POSTGRES_TIERS, SETTINGS_AREA, Advice, Measured

PGDATA_PER_MAJOR_FROM = 18  # the image's PGDATA is /var/lib/postgresql/<major>/docker from 18
STARTUP_SECONDS = 3600  # how long crash recovery may take before the kubelet gives up


def volume_gib(database_bytes: int) -> int:
    """The data volume: twice the measured database, and at least the top of its guide tier
    (10 GB, 50 GB; the largest tier has no top)."""
    upper = next(u for u, _cpu, _mem in POSTGRES_TIERS if database_bytes <= u)
    tier_top = 0 if math.isinf(upper) else math.ceil(upper / GIB)
    return max(math.ceil(2 * database_bytes / GIB), tier_top, 1)


def data_directory(major: int) -> tuple[str, dict[str, str]]:
    """Where the volume is mounted for the official image of `major`, and the env it needs.

    Up to 17 the image keeps data in /var/lib/postgresql/data; PGDATA goes one level down,
    because initdb refuses a volume root that holds lost+found. From 18 the volume is
    /var/lib/postgresql and PGDATA /var/lib/postgresql/<major>/docker, a subdirectory already
    (a volume at the old path makes the 18 image refuse to start).
    """
    if major >= PGDATA_PER_MAJOR_FROM:
        return "/var/lib/postgresql", {}
    return "/var/lib/postgresql/data", {"PGDATA": "/var/lib/postgresql/data/pgdata"}


def _values(advice: list[Advice], area: str, key: str) -> dict[str, Any]:
    return next(a.values for a in advice if a.area == area and key in a.values)


def _resources(cpu: int, mem: int) -> dict[str, Any]:
    return {
        "requests": {"cpu": f"{cpu}m", "memory": f"{mem}Mi"},
        "limits": {"memory": f"{mem}Mi"},
    }


def _deployment(app: str, image: str, cpu: int, mem: int, replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": app, "labels": {"app": app}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": app}},
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {
                    "containers": [{"name": app, "image": image, "resources": _resources(cpu, mem)}]
                },
            },
        },
    }


def _secret_env(name: str, secret: str) -> dict[str, Any]:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": "password"}}}


def _pg_isready(period: int, failures: int) -> dict[str, Any]:
    return {
        "exec": {"command": ["pg_isready", "-U", "postgres", "-h", "127.0.0.1", "-p", "5432"]},
        "periodSeconds": period,
        "timeoutSeconds": 5,
        "failureThreshold": failures,
    }


def server_args(advice: list[Advice]) -> list[str]:
    """The settings of the memory tier as the server's command line (`-c name=value`): the
    official image's entrypoint runs `postgres` with arguments that start with a dash."""
    pairs = [a.values for a in advice if a.area == SETTINGS_AREA]
    return [x for v in pairs for x in ("-c", f"{v['setting']}={v['recommended']}")]


def postgres(
    m: Measured, pg: dict[str, Any], opts: KubeOptions, args: list[str] | None = None
) -> list[Manifest]:
    """The headless Service, the StatefulSet (its server settings: `args`) and its
    PodDisruptionBudget."""
    app = f"{opts.name}-postgres"
    major = m.server_version_num // 10000
    if major < 10:
        raise ValueError(f"no PostgreSQL major version in {m.server_version_num}")
    mount, env = data_directory(major)
    size = volume_gib(m.database_bytes)
    container = {
        "name": "postgres",
        "image": f"postgres:{major}",
        **({"args": args} if args else {}),
        "env": [
            _secret_env("POSTGRES_PASSWORD", opts.secret),
            *({"name": k, "value": v} for k, v in {"POSTGRES_DB": database_name(m), **env}.items()),
        ],
        "ports": [{"name": "postgres", "containerPort": PG_PORT}],
        "resources": _resources(pg["cpu_m"], pg["memory_mi"]),
        "volumeMounts": [{"name": "data", "mountPath": mount}],
        "startupProbe": _pg_isready(10, STARTUP_SECONDS // 10),
        "readinessProbe": _pg_isready(10, 3),
        "lifecycle": {
            "preStop": {
                "exec": {
                    "command": [
                        "gosu",
                        "postgres",
                        "pg_ctl",
                        "stop",
                        "-m",
                        "fast",
                        "-w",
                        "-t",
                        "100",
                    ]
                }
            }
        },
    }
    statefulset = {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": {"name": app, "labels": {"app": app}},
        "spec": {
            "replicas": 1,
            "serviceName": app,
            "selector": {"matchLabels": {"app": app}},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {"labels": {"app": app}},
                "spec": {"terminationGracePeriodSeconds": 120, "containers": [container]},
            },
            "volumeClaimTemplates": [
                {
                    "metadata": {"name": "data"},
                    "spec": {
                        "accessModes": ["ReadWriteOnce"],
                        "resources": {"requests": {"storage": f"{size}Gi"}},
                    },
                }
            ],
        },
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": app, "labels": {"app": app}},
        "spec": {
            "clusterIP": "None",
            "selector": {"app": app},
            "ports": [{"name": "postgres", "port": PG_PORT, "targetPort": "postgres"}],
        },
    }
    pdb = {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": app},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": app}}},
    }
    return [
        Manifest(f"{app}: the StatefulSet's headless Service (its stable DNS name)", service),
        Manifest(
            f"{app}: PostgreSQL {major}, the measured server's major version (data directories "
            "do not move across majors without pg_upgrade).\n"
            f"Data: a {size}Gi volume per pod (twice the measured {m.database_bytes / GIB:,.2f} "
            "GB, at least the top of its size tier), kept when the StatefulSet is deleted "
            "or scaled down.\n"
            + (
                f"Settings for the {pg['memory_mi']}Mi memory tier (epstats advise says why "
                "for each): " + " ".join(a for a in args if a != "-c") + ".\n"
                if args
                else ""
            )
            + f"Password: Secret {opts.secret}, key password; create it first:\n"
            f"  kubectl create secret generic {opts.secret} --from-literal=password=...\n"
            "Probes: startupProbe allows an hour of crash recovery, readinessProbe takes the "
            "pod out of the Service while it cannot accept connections. No livenessProbe on "
            "purpose: a restart during crash recovery starts recovery over (a restart loop), "
            "and a busy server that answers slowly is not dead.\n"
            "preStop: a fast shutdown (pg_ctl -m fast) within the grace period, not the smart "
            "one SIGTERM asks for, which waits for every client and then meets SIGKILL.",
            statefulset,
        ),
        Manifest(
            f"{app}: one replica, so maxUnavailable: 1 (minAvailable: 1 would block every node "
            "drain for good); a drain stops it cleanly and it starts on another node with "
            "its volume",
            pdb,
        ),
    ]


def manifests(advice: list[Advice], m: Measured, opts: KubeOptions | None = None) -> list[Manifest]:
    """Every document: the API (Deployment, HPA, PDB), PostgreSQL, Redis, and the CronJobs."""
    opts = opts or KubeOptions()
    api = _values(advice, "api", "cpu_m")
    hpa = _values(advice, "api", "cpu")
    pdb = _values(advice, "api", "min_available")
    pg = _values(advice, "postgresql", "cpu_m")
    redis = _values(advice, "redis", "cpu_m")
    api_name = f"{opts.name}-api"
    out = [
        Manifest(
            f"{api_name}: requests from the peak rate per pod",
            _deployment(
                api_name,
                "registry.example.com/endpoint-stats-api:latest",
                api["cpu_m"],
                api["memory_mi"],
                hpa["min"],
            ),
        ),
        Manifest(
            f"{api_name}: scale on CPU",
            {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": api_name},
                "spec": {
                    "scaleTargetRef": {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": api_name,
                    },
                    "minReplicas": hpa["min"],
                    "maxReplicas": hpa["max"],
                    "metrics": [
                        {
                            "type": "Resource",
                            "resource": {
                                "name": "cpu",
                                "target": {"type": "Utilization", "averageUtilization": hpa["cpu"]},
                            },
                        }
                    ],
                },
            },
        ),
        Manifest(
            f"{api_name}: at least {pdb['min_available']} of {hpa['min']}+ pods stay up in a drain",
            {
                "apiVersion": "policy/v1",
                "kind": "PodDisruptionBudget",
                "metadata": {"name": api_name},
                "spec": {
                    "minAvailable": pdb["min_available"],
                    "selector": {"matchLabels": {"app": api_name}},
                },
            },
        ),
        *postgres(m, pg, opts, server_args(advice)),
        Manifest(
            f"{opts.name}-redis: the cache",
            _deployment(f"{opts.name}-redis", "redis:7", redis["cpu_m"], redis["memory_mi"], 1),
        ),
    ]
    if opts.cron_image:
        out += cronjobs(m, opts, opts.cron_image)
    return out


def to_yaml(docs: list[Manifest]) -> str:
    """The documents as one YAML stream, each with its comment above it; a text of several
    lines (the ConfigMap's file) as a literal block, readable as the file it is."""
    import yaml

    class Dumper(yaml.SafeDumper):
        pass

    def text(dumper: yaml.SafeDumper, data: str) -> yaml.Node:
        return dumper.represent_scalar(
            "tag:yaml.org,2002:str", data, style="|" if "\n" in data else None
        )

    Dumper.add_representer(str, text)
    parts = []
    for d in docs:
        lines = []
        for line in d.comment.splitlines():  # a line indented in the comment is a command
            lines += [line] if line.startswith(" ") else textwrap.wrap(line, 94) or [""]
        comment = "".join(f"# {line}\n".replace("# \n", "#\n") for line in lines)
        parts.append(comment + yaml.dump(d.doc, Dumper=Dumper, sort_keys=False))
    return "---\n".join(parts)


__all__ = ["DNS_NAME", "KubeOptions", "Manifest", "manifests", "to_yaml", "volume_gib"]
