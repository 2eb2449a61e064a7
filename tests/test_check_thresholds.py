"""One rule for every threshold pair under `check:`: each level >= 0, 0 turns that level off
(both 0: the check is off), a share at most 1, critical not below warning when both are on.
Table-driven over every pair of CheckConfig, then on a real server."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli import config
from epstats_cli.config import BelowLevels, CheckConfig, DurationLevels, Levels, ShareLevels
from epstats_cli.errors import ConfigError
from epstats_cli.health import CHECKS, Thresholds
from epstats_cli.health.checks import LEVELS_KEY
from epstats_cli.health.result import CheckResult, Perf, State, level
from tests.conftest import run_cli

PAIRS = [f.name for f in fields(CheckConfig) if isinstance(f.default, Levels | DurationLevels)]
SHARES = [f.name for f in fields(CheckConfig) if isinstance(f.default, ShareLevels)]
DURATIONS = [f.name for f in fields(CheckConfig) if isinstance(f.default, DurationLevels)]
# judged below the levels (a runway: fewer is worse): critical may not be above warning
BELOW = [f.name for f in fields(CheckConfig) if isinstance(f.default, BelowLevels)]


def _values(key: str, a: float, b: float) -> dict[str, Any]:
    """A pair as written in the file: durations in seconds, numbers as they are."""
    if key in DURATIONS:
        return {"warning": f"{a:g}s", "critical": f"{b:g}s"}
    return {"warning": a, "critical": b}


def _build(key: str, pair: dict[str, Any]) -> CheckConfig:
    return config.build({"check": {key: pair}}).check


def test_every_pair_is_a_check_s_thresholds() -> None:
    assert set(PAIRS) == set(LEVELS_KEY.values())
    assert set(LEVELS_KEY) <= set(CHECKS)
    assert set(SHARES) == {
        "dead_tuple_ratio",
        "table_bloat",
        "index_bloat",
        "connections",
        "sequence_exhaustion",
    }


@pytest.mark.parametrize("key", PAIRS)
def test_zero_turns_a_level_off_everywhere(key: str) -> None:
    both = getattr(_build(key, _values(key, 0, 0)), key)
    assert both.off
    warn_only = getattr(_build(key, _values(key, 0.5, 0)), key)
    crit_only = getattr(_build(key, _values(key, 0, 0.5)), key)
    assert not warn_only.off and not crit_only.off
    assert level(0.6, _seconds(warn_only)) == State.WARNING  # never CRITICAL
    assert level(0.6, _seconds(crit_only)) == State.CRITICAL
    assert level(0.4, _seconds(crit_only)) == State.OK


def _seconds(levels: Levels | DurationLevels) -> Levels:
    if isinstance(levels, DurationLevels):
        return Levels(levels.warning.total_seconds(), levels.critical.total_seconds())
    return levels


@pytest.mark.parametrize("key", PAIRS)
def test_critical_may_not_come_before_warning(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        _build(key, _values(key, 0.25, 0.5) if key in BELOW else _values(key, 0.5, 0.25))
    assert len(info.value.problems) == 1
    assert info.value.problems[0].startswith(f"check.{key}.critical: ")
    assert ("is above warning" if key in BELOW else "is below warning") in info.value.problems[0]
    assert getattr(_build(key, _values(key, 0.5, 0.5)), key)  # equal levels are fine


@pytest.mark.parametrize("key", PAIRS)
def test_levels_are_not_negative(key: str) -> None:
    with pytest.raises(ConfigError) as info:
        _build(key, _values(key, -1, 1))
    assert info.value.problems[0].startswith(f"check.{key}.warning: ")


@pytest.mark.parametrize("key", PAIRS)
def test_shares_are_at_most_one(key: str) -> None:
    pair = _values(key, 3, 2) if key in BELOW else _values(key, 2, 3)
    if key not in SHARES:  # multiples of a schedule or of a maximum, durations: any size
        assert getattr(_build(key, pair), key)
        return
    with pytest.raises(ConfigError) as info:
        _build(key, pair)
    assert info.value.problems == [
        f"check.{key}.warning: 2 is out of range (expected 0..1)",
        f"check.{key}.critical: 3 is out of range (expected 0..1)",
    ]
    assert getattr(_build(key, _values(key, 1, 1)), key)


def test_a_threshold_of_zero_is_no_threshold_in_perfdata() -> None:
    r = CheckResult("x", State.OK, "fine", 5, 0, 10, extra=[Perf("y", 1, 0.5, 0)])
    assert r.perfdata() == "x=5;;10 y=1;0.5;"
    assert (r.warning, r.critical) == (None, 10)
    assert Thresholds.of(config.Config())  # the defaults build


# --- on a real server -------------------------------------------------------------------------


def _checks(cfg: Path, dsn: str, *args: str) -> tuple[int, dict[str, dict[str, Any]]]:
    r = run_cli("-c", str(cfg), "--dsn", dsn, "--format", "json", "check", *args)
    assert "Traceback" not in r.stderr, r.stderr
    return r.code, {c["name"]: c for c in json.loads(r.stdout)["checks"]}


def test_every_check_with_both_levels_zero_is_off(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text("check:\n" + "".join(f"  {k}: {{warning: 0, critical: 0}}\n" for k in PAIRS))
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    conn.execute("ALTER TABLE requests ADD COLUMN id integer GENERATED BY DEFAULT AS IDENTITY")
    conn.execute("INSERT INTO requests VALUES ('/a', now() - interval '1 day', 1, 200)")
    _code, checks = _checks(cfg, dsn)
    for name, key in LEVELS_KEY.items():
        c = checks[name]
        assert (c["state"], c["message"]) == ("OK", f"off (check.{key} is 0)"), c
        assert c["perfdata"] == {}, c


def test_one_level_off_on_a_real_server(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Only a WARNING level: never CRITICAL however far past it; only a CRITICAL level:
    nothing in between."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "check:\n"
        "  connections: {warning: 0.0001, critical: 0}\n"
        "  sequence_exhaustion: {warning: 0, critical: 0.5}\n"
        "  long_transactions: {warning: 1ms, critical: 0}\n"
        "  replication_lag: {warning: 1m, critical: 0}\n"
    )
    assert run_cli("-c", str(cfg), "--dsn", dsn, "init", "--with-requests-table").code == 0
    conn.execute("ALTER TABLE requests ADD COLUMN id integer GENERATED BY DEFAULT AS IDENTITY")
    conn.execute("SELECT setval('requests_id_seq', 2147483000)")  # 99.99 % used
    only = "connections,sequence_exhaustion,long_transactions,replication_lag"
    with psycopg.connect(dsn) as idle:
        idle.execute("SELECT 1")  # idle in transaction from here on
        code, checks = _checks(cfg, dsn, "--only", only)
    assert checks["connections"]["state"] == "WARNING", checks["connections"]
    assert checks["connections"]["perfdata"]["warning"] == 0.0001
    assert "critical" not in checks["connections"]["perfdata"]
    assert checks["sequence_exhaustion"]["state"] == "CRITICAL", checks["sequence_exhaustion"]
    assert checks["long_transactions"]["state"] == "WARNING", checks["long_transactions"]
    assert checks["replication_lag"]["state"] == "OK"
    assert code == 2
