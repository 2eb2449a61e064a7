"""The CronJobs of `advise --format yaml --with-cronjobs IMAGE`: `epstats maintain` every 10
minutes and `epstats check` every 5, configured like the run of advise that wrote them.

They read the configuration advise ran with from a ConfigMap (EPSTATS_CONFIG), its secrets
left out; the DSN of a dedicated maintenance role from a Secret (named, never given); and run
as a non-root user on a read-only root filesystem. The comment above them gives the SQL that
grants the role what the commands need. Pure: the measurements and options in, documents out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from epstats_cli.advise.rules import Measured
from epstats_cli.config import Config, as_dict, keys, quote_ident

PG_PORT = 5432
MAINTAIN_SCHEDULE = "*/10 * * * *"
CHECK_SCHEDULE = "*/5 * * * *"
MAINTAIN_DEADLINE = 3000  # s: past maintenance.max_runtime (30m); SIGTERM is recorded (143)
DNS_NAME = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
ROLE_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # a PostgreSQL role, written without quotes
CONFIG_DIR = "/etc/epstats"
NON_ROOT = 65532  # the conventional "nonroot" user and group of distroless images


@dataclass(frozen=True)
class Manifest:
    """One document and the comment printed above it."""

    comment: str
    doc: dict[str, Any]


@dataclass(frozen=True)
class KubeOptions:
    name: str = "endpoint-stats"
    secret_name: str | None = None  # default: <name>-postgres
    cron_image: str | None = None  # an image with epstats: adds the maintain and check CronJobs
    dsn_secret_name: str | None = None  # the CronJobs' DSN (key dsn); default: <name>-epstats
    maintenance_role: str = "epstats_maintainer"  # the role the CronJobs connect as
    config: Config = field(default_factory=Config)  # what the CronJobs run with, no secrets

    @property
    def secret(self) -> str:
        return self.secret_name or f"{self.name}-postgres"

    @property
    def dsn_secret(self) -> str:
        return self.dsn_secret_name or f"{self.name}-epstats"


def shareable_config(config: Config) -> dict[str, Any]:
    """The configuration as a file, without its secrets: the DSNs (the CronJobs take theirs
    from a Secret) and database.password_env (users have put the password itself there)."""

    def strip(instance: Any, shown: dict[str, Any]) -> dict[str, Any]:
        for f in keys(type(instance)):
            meta = f.metadata
            if "parse" in meta and (meta.get("secret") or not meta.get("echo", True)):
                shown.pop(f.name, None)
            elif "parse" not in meta and "records" not in meta:
                strip(getattr(instance, f.name), shown[f.name])
        return shown

    return strip(config, as_dict(config))


def database_name(m: Measured) -> str:
    return m.database or "postgres"


def maintenance_grants(
    opts: KubeOptions, major: int, owners: tuple[tuple[str, str, bool], ...] = ()
) -> list[str]:
    """The SQL that gives the CronJobs' role what `maintain` and `check` need (README, Roles):
    its runs, the tables' maintenance (the owner's rights up to 16, MAINTAIN from 17), reading
    the raw rows and the rollup (verify, check), other sessions' activity (check). The owner's
    rights come from membership in the tables' owner (Measured.owners), never in a superuser:
    a table a superuser owns is to be given an owner of its own first."""
    role = opts.maintenance_role
    table, view = opts.config.source.table, opts.config.view_name
    lines = [
        f"CREATE ROLE {role} LOGIN PASSWORD '...';",
        f"GRANT USAGE ON SCHEMA epstats TO {role};",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON epstats.runs, epstats.rollup_state TO {role};",
        f"GRANT SELECT ON {table}, {view} TO {role};",
        f"GRANT pg_read_all_stats TO {role};",
    ]
    if opts.config.view.strategy == "incremental":
        lines.append(f"GRANT INSERT, DELETE ON {view} TO {role};")
    ordinary = list(dict.fromkeys(quote_ident(o) for _r, o, su in owners if not su))
    supers = [(relation, quote_ident(o)) for relation, o, su in owners if su]
    owner = ", ".join(ordinary) or "<the tables' owner>"
    if supers:  # never GRANT a superuser's role: give its tables an owner of their own
        owner = "<the new owner>"
        lines += [
            f"-- {relation} belongs to the superuser {o}, whose role is never to be granted: "
            f"first give it an owner of its own: ALTER {relation} OWNER TO <the new owner>;"
            for relation, o in supers
        ]
    if major >= 17:
        lines += [
            f"GRANT MAINTAIN ON {table}, {view} TO {role};  -- vacuum, analyze, reindex, refresh",
            f"-- cleanup drops an invalid index left by an interrupted build: only the owner "
            f"may (GRANT {owner} TO {role}, or run that cleanup as the owner)",
        ]
    else:
        lines.append(
            f"GRANT {owner} TO {role};  -- vacuum, analyze, reindex, refresh, "
            "cleanup: the owner's rights (a role of its own, never a superuser)"
        )
    return lines


def cronjobs(m: Measured, opts: KubeOptions, image: str) -> list[Manifest]:
    """The configuration (a ConfigMap), `epstats maintain` every 10 minutes (one at a time)
    and `epstats check` every 5, as the maintenance role, non-root."""
    import yaml

    host = f"{opts.name}-postgres"
    dbname = quote(database_name(m), safe="")
    config_map = f"{opts.name}-epstats-config"
    role = opts.maintenance_role
    settings = shareable_config(opts.config)
    text = yaml.safe_dump(settings, sort_keys=False)
    configmap = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": config_map},
        "data": {"config.yaml": text},
    }

    def cronjob(task: str, schedule: str, command: list[str], deadline: int) -> dict[str, Any]:
        container = {
            "name": f"epstats-{task}",
            "image": image,
            "command": command,
            "env": [
                {"name": "EPSTATS_CONFIG", "value": f"{CONFIG_DIR}/config.yaml"},
                {
                    "name": "EPSTATS_DSN",
                    "valueFrom": {"secretKeyRef": {"name": opts.dsn_secret, "key": "dsn"}},
                },
                {"name": "PGUSER", "value": role},  # when the Secret's DSN names no user
                {"name": "HOME", "value": "/tmp"},
            ],
            "volumeMounts": [
                {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                {"name": "tmp", "mountPath": "/tmp"},
            ],
            "resources": {
                "requests": {"cpu": "50m", "memory": "128Mi"},
                "limits": {"memory": "256Mi"},
            },
            "securityContext": {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            },
        }
        pod = {
            "restartPolicy": "Never",
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": NON_ROOT,
                "runAsGroup": NON_ROOT,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [container],
            "volumes": [
                {"name": "config", "configMap": {"name": config_map}},
                {"name": "tmp", "emptyDir": {}},
            ],
        }
        return {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": f"{opts.name}-{task}"},
            "spec": {
                "schedule": schedule,
                "concurrencyPolicy": "Forbid",
                "startingDeadlineSeconds": 300,
                "successfulJobsHistoryLimit": 1,
                "failedJobsHistoryLimit": 3,
                "jobTemplate": {
                    "spec": {
                        "backoffLimit": 0,
                        "activeDeadlineSeconds": deadline,
                        "template": {"spec": pod},
                    }
                },
            },
        }

    major = m.server_version_num // 10000
    dsn = f"postgresql://{role}:<password>@{host}:{PG_PORT}/{dbname}"
    grants = "\n".join(f"  {line}" for line in maintenance_grants(opts, major, m.owners))
    return [
        Manifest(
            f"{config_map}: the epstats configuration the CronJobs run with (EPSTATS_CONFIG): "
            "the one advise ran with, without the DSNs and database.password_env (the DSN "
            f"comes from Secret {opts.dsn_secret}).",
            configmap,
        ),
        Manifest(
            f"{opts.name}-maintain: epstats -q maintain every 10 minutes, never two at once "
            "(Forbid); it runs whatever is due and exits 1 when a task failed (a failed Job). "
            f"Image {image}: one with epstats installed (there is no official one); it runs as "
            f"user {NON_ROOT}, not root, on a read-only root filesystem.\n"
            f"It connects as role {role}, with the DSN in Secret {opts.dsn_secret} (key dsn); "
            "create both first:\n"
            f"  kubectl create secret generic {opts.dsn_secret} --from-literal=dsn='{dsn}'\n"
            f"The rights {role} needs (as a superuser or the tables' owner; "
            f"`epstats maintain --dry-run` as {role} names any it lacks):\n{grants}",
            cronjob(
                "maintain", MAINTAIN_SCHEDULE, ["epstats", "-q", "maintain"], MAINTAIN_DEADLINE
            ),
        ),
        Manifest(
            f"{opts.name}-check: epstats check every 5 minutes as {role}; WARNING or worse "
            "fails the Job",
            cronjob("check", CHECK_SCHEDULE, ["epstats", "check"], 240),
        ),
    ]
