"""Everything else works on the partitioned table `partition apply` made: indices (status on
the parent, sizes and scans from the partitions), vacuum, analyze (the parent's own
statistics), reindex, the rollup (build, verify), reports, check (no false xid-age CRITICAL,
no "never vacuumed"), status and advise; and the judge of `check partition_runway`."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli.config import Config
from epstats_cli.health.judges import State, Thresholds
from epstats_cli.health.partition_judges import partition_runway
from epstats_cli.partition_runway import DefaultRows, Runway
from tests.conftest import run_cli

pytestmark = pytest.mark.one_version  # heavy: the first server version only

NOW = dt.datetime(2025, 3, 10, 12, tzinfo=dt.timezone.utc)


def _json(cfg: str, dsn: str, *args: str, code: int = 0) -> Any:
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "json", *args)
    assert r.code == code, r.stdout + r.stderr
    return json.loads(r.stdout)


def test_every_command_on_the_partitioned_table(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("view: {strategy: incremental}\ndatabase: {lock_timeout: 2s}\n")
    c = str(cfg)
    assert run_cli("-c", c, "--dsn", dsn, "init", "--with-requests-table").code == 0
    assert run_cli("-c", c, "--dsn", dsn, "generate", "--rows", "30000", "--days", "6").code == 0
    assert run_cli("-c", c, "--dsn", dsn, "indexes", "apply").code == 0
    _json(c, dsn, "partition", "apply", "--interval", "day", "--drop-old")
    row = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'requests'").fetchone()
    assert row == ("p",)
    total = conn.execute("SELECT count(*) FROM requests").fetchone()
    assert total is not None
    for command in (["vacuum"], ["analyze"], ["reindex"], ["view", "build"]):
        r = run_cli("-c", c, "--dsn", dsn, *command)
        assert r.code == 0, (command, r.stdout, r.stderr)
    # ANALYZE covered the parent itself (autovacuum never does): inherited statistics
    inherited = conn.execute(
        "SELECT count(*) FROM pg_stats WHERE tablename = 'requests' AND inherited"
    ).fetchone()
    assert inherited is not None and inherited[0] >= 4
    # the recommended indices on the parent, with their partitions' sizes
    status = _json(c, dsn, "indexes", "status")
    rows = status["indexes"]
    recommended = [i for i in rows if i["recommended"]]
    assert len(recommended) == 2 and all(i["size_bytes"] > 0 for i in recommended), rows
    valid = conn.execute(
        "SELECT bool_and(indisvalid) FROM pg_index WHERE indrelid IN "
        "(SELECT relid FROM pg_partition_tree('requests'))"
    ).fetchone()
    assert valid == (True,)
    verify = run_cli("-c", c, "--dsn", dsn, "view", "verify", "--days", "7")
    assert verify.code == 0, verify.stdout + verify.stderr
    report = _json(c, dsn, "report", "top", "--source", "raw", "--days", "7", "--limit", "1000")
    assert sum(r["requests"] for r in report["rows"]) + report["future_rows"]["count"] == total[0]
    view = _json(c, dsn, "report", "top", "--source", "auto", "--days", "7", "--limit", "1000")
    assert sorted((r["endpoint"], r["requests"]) for r in view["rows"]) == sorted(
        (r["endpoint"], r["requests"]) for r in report["rows"]
    )
    checks = run_cli("-c", c, "--dsn", dsn, "--format", "json", "check")
    states = {x["name"]: x for x in json.loads(checks.stdout)["checks"]}
    assert states["xid_age"]["state"] == "OK", states["xid_age"]  # the partitions' age
    assert states["vacuum_age"]["state"] == "OK", states["vacuum_age"]
    assert states["analyze_age"]["state"] == "OK", states["analyze_age"]
    assert states["partition_runway"]["state"] == "OK", states["partition_runway"]
    assert run_cli("-c", c, "--dsn", dsn, "status").code == 0
    assert run_cli("-c", c, "--dsn", dsn, "advise").code == 0


T = Thresholds.of(Config())


@pytest.mark.parametrize(
    ("ahead", "covers", "default", "expected"),
    [
        (7, True, 0, State.OK),
        (3, True, 0, State.OK),
        (2, True, 0, State.WARNING),
        (1, True, 0, State.WARNING),
        (0, True, 0, State.CRITICAL),
        (7, False, 0, State.CRITICAL),  # nothing holds the current time
        (7, True, 5, State.WARNING),  # rows in the DEFAULT partition
        (0, True, 5, State.CRITICAL),
    ],
)
def test_partition_runway_levels(ahead: int, covers: bool, default: int, expected: State) -> None:
    rows = DefaultRows(default, NOW, NOW) if default else DefaultRows(0, None, None)
    r = Runway(True, "day", ahead, covers, NOW, "requests_default", rows)
    result = partition_runway(r, T, NOW)
    assert result.state == expected, result.summary
    assert (result.value, result.warning, result.critical) == (ahead, 3, 1)
    if default:
        assert "5 row(s) in the DEFAULT partition requests_default" in result.summary


def test_partition_runway_on_a_plain_table_is_ok() -> None:
    result = partition_runway(Runway(False), T, NOW)
    assert result.state == State.OK and "not partitioned" in result.summary
