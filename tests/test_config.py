"""Configuration: parsing, validation that reports every problem, precedence, redaction."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from epstats_cli import config
from epstats_cli.config import QualifiedName, build, parse_qualified, redact_dsn
from epstats_cli.durations import format_duration, parse_duration
from epstats_cli.errors import ConfigError
from tests.conftest import run_cli

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("500ms", 0.5),
        ("30s", 30),
        ("5m", 300),
        ("2h", 7200),
        ("1d", 86400),
        ("1w", 604800),
        ("0", 0),
        (0, 0),
        ("1.5h", 5400),
    ],
)
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("bad", ["5", "5 seconds", "-1s", "1y", "", True, None, 3])
def test_bad_durations(bad: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(bad)


def test_format_duration_round_trips() -> None:
    for text in ("500ms", "30s", "5m", "2h", "1d", "1w", "90d", "0s"):
        assert format_duration(parse_duration(text)) == text


def test_defaults_match_spec() -> None:
    c = config.Config()
    assert c.database.lock_timeout == timedelta(seconds=5)
    assert c.source.table == QualifiedName("public", "requests")
    assert [i.name for i in c.indexes] == [
        "idx_requests_timestamp",
        "idx_requests_endpoint_timestamp",
    ]
    assert c.view.strategy == "materialized"
    assert c.maintenance.schedule.reindex == timedelta(days=30)


def test_example_file_is_valid_and_complete() -> None:
    import yaml

    data = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    cfg = build(data)
    # every key the schema knows is documented in the example
    shown = config.as_dict(cfg)

    def keys(d: object, prefix: str = "") -> set[str]:
        if isinstance(d, dict):
            return set().union(*(keys(v, f"{prefix}{k}.") for k, v in d.items())) | {
                prefix + k for k in d
            }
        return set()

    assert keys(shown) <= keys(data) | {"indexes"}
    assert run_cli("-c", str(ROOT / "config.example.yaml"), "config", "check").code == 0


def test_five_mistakes_five_lines(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "database:\n  lock_timeout: 5 seconds\n"
        "source:\n  error_status_min: 5000\n  timezone: Mars/Olympus\n"
        "view:\n  strategy: materialised\n"
        "reprots:\n  days: 3\n"
    )
    r = run_cli("-c", str(path), "config", "check")
    assert r.code == 3
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 5, lines
    assert all(line.startswith("epstats: error: ") for line in lines)
    text = r.stderr
    assert "database.lock_timeout: '5 seconds' is not a duration" in text
    assert "source.error_status_min: 5000 is out of range" in text
    assert "source.timezone: 'Mars/Olympus'" in text
    assert "view.strategy: 'materialised' is not one of materialized, incremental" in text
    assert "reprots: unknown key (did you mean 'reports'?)" in text
    assert "Traceback" not in r.stderr


def test_index_list_errors() -> None:
    with pytest.raises(ConfigError) as info:
        build(
            {
                "indexes": [
                    {"name": "a", "columns": ["endpiont"]},
                    {"columns": ["timestamp"]},
                    {"name": "a", "columns": ["status"], "method": "hash"},
                ]
            }
        )
    text = "\n".join(info.value.problems)
    assert "indexes[0].columns" in text and "endpiont" in text
    assert "indexes[1].name: missing" in text
    assert "indexes[2].method: 'hash' is not one of btree, brin" in text


def test_password_in_config_dsn_is_refused_without_echoing_it() -> None:
    with pytest.raises(ConfigError) as info:
        build({"database": {"dsn": "postgresql://u:hunter2@h/db"}})
    assert "hunter2" not in str(info.value)
    with pytest.raises(ConfigError):
        build({"database": {"dsn": "host=h password=hunter2"}})


def test_not_a_mapping_and_yaml_errors(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("- just\n- a list\n")
    r = run_cli("-c", str(path), "config", "check")
    assert r.code == 3 and "is not a mapping" in r.stderr
    path.write_text("database: {dsn: [unclosed\n")
    r = run_cli("-c", str(path), "config", "check")
    assert r.code == 3 and "line" in r.stderr and len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("requests", QualifiedName("public", "requests")),
        ("Logs.Requests", QualifiedName("logs", "requests")),
        ('"Logs"."Req.uests"', QualifiedName("Logs", "Req.uests")),
        ('app."we""ird"', QualifiedName("app", 'we"ird')),
    ],
)
def test_qualified_names(text: str, expected: QualifiedName) -> None:
    assert parse_qualified(text) == expected


@pytest.mark.parametrize("bad", ["a.b.c", "a..b", '"unclosed', ".x", "x."])
def test_bad_qualified_names(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_qualified(bad)


def test_redaction() -> None:
    assert redact_dsn("postgresql://u:pw@h:5/db") == "postgresql://u:***@h:5/db"
    assert redact_dsn("host=h password=pw user=u") == "host=h password=*** user=u"
    assert (
        redact_dsn("postgresql://u@h/db?password=pw&x=1") == "postgresql://u@h/db?password=***&x=1"
    )


def test_precedence(tmp_path: Path) -> None:
    (tmp_path / "epstats.yaml").write_text("reports: {days: 7}\n")
    other = tmp_path / "other.yaml"
    other.write_text("reports: {days: 9}\n")
    r = run_cli("--format", "json", "config", "show", cwd=str(tmp_path))
    assert '"days": 7' in r.stdout
    r = run_cli(
        "--format", "json", "config", "show", cwd=str(tmp_path), env={"EPSTATS_CONFIG": str(other)}
    )
    assert '"days": 9' in r.stdout
    r = run_cli(
        "-c",
        str(tmp_path / "epstats.yaml"),
        "--format",
        "json",
        "config",
        "show",
        env={"EPSTATS_CONFIG": str(other)},
    )
    assert '"days": 7' in r.stdout


def test_config_show_redacts_dsn_from_option() -> None:
    r = run_cli("--dsn", "postgresql://u:topsecret@h/db", "config", "show")
    assert r.code == 0
    assert "topsecret" not in r.stdout and "***" in r.stdout
