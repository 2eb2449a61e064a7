"""`epstats advise`: the guide's sizing rules on measured size and traffic, as a table, JSON,
or Kubernetes manifests (advise.rules advises, advise.kubernetes writes the YAML)."""

from __future__ import annotations

import click

from epstats_cli.cli.app import get_app, shown_option


def _role_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from epstats_cli.advise.cronjobs import ROLE_NAME

    if value is not None and not ROLE_NAME.fullmatch(value):
        raise click.BadParameter(
            f"{value!r} is not a role name written without quotes (lowercase letters, digits "
            "and _, at most 63)"
        )
    return value


def _secret_name(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    from epstats_cli.advise.cronjobs import DNS_NAME

    if value is not None and (len(value) > 253 or not DNS_NAME.fullmatch(value)):
        raise click.BadParameter(
            f"{value!r} is not a Kubernetes object name (lowercase letters, digits, - and .)"
        )
    return value


@click.command()
@click.option(
    "--heavy-analysis",
    is_flag=True,
    help="The API runs heavy statistical analysis (256Mi per pod).",
)
@click.option("--redis-persistence", is_flag=True, help="Redis persists data to disk.")
@shown_option("--pods", click.IntRange(1, 1000), 3, "API pods that share the traffic.")
@click.option(
    "--secret-name",
    metavar="NAME",
    callback=_secret_name,
    help="yaml: the Secret holding the PostgreSQL password (key: password). "
    "[default: endpoint-stats-postgres]",
)
@click.option(
    "--with-cronjobs",
    "cron_image",
    metavar="IMAGE",
    help="yaml: add CronJobs running `epstats maintain` (every 10 min) and `epstats check` "
    "in IMAGE, an image with epstats installed, with this run's configuration (a ConfigMap).",
)
@click.option(
    "--dsn-secret",
    metavar="NAME",
    callback=_secret_name,
    help="--with-cronjobs: the Secret holding the CronJobs' DSN (key: dsn). "
    "[default: endpoint-stats-epstats]",
)
@click.option(
    "--maintenance-role",
    metavar="ROLE",
    callback=_role_name,
    help="--with-cronjobs: the PostgreSQL role the CronJobs run as (the comment above them "
    "says what to grant it). [default: epstats_maintainer]",
)
def advise(
    heavy_analysis: bool,
    redis_persistence: bool,
    pods: int,
    secret_name: str | None,
    cron_image: str | None,
    dsn_secret: str | None,
    maintenance_role: str | None,
) -> None:
    """Resource, pool and layout recommendations from measured size and traffic.

    Measures the database and table size, growth, request rate (average and peak hour
    over the last 7 days) and the read/write mix, then applies the performance guide's
    sizing rules, each shown with its input, and the server settings that fit the memory
    tier against their current values. Read-only. With --format yaml, Kubernetes
    manifests: PostgreSQL of the server's own major version on a volume twice the
    database's size, with those settings, its password from a Secret, probed with
    pg_isready.

    Example: epstats advise --format yaml --with-cronjobs registry.example.com/epstats:1
    """
    from epstats_cli.advise import kubernetes, rules
    from epstats_cli.advise.measure import measure
    from epstats_cli.render import Column, Result, Table

    app = get_app()
    fmt = app.fmt  # the global --format (before or after `advise`); yaml: the manifests
    if fmt != "yaml" and (secret_name or cron_image):
        raise click.UsageError(
            "--secret-name and --with-cronjobs shape the manifests of --format yaml"
        )
    if cron_image is not None and not cron_image.strip():
        raise click.BadParameter(
            "is empty (name an image with epstats installed)", param_hint="--with-cronjobs"
        )
    if (dsn_secret or maintenance_role) and cron_image is None:
        raise click.UsageError("--dsn-secret and --maintenance-role shape --with-cronjobs")
    with app.session() as s:
        measured = measure(s)
    advice = rules.advise(measured, rules.Options(heavy_analysis, redis_persistence, pods))
    if fmt == "yaml":
        options = kubernetes.KubeOptions(
            secret_name=secret_name,
            cron_image=cron_image,
            dsn_secret_name=dsn_secret,
            maintenance_role=maintenance_role or "epstats_maintainer",
            config=app.config,
        )
        header = (
            f"# epstats advise: {measured.peak_rps:,.1f} req/s peak, database "
            f"{measured.database_bytes / rules.GIB:,.2f} GB\n"
        )
        text = kubernetes.to_yaml(kubernetes.manifests(advice, measured, options))
        click.echo(header + text, nl=False)
        return
    rows = [
        {
            "area": a.area,
            "rule": a.rule,
            "measured": a.measured,
            "recommendation": a.recommendation,
            "level": a.level,
        }
        for a in advice
    ]
    settings = [dict(a.values, reason=a.rule) for a in advice if a.area == rules.SETTINGS_AREA]
    doc = {
        "measured": dict(vars(measured), settings=[vars(s) for s in measured.settings]),
        "advice": [dict(r, values=a.values) for r, a in zip(rows, advice, strict=True)],
        "settings": settings,
    }
    table = Table(
        [
            Column("area", "Area", wrap=False),
            Column("measured", "Measured"),
            Column("recommendation", "Recommendation"),
            Column("rule", "Rule"),
        ],
        rows,
        "epstats advise",
        ["rules: the performance tuning guide; GB = 1024^3 bytes"],
    )
    app.out(Result([table], doc))
