"""One round of grants is enough for every command that builds, refreshes or verifies the
rollup, both strategies (the tester's findings on issue 13): a role with nothing but its login
(the tables' owner `app`, or a maintainer that owns nothing) runs the command, is refused with
every right it lacks named, is granted exactly the GRANTs named, and the next run succeeds.
Before, a refresh's needs were left out whenever the rollup's mark was in epstats.rollup_state
(not in an old COMMENT): a dry run said "planned", the real run failed on INSERT on
epstats.rollup_state, or "must be owner", after minutes of work. Real non-superuser roles on
PostgreSQL 15 (ownership) and 18 (MAINTAIN)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql

from tests.conftest import Server, run_cli
from tests.helpers import fill

pytestmark = pytest.mark.one_version  # heavy: the first server version only

PASSWORD = "one-round-pw"
GRANT = re.compile(r"GRANT [^()]+? TO [a-z_0-9]+")
KIND = {"materialized": "MATERIALIZED VIEW", "incremental": "TABLE"}


@dataclass
class Deployment:
    cfg: str  # the configuration file (view.strategy)
    owner: str  # owns the source table and the rollup (not a superuser)
    maintainer: str  # owns nothing
    dsns: dict[str, str]  # "owner" / "maintainer" -> its DSN


@pytest.fixture(params=["materialized", "incremental"])
def deployment(
    request: pytest.FixtureRequest,
    server: Server,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
) -> Iterator[Deployment]:
    """epstats initialised and the rollup built (by the superuser), then the table and the
    rollup given to `app`; a maintainer with only its login."""
    strategy: str = request.param
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"view: {{strategy: {strategy}}}\n")
    db = conn.info.dbname
    owner, maintainer = f"app_{db}", f"mnt_{db}"
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 3000)
    assert run_cli("-c", str(cfg), "--dsn", dsn, "view", "build").code == 0
    for name in (owner, maintainer):
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(PASSWORD)
            )
        )
    conn.execute(f"ALTER TABLE requests OWNER TO {owner}")
    conn.execute(f"ALTER {KIND[strategy]} endpoint_daily_stats OWNER TO {owner}")
    dsns = {
        "owner": server.dsn_for(db, user=owner, password=PASSWORD),
        "maintainer": server.dsn_for(db, user=maintainer, password=PASSWORD),
    }
    try:
        yield Deployment(str(cfg), owner, maintainer, dsns)
    finally:
        for name in (maintainer, owner):
            conn.execute(f"REASSIGN OWNED BY {name} TO CURRENT_USER")
            conn.execute(f"DROP OWNED BY {name}")
        for name in (maintainer, owner):
            server.execute(f"DROP ROLE IF EXISTS {name}")


def _grants(stderr: str) -> list[str]:
    """The GRANT each line after the first names first (the one a DBA would run)."""
    grants = []
    for line in stderr.splitlines()[1:]:
        found = GRANT.search(line)
        assert found is not None, line
        grants.append(found.group())
    return grants


COMMANDS = {
    "view refresh": ["view", "refresh"],
    "view build": ["view", "build"],  # the rollup dropped first
    "view build --replace": ["view", "build", "--replace"],
    "view verify": ["view", "verify"],
    "maintain refresh": ["maintain", "--force", "refresh", "--only", "refresh"],
    "maintain verify": ["maintain", "--force", "verify", "--only", "verify"],
}


@pytest.mark.parametrize("who", ["owner", "maintainer"])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_one_round_of_the_named_grants_is_enough(
    command: str, who: str, deployment: Deployment, conn: psycopg.Connection[Any]
) -> None:
    args = COMMANDS[command]
    if command == "view build":
        kind = conn.execute(
            "SELECT relkind FROM pg_class WHERE relname = 'endpoint_daily_stats'"
        ).fetchone()
        assert kind is not None
        conn.execute(
            f"DROP {KIND['materialized' if kind[0] == 'm' else 'incremental']} endpoint_daily_stats"
        )
    dsn = deployment.dsns[who]
    dry = run_cli("-c", deployment.cfg, "--dsn", dsn, *args, "--dry-run")
    r = run_cli("-c", deployment.cfg, "--dsn", dsn, *args)
    assert r.code == 1 and "Traceback" not in r.stderr, (r.stdout, r.stderr)
    head = r.stderr.splitlines()[0]
    assert "was not run: role " in head, r.stderr
    if command != "view verify":  # read-only: no --dry-run
        assert dry.code == 1 and "would fail" in dry.stderr.splitlines()[0], dry.stderr
        assert dry.stderr.splitlines()[1:] == r.stderr.splitlines()[1:]  # the same list
    grants = _grants(r.stderr)
    assert len(grants) == int(re.search(r"lacks (\d+) right", head).group(1))  # type: ignore[union-attr]
    for grant in grants:
        conn.execute(grant)
    if command != "view verify":  # new rows: a refresh has work, verify days to repair
        fill(conn, 100)
    again = run_cli("-c", deployment.cfg, "--dsn", dsn, "--format", "json", *args)
    assert again.code == 0, (grants, again.stdout, again.stderr)
    doc = json.loads(again.stdout)
    if command == "view verify":
        assert doc["ok"] is True, again.stdout  # it ran and compared
        return
    statuses = {t["status"] for t in doc["tasks"]}
    assert statuses <= {"ok", "skipped"} and "ok" in statuses, again.stdout
