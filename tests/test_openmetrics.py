"""`check` and `status` with --format openmetrics, read back by the official Prometheus client's
OpenMetrics parser and its text-format (0.0.4) parser; and check's table for people (the
State column's colours, the first line led by what set the state)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client.openmetrics.parser import (
    text_string_to_metric_families as openmetrics_families,
)
from prometheus_client.parser import text_string_to_metric_families as prometheus_families

from epstats_cli.health.openmetrics import Families, check_metrics, metric_name
from epstats_cli.health.result import CheckResult, Perf, State
from tests.conftest import run_cli
from tests.helpers import fill
from tests.test_check import _healthy


def _parsed(text: str) -> dict[str, Any]:
    """The families both parsers read, checked to agree: name -> family (OpenMetrics')."""
    assert text.endswith("# EOF\n")
    om = {f.name: f for f in openmetrics_families(text)}  # type: ignore[no-untyped-call]
    prom = {f.name: f for f in prometheus_families(text)}
    assert om and set(om) == set(prom)
    for name, family in om.items():
        assert family.type == prom[name].type == "gauge", name
        got = [(s.name, s.labels, s.value) for s in family.samples]
        assert got == [(s.name, s.labels, s.value) for s in prom[name].samples], name
        assert all(s.timestamp is None for s in family.samples), name
        assert family.documentation, name
    return om


def _metadata(text: str) -> dict[str, dict[str, str]]:
    """`# TYPE`, `# UNIT`, `# HELP` lines by metric name."""
    out: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        parts = line.split(" ", 3)
        if line.startswith("# ") and parts[1] in ("TYPE", "UNIT", "HELP"):
            out.setdefault(parts[2], {})[parts[1]] = parts[3] if len(parts) > 3 else ""
    return out


def test_check_as_openmetrics(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _healthy(dsn, conn, tmp_path)
    conn.execute("DROP INDEX idx_requests_timestamp")  # one WARNING among the OKs
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "openmetrics", "check")
    assert r.code == 1, r.stdout + r.stderr  # the exit code stays Nagios'
    families = _parsed(r.stdout)
    doc = json.loads(run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "check").stdout)
    states = {s.labels["check"]: s.value for s in families["epstats_check_state"].samples}
    assert states == {c["name"]: ["OK", "WARNING", "CRITICAL", "UNKNOWN"].index(c["state"])
                      for c in doc["checks"]}  # fmt: skip
    assert states["missing_indexes"] == 1
    assert families["epstats_state"].samples[0].value == 1
    meta = _metadata(r.stdout)
    assert meta["epstats_analyze_age_seconds"]["UNIT"] == "seconds"
    assert meta["epstats_database_size_bytes"]["UNIT"] == "bytes"
    assert meta["epstats_dead_tuples_ratio"]["UNIT"] == "ratio"
    assert "UNIT" not in meta["epstats_invalid_indexes"]  # a count has no unit
    for c in doc["checks"]:  # every perfdata value is a metric of its own
        perf = c["perfdata"]
        if not perf:
            continue
        name = metric_name(c["name"], c["unit"])
        assert families[name].samples[0].value == _about(c["name"], c["unit"], perf["value"])
        thresholds = metric_name(c["name"] + "_threshold", c["unit"])
        for level in ("warning", "critical"):
            got = [s.value for s in families.get(thresholds, families[name]).samples
                   if s.labels.get("level") == level]  # fmt: skip
            assert got == ([pytest.approx(perf[level])] if level in perf else []), (name, level)
        for extra in c["extra_perfdata"]:
            samples = families[metric_name(extra["label"], extra["unit"])].samples
            value = _about(extra["label"], extra["unit"], extra["value"])
            assert any(s.labels == extra["labels"] and s.value == value for s in samples), extra


def _about(label: str, unit: str, value: float) -> Any:
    """The JSON run's value, as the OpenMetrics run a moment apart should have it: ages move
    on, and other sessions may come and go."""
    if unit == "seconds":
        return pytest.approx(value, abs=30)
    if label.startswith("connections"):
        return pytest.approx(value, abs=5)
    return pytest.approx(value)


