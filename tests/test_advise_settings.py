"""`advise`'s server settings (issue 17): the values that fit the guide's memory tier, each
against the server's current one, in the table, the JSON and the StatefulSet's command line.
Pure rules at every tier first, then against real servers."""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

import psycopg
import pytest
import yaml

from epstats_cli.advise import kubernetes, rules, server_settings
from epstats_cli.advise.rules import GIB, Measured
from epstats_cli.advise.server_settings import ServerSetting, kilobytes, memory
from tests.conftest import Server, run_cli
from tests.helpers import fill

BASE = Measured(
    database_bytes=2 * GIB,
    table_bytes=GIB,
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
# a server as initdb leaves it (PostgreSQL 15): pg_settings' reset_val and unit
DEFAULTS = (
    ServerSetting("max_connections", "200", None, "configuration file", "postmaster"),
    ServerSetting("shared_buffers", "16384", "8kB", "default", "postmaster"),
    ServerSetting("effective_cache_size", "524288", "8kB", "default", "user"),
    ServerSetting("work_mem", "4096", "kB", "default", "user"),
    ServerSetting("maintenance_work_mem", "65536", "kB", "default", "user"),
    ServerSetting("autovacuum_max_workers", "3", None, "default", "postmaster"),
    ServerSetting("random_page_cost", "4", None, "default", "user"),
    ServerSetting("jit", "on", None, "default", "user"),
)


def _settings(m: Measured) -> dict[str, dict[str, Any]]:
    return {
        a.values["setting"]: dict(a.values, advice=a)
        for a in rules.advise(m)
        if a.area == rules.SETTINGS_AREA
    }


@pytest.mark.parametrize(
    ("database", "shared", "cache", "maintenance"),
    [
        (0, "256MB", "768MB", "64MB"),
        (10 * GIB - 1, "256MB", "768MB", "64MB"),  # the top of the 1Gi tier
        (10 * GIB, "512MB", "1536MB", "128MB"),
        (50 * GIB, "512MB", "1536MB", "128MB"),
        (50 * GIB + 1, "1GB", "3GB", "256MB"),
    ],
)
def test_memory_settings_follow_the_tier(
    database: int, shared: str, cache: str, maintenance: str
) -> None:
    got = _settings(replace(BASE, database_bytes=database))
    assert got["shared_buffers"]["recommended"] == shared
    assert got["effective_cache_size"]["recommended"] == cache
    assert got["maintenance_work_mem"]["recommended"] == maintenance
    assert got["autovacuum_max_workers"]["recommended"] == "3"
    assert got["random_page_cost"]["recommended"] == "1.1"
    assert got["jit"]["recommended"] == "off"
    assert list(got) == list(server_settings.SETTINGS)


@pytest.mark.parametrize(
    ("database", "max_connections", "work_mem", "connections"),
    [
        # 5 pods x 20 + 5 admin = 105 connections: (1024 - 256) MB / (105 x 3) = 2.4
        (0, 200, "2MB", 105),
        (50 * GIB + 1, 200, "9MB", 105),  # (4096 - 1024) / 315 = 9.75
        # max_connections 60 (3 reserved): the pools are capped at 10 per pod: 5 x 10 + 5
        (0, 60, "4MB", 55),  # 768 / 165 = 4.65
        # 20 - 3 reserved - 5 admin = 12: 2 per pod, 5 x 2 + 5 = 15; 768 / 45 = 17.07
        (0, 20, "17MB", 15),
        (0, 4, "64MB", 4),  # no pool fits: max_connections itself bounds them (768 / 12)
    ],
)
def test_work_mem_is_shared_by_the_pools_connections(
    database: int, max_connections: int, work_mem: str, connections: int
) -> None:
    m = replace(BASE, database_bytes=database, max_connections=max_connections)
    got = _settings(m)["work_mem"]
    assert got["recommended"] == work_mem
    assert f"({connections} connections x 3" in got["advice"].rule


def test_each_setting_against_the_current_value() -> None:
    got = _settings(replace(BASE, settings=DEFAULTS))
    assert {n: (v["current"], v["change"], v["restart"]) for n, v in got.items()} == {
        "max_connections": ("200", False, False),
        "shared_buffers": ("128MB", True, True),
        "effective_cache_size": ("4GB", True, False),
        "work_mem": ("4MB", True, False),
        "maintenance_work_mem": ("64MB", False, False),
        "autovacuum_max_workers": ("3", False, False),
        "random_page_cost": ("4", True, False),
        "jit": ("on", True, False),
    }
    shared = got["shared_buffers"]["advice"]
    assert shared.measured == "shared_buffers = 128MB (default)"
    assert shared.recommendation == "shared_buffers = 256MB (a restart applies it)"
    assert got["maintenance_work_mem"]["advice"].recommendation == "no change"
    # not read (a unit test's Measured): the recommendation alone
    assert _settings(BASE)["jit"]["current"] is None


def test_the_statefulset_keeps_the_max_connections_work_mem_is_sized_within() -> None:
    """work_mem for "15 connections within max_connections 20" (trial 17b, defect 8): the
    StatefulSet runs with max_connections 20, not the image's 100."""
    m = replace(BASE, max_connections=20)
    assert _settings(m)["work_mem"]["recommended"] == "17MB"
    statefulset = next(
        d for d in kubernetes.manifests(rules.advise(m), m) if d.doc["kind"] == "StatefulSet"
    )
    (container,) = statefulset.doc["spec"]["template"]["spec"]["containers"]
    assert container["args"][:2] == ["-c", "max_connections=20"]


def test_a_role_or_database_setting_is_changed_where_it_is_set() -> None:
    """jit = on set by ALTER DATABASE ... SET: a server `-c jit=off` does not override it,
    and the advice says where to change it (trial 17b, defect 8)."""
    jit = ServerSetting("jit", "on", None, "role or database", "user")
    settings = (*(s for s in DEFAULTS if s.name != "jit"), jit)
    advice = _settings(replace(BASE, settings=settings))["jit"]["advice"]
    assert "ALTER ROLE / DATABASE ... SET jit = off" in advice.recommendation
    assert "does not override it" in advice.recommendation
    server = _settings(replace(BASE, settings=DEFAULTS))["jit"]["advice"]
    assert server.recommendation == "jit = off"


@pytest.mark.parametrize(
    ("value", "unit", "kb", "shown"),
    [
        ("16384", "8kB", 131072, "128MB"),
        ("4096", "kB", 4096, "4MB"),
        ("1536", "MB", 1536 * 1024, "1536MB"),
        ("3", "GB", 3 * 1024**2, "3GB"),
        ("100", "kB", 100, "100kB"),
    ],
)
def test_memory_values_as_postgresql_writes_them(
    value: str, unit: str, kb: float, shown: str
) -> None:
    assert kilobytes(value, unit) == kb
    assert memory(kb) == shown
    assert kilobytes("1.1", None) is None


def test_the_statefulset_runs_with_the_settings() -> None:
    m = replace(BASE, database_bytes=60 * GIB, settings=DEFAULTS)
    advice = rules.advise(m)
    docs = kubernetes.manifests(advice, m)
    statefulset = next(d for d in docs if d.doc["kind"] == "StatefulSet")
    (container,) = statefulset.doc["spec"]["template"]["spec"]["containers"]
    assert container["args"] == [
        *("-c", "max_connections=200"),
        *("-c", "shared_buffers=1GB", "-c", "effective_cache_size=3GB"),
        *("-c", "work_mem=9MB", "-c", "maintenance_work_mem=256MB"),
        *("-c", "autovacuum_max_workers=3", "-c", "random_page_cost=1.1", "-c", "jit=off"),
    ]
    assert "Settings for the 4096Mi memory tier" in statefulset.comment


# --- against real servers ---------------------------------------------------------------------


def _advise(dsn: str, *args: str) -> Any:
    r = run_cli("--dsn", dsn, *args, "advise")
    assert r.code == 0, r.stderr
    return r.stdout


def test_advise_shows_each_setting_against_the_servers_value(
    server: Server, dsn: str, conn: psycopg.Connection[Any]
) -> None:
    """The current values are the server's as a new session starts with them (jit is the
    server's on, not the off of advise's own session); one the database sets says so."""
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    conn.execute(f"ALTER DATABASE {conn.info.dbname} SET random_page_cost = 1.1")
    expected = dict(
        conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name = ANY(%s)",
            (list(server_settings.SETTINGS),),
        ).fetchall()
    )
    doc = json.loads(_advise(dsn, "--format", "json"))
    shown = {s["setting"]: s for s in doc["settings"]}
    assert list(shown) == list(server_settings.SETTINGS)
    assert shown["jit"]["current"] == "on" == expected["jit"]  # the server's, not the session's
    assert shown["jit"]["recommended"] == "off" and shown["jit"]["change"]
    for name in ("shared_buffers", "work_mem", "maintenance_work_mem", "effective_cache_size"):
        assert shown[name]["current"] == expected[name], name
    assert shown["shared_buffers"]["current"] == "256MB"  # as the test clusters start
    assert shown["shared_buffers"]["source"] == "command line"
    assert shown["random_page_cost"] | {"reason": ""} == {
        "setting": "random_page_cost",
        "current": "1.1",
        "recommended": "1.1",
        "change": False,
        "restart": False,
        "source": "database",
        "reason": "",
    }
    assert "SSD" in shown["random_page_cost"]["reason"]
    assert doc["measured"]["settings"][0].keys() == {"name", "value", "unit", "source", "context"}
    advice = [a for a in doc["advice"] if a["area"] == "settings"]
    assert [a["values"]["setting"] for a in advice] == list(server_settings.SETTINGS)

    table = _advise(dsn)
    assert "jit = on (" in table and "jit = off" in table
    assert "random_page_cost = 1.1 (database)" in table

    docs = list(yaml.safe_load_all(_advise(dsn, "--format", "yaml")))
    statefulset = next(d for d in docs if d["kind"] == "StatefulSet")
    (container,) = statefulset["spec"]["template"]["spec"]["containers"]
    assert container["args"][container["args"].index("jit=off") - 1] == "-c"
    assert "random_page_cost=1.1" in container["args"]
    assert f"postgres:{server.version}" == container["image"]
