"""`check` as a Nagios plugin: its own usage and configuration errors are UNKNOWN (3) with the
plugin's one-line output (exit 2 would read as CRITICAL); other commands keep exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["check", "--only", "nosuch"], "unknown check nosuch"),
        (["check", "--only", "xid_age,nosuch,other"], "unknown check nosuch, other"),
        (["check", "--bogus"], "No such option '--bogus'"),
        (["check", "--only"], "--only"),
        (["check", "extra"], "unexpected extra argument"),
        (["--bogus", "check"], "No such option '--bogus'"),
        (["--format", "yaml", "check"], "--format"),
        (["-q", "--dsn", "x", "--config=/nonexistent.yaml", "check", "--only=nosuch"], "nosuch"),
    ],
)
def test_check_usage_errors_are_unknown_with_one_line(args: list[str], says: str) -> None:
    r = run_cli(*args)
    assert r.code == 3, (r.stdout, r.stderr)
    assert r.stdout.startswith("EPSTATS UNKNOWN - usage: ") and r.stdout.count("\n") == 1
    assert says in r.stdout and r.stderr == ""


def test_check_usage_error_in_json_is_the_checks_document() -> None:
    r = run_cli("--format", "json", "check", "--only", "nosuch")
    assert r.code == 3
    doc = json.loads(r.stdout)
    assert doc["status"] == "UNKNOWN" and doc["line"].startswith("EPSTATS UNKNOWN - usage: ")
    assert [c["state"] for c in doc["checks"]] == ["UNKNOWN"]


def test_check_configuration_errors_are_unknown(tmp_path: Path) -> None:
    missing = tmp_path / "nope.yaml"
    r = run_cli("-c", str(missing), "check")
    assert r.code == 3 and r.stdout.startswith("EPSTATS UNKNOWN - config: ")
    assert r.stdout.count("\n") == 1
    bad = tmp_path / "bad.yaml"
    bad.write_text("view: {strategy: nope}\ncheck: {maintain_failed_runs: 0}\n")
    r = run_cli("-c", str(bad), "check")
    assert r.code == 3 and r.stdout.startswith("EPSTATS UNKNOWN - config: ")
    assert r.stdout.count("\n") == 1 and "view.strategy" in r.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["status", "--bogus"],
        ["--bogus", "status"],
        ["report", "endpoint", "check", "--bogus"],  # an endpoint named "check"
        ["-c", "check", "status", "--bogus"],  # a config file named "check"
        ["nosuch"],
    ],
)
def test_other_usage_errors_stay_exit_2(args: list[str]) -> None:
    r = run_cli(*args)
    assert r.code == 2 and r.stdout == "" and "Error" in r.stderr


def test_check_help_is_still_help() -> None:
    r = run_cli("check", "--help")
    assert r.code == 0 and "Nagios" in r.stdout