def test_status_as_openmetrics(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _healthy(dsn, conn, tmp_path)
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "openmetrics", "status")
    assert r.code == 0, r.stderr
    families = _parsed(r.stdout)
    doc = json.loads(run_cli("-c", cfg, "--dsn", dsn, "--format", "json", "status").stdout)
    table = {"table": "public.requests"}
    assert families["epstats_table_total_bytes"].samples[0].labels == table
    assert families["epstats_table_total_bytes"].samples[0].value == doc["table"]["total_bytes"]
    assert families["epstats_table_estimated_rows"].samples[0].value == 20000
    sizes = {s.labels["index"]: s.value for s in families["epstats_index_size_bytes"].samples}
    assert sizes == {i["name"]: i["size_bytes"] for i in doc["indexes"]}
    assert families["epstats_rollup_usable"].samples[0].value == 1
    watermark = families["epstats_rollup_watermark_timestamp_seconds"].samples[0].value
    import datetime as dt

    assert watermark == pytest.approx(
        dt.datetime.fromisoformat(doc["rollup"]["watermark"]).timestamp()
    )
    due = {s.labels["task"]: s.value for s in families["epstats_task_due"].samples}
    assert due == {t["task"]: float(t["due_now"]) for t in doc["maintenance"]}
    meta = _metadata(r.stdout)
    assert meta["epstats_task_last_run_timestamp_seconds"]["UNIT"] == "seconds"
    # both may feed one textfile collector: no name means two things
    check = run_cli("-c", cfg, "--dsn", dsn, "--format", "openmetrics", "check")
    assert not set(families) & set(_parsed(check.stdout))
    # without the source table: the server's metrics and table_present 0
    conn.execute("DROP TABLE requests CASCADE")
    r = run_cli("-c", cfg, "--dsn", dsn, "--format", "openmetrics", "status")
    families = _parsed(r.stdout)
    assert families["epstats_table_present"].samples[0].value == 0
    assert "epstats_table_total_bytes" not in families


def test_usage_error_in_openmetrics_is_unknown() -> None:
    r = run_cli("--format", "openmetrics", "check", "--only", "nosuch")
    assert r.code == 3
    families = _parsed(r.stdout)
    assert [(s.labels, s.value) for s in families["epstats_check_state"].samples] == [
        ({"check": "usage"}, 3)
    ]


def test_label_values_and_help_are_escaped() -> None:
    odd = 'a "quoted"\\ name\nwith a newline'
    text = check_metrics(
        [
            CheckResult(
                "sequence_exhaustion",
                State.OK,
                "",
                0.5,
                0.75,
                0.9,
                unit="ratio",
                extra=[Perf("sequence_used", 0.5, labels=(("sequence", odd),), unit="ratio")],
            )
        ]
    )
    families = _parsed(text)
    assert families["epstats_sequence_used_ratio"].samples[0].labels == {"sequence": odd}
    f = Families()
    f.add("x", "help with \\ and\nnewline", 1.0)
    assert _parsed(f.text())["epstats_x"].documentation == "help with \\ and\nnewline"


# --- check's output for people ----------------------------------------------------------------


def test_the_first_line_leads_with_what_set_the_state(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A table without the recommended indices (WARNING) and without epstats' run history
    (maintain_failed is UNKNOWN): the WARNING sets the state, so it leads."""
    conn.execute(
        "CREATE TABLE requests (endpoint text, timestamp timestamptz, response_time float8, "
        "status int)"
    )
    fill(conn, 1000)
    r = run_cli("--dsn", dsn, "check", "--only", "maintain_failed,missing_indexes")
    assert r.code == 1
    assert r.stdout.startswith("EPSTATS WARNING - missing_indexes: idx_requests_timestamp"), (
        r.stdout
    )
    assert "; maintain_failed: no run history (run epstats init) |" in r.stdout


def test_state_column_colours(dsn: str, conn: psycopg.Connection[Any], tmp_path: Path) -> None:
    cfg = _healthy(dsn, conn, tmp_path)
    conn.execute("DROP INDEX idx_requests_timestamp")
    args = ("-c", cfg, "--dsn", dsn, "-v", "check", "--only", "connect,missing_indexes")
    coloured = run_cli(*args, env={"FORCE_COLOR": "1", "TERM": "xterm"})
    assert coloured.code == 1
    assert "\x1b[32mOK" in coloured.stdout and "\x1b[33mWARNING" in coloured.stdout
    for env, extra in (
        ({"FORCE_COLOR": "1", "NO_COLOR": "1"}, ()),
        ({"FORCE_COLOR": "1"}, ("--no-color",)),
    ):
        plain = run_cli(*extra, *args, env=env)  # type: ignore[arg-type]
        assert plain.code == 1 and "WARNING" in plain.stdout
        assert "\x1b[3" not in plain.stdout, plain.stdout


def test_nan_and_infinities_are_spelled_as_openmetrics_wants() -> None:
    """An infinite p95 (bad data) is +Inf, never Python's `inf`, which parsers reject."""
    from epstats_cli.health.openmetrics import _number

    assert [_number(v) for v in (float("inf"), float("-inf"), float("nan"), 2.0, 0.5)] == [
        "+Inf",
        "-Inf",
        "NaN",
        "2",
        "0.5",
    ]
