"""Only the top-level `check` turns a usage error into the Nagios UNKNOWN line (exit 3):
`config check` is another command, whose usage errors are click's (exit 2, on stderr)."""

from __future__ import annotations

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (("config", "check", "--format", "csv"), "epstats: error: `epstats config check` cannot "),
        (("--format", "csv", "config", "check"), "epstats: error: `epstats config check` cannot "),
        (("config", "check", "--bogus"), "Error: No such option '--bogus'"),
    ],
)
def test_config_check_usage_errors_are_not_nagios(args: tuple[str, ...], says: str) -> None:
    r = run_cli(*args)
    assert r.code == 2, (r.code, r.stdout, r.stderr)
    assert r.stdout == ""
    assert says in r.stderr and "EPSTATS" not in r.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("check", "--format", "csv"),
        ("--format", "csv", "check"),
        ("check", "--bogus"),
        ("--bogus", "check"),
        ("check", "--only", "nope"),
    ],
)
def test_check_usage_errors_stay_unknown(args: tuple[str, ...]) -> None:
    r = run_cli(*args)
    assert r.code == 3, (r.code, r.stdout, r.stderr)
    assert r.stdout.startswith("EPSTATS UNKNOWN - usage: "), r.stdout
