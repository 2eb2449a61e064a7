"""Configuration: parsing, validation that reports every problem, precedence, redaction."""

from __future__ import annotations

import dataclasses
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml

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
    assert [i.name for i in c.indexes.recommended] == [
        "idx_requests_timestamp",
        "idx_requests_endpoint_timestamp",
    ]
    assert c.view.strategy == "materialized"
    assert c.maintenance.schedule.reindex == timedelta(days=30)


def _field_paths(obj: object, prefix: str = "") -> set[str]:
    """Every leaf key of a configuration, read from the dataclasses themselves."""
    paths: set[str] = set()
    for f in dataclasses.fields(obj):  # type: ignore[arg-type]
        if not prefix and f.name == "path":  # where the file came from, not a key
            continue
        value = getattr(obj, f.name)
        here = prefix + f.name
        if isinstance(value, tuple) and value and dataclasses.is_dataclass(value[0]):
            for item in value:
                paths |= _field_paths(item, here + "[].")
        elif dataclasses.is_dataclass(value) and not isinstance(value, QualifiedName):
            paths |= _field_paths(value, here + ".")
        else:
            paths.add(here)
    return paths


def _data_paths(data: object, prefix: str = "") -> set[str]:
    """Every leaf key of plain YAML-shaped data; list items that are mappings as `key[].`."""
    if isinstance(data, dict):
        return set().union(*(_data_paths(v, f"{prefix}{k}.") for k, v in data.items()))
    if isinstance(data, list) and data and all(isinstance(item, dict) for item in data):
        return set().union(*(_data_paths(item, prefix[:-1] + "[].") for item in data))
    return {prefix[:-1]}


LEAF_PATHS = sorted(_field_paths(config.Config()))


def test_every_field_is_shown_by_config_show() -> None:
    shown = config.as_dict(config.Config())
    assert _data_paths(shown) == set(LEAF_PATHS)
    r = run_cli("--format", "json", "config", "show")
    assert r.code == 0, r.stderr
    assert _data_paths(json.loads(r.stdout)) == set(LEAF_PATHS)
    r = run_cli("config", "show")
    assert _data_paths(yaml.safe_load(r.stdout)) == set(LEAF_PATHS)


def _nested(path: str, value: object) -> dict[str, object]:
    """`a.b.c` -> {a: {b: {c: value}}}; a list key gets one otherwise valid item."""
    head, _, rest = path.partition(".")
    if head.endswith("[]"):
        item: dict[str, object] = {"name": "i", "columns": ["endpoint"]}
        item.update(_nested(rest, value))
        return {head[:-2]: [item]}
    return {head: _nested(rest, value) if rest else value}


@pytest.mark.parametrize("path", LEAF_PATHS)
def test_every_leaf_is_validated_with_its_dotted_path(path: str) -> None:
    with pytest.raises(ConfigError) as info:
        build(_nested(path, {"wrong": "type"}))
    where = path.replace("[]", "[0]")
    assert any(p.startswith(f"{where}: ") for p in info.value.problems), info.value.problems


def test_example_file_is_valid_and_complete() -> None:
    data = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    build(data)
    # every key the configuration knows is documented in the example, list items included
    assert set(LEAF_PATHS) <= _data_paths(data)
    assert run_cli("-c", str(ROOT / "config.example.yaml"), "config", "check").code == 0


def test_empty_sections_keep_defaults_but_thresholds_are_given_whole() -> None:
    assert build({"database": None, "check": None}) == config.Config()
    with pytest.raises(ConfigError) as info:
        build({"check": {"overdue": {"warning": 2}, "table_bloat": None}})
    assert info.value.problems == [
        "check.overdue.critical: missing (a threshold needs both warning and critical)",
        "check.table_bloat.warning: missing (a threshold needs both warning and critical)",
        "check.table_bloat.critical: missing (a threshold needs both warning and critical)",
    ]
    with pytest.raises(ConfigError) as info:
        build({"check": {"overdue": {"warning": 2, "critical": 1}}})
    assert info.value.problems == ["check.overdue.critical: 1.0 is below warning 2.0"]
    with pytest.raises(ConfigError) as info:
        build({"indexes": [None]})
    assert "indexes[0].name: missing (every index needs a name and columns)" in (
        info.value.problems
    )


def test_duration_thresholds() -> None:
    cfg = build({"check": {"future_rows": {"warning": "1m", "critical": "1h"}}})
    minute, hour = timedelta(minutes=1), timedelta(hours=1)
    assert cfg.check.future_rows == config.DurationLevels(minute, hour)
    assert config.as_dict(cfg)["check"]["future_rows"] == {"warning": "1m", "critical": "1h"}
    with pytest.raises(ConfigError) as info:
        build({"check": {"future_rows": {"warning": "1d", "critical": "5m"}}})
    assert info.value.problems == ["check.future_rows.critical: 5m is below warning 1d"]
    with pytest.raises(ConfigError) as info:
        build({"check": {"future_rows": {"warning": "soon", "critical": "1d"}}})
    assert info.value.problems[0].startswith("check.future_rows.warning: 'soon' is not a duration")


def test_verify_horizon_is_a_duration_or_null() -> None:
    assert config.Config().view.verify_horizon is None  # every day that still has raw rows
    cfg = build({"view": {"verify_horizon": "90d"}})
    assert cfg.view.verify_horizon == timedelta(days=90)
    assert config.as_dict(cfg)["view"]["verify_horizon"] == "90d"
    with pytest.raises(ConfigError) as info:
        build({"view": {"verify_horizon": 0}})
    assert info.value.problems == ["view.verify_horizon: 0 must be longer than 0"]


def test_values_round_trip_through_config_show() -> None:
    data = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    data["database"]["lock_timeout"] = "1500ms"
    data["source"]["table"] = 'Logs."Req"'
    cfg = build(data)
    assert build(config.as_dict(cfg)) == cfg


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
    # a program asking for JSON gets the same problems as a document, with the same exit code
    r = run_cli("-c", str(path), "--format", "json", "config", "check")
    assert r.code == 3
    doc = json.loads(r.stdout)
    assert doc["valid"] is False and doc["path"] == str(path)
    assert [f"epstats: error: {p}" for p in doc["problems"]] == lines


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
    assert "indexes[2].method: 'hash' is not one of btree, brin, auto" in text


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


def test_password_in_dsn_is_reported_beside_other_mistakes() -> None:
    with pytest.raises(ConfigError) as info:
        build({"database": {"dsn": "host=h password=secret1", "lock_timeout": "5 seconds"}})
    text = str(info.value)
    assert "database.dsn: contains a password" in text and "database.lock_timeout" in text
    assert "secret1" not in text


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("lock_timeout", "30d"),
        ("statement_timeout", "25d"),
        ("lock_timeout", "100000000000d"),
    ],
)
def test_timeouts_the_server_would_refuse_are_config_errors(key: str, value: str) -> None:
    with pytest.raises(ConfigError) as info:
        build({"database": {key: value}})
    assert f"database.{key}" in str(info.value)


def test_max_runtime_is_bounded_like_a_timeout() -> None:
    with pytest.raises(ConfigError) as info:
        build({"maintenance": {"max_runtime": "30d"}})
    assert "maintenance.max_runtime" in str(info.value)
    assert build({"maintenance": {"max_runtime": "24d"}}).maintenance.max_runtime.days == 24


@pytest.mark.parametrize("value", ["dbapw", "hunter2!", "p@ss word", 12345])
def test_password_env_value_is_never_echoed(tmp_path: Path, value: object) -> None:
    """A user who put the password itself in database.password_env must not see it printed:
    neither when the variable it names is unset nor when it is not a variable name."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"password_env": value}}))
    r = run_cli(
        "-c",
        str(cfg),
        "--dsn",
        "host=127.0.0.1 port=1 dbname=x",
        "status",
        env={
            "dbapw": None,
        },
    )
    assert r.code in (3, 4), r.stderr
    assert str(value) not in r.stdout + r.stderr
    assert "database.password_env" in r.stderr and r.stderr.count("\n") == 1
    if r.code == 4:
        assert "the environment variable that database.password_env names is not set" in r.stderr


def test_indexes_as_a_list_or_with_max_wait() -> None:
    listed = [{"name": "i", "columns": ["endpoint"]}]
    short = build({"indexes": listed})
    assert [i.name for i in short.indexes.recommended] == ["i"]
    assert short.indexes.max_wait == timedelta(minutes=10)
    full = build({"indexes": {"recommended": listed, "max_wait": "90s"}})
    assert full.indexes == dataclasses.replace(short.indexes, max_wait=timedelta(seconds=90))
    assert build({"indexes": {"max_wait": "1m"}}).indexes.recommended == (
        config.Config().indexes.recommended
    )
    with pytest.raises(ConfigError) as info:
        build({"indexes": [{"name": "i"}], "database": {"lock_timeout": "1s"}})
    assert info.value.problems == [
        "indexes[0].columns: missing (every index needs a name and columns)"
    ]
    assert config.as_dict(full)["indexes"] == {
        "recommended": [{"name": "i", "columns": ["endpoint"], "method": "btree"}],
        "max_wait": "90s",
    }


@pytest.mark.parametrize("fmt", ["table", "yaml", "json"])
def test_config_show_never_prints_password_env(tmp_path: Path, fmt: str) -> None:
    """Users have put the password itself in database.password_env: `config show` says only
    that it is set."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"database": {"password_env": "dbapw"}}))
    r = run_cli("-c", str(cfg), "config", "show", "--format", fmt)
    assert r.code == 0, r.stderr
    assert "dbapw" not in r.stdout + r.stderr
    shown = json.loads(r.stdout) if fmt == "json" else yaml.safe_load(r.stdout)
    assert shown["database"]["password_env"] == "***"
    r = run_cli("config", "show", "--format", fmt)  # unset: shown as unset
    shown = json.loads(r.stdout) if fmt == "json" else yaml.safe_load(r.stdout)
    assert shown["database"]["password_env"] is None


def test_tune_intervals_are_bounded_and_said_plainly() -> None:
    """tune.vacuum_every / analyze_every: 1m..30d; a duration too long for Python is out of
    range (not "not a duration"); null is said as YAML says it."""
    for value in ("1ms", "59s", "31d", "100000000d", "1000000000000d"):
        with pytest.raises(ConfigError) as info:
            build({"tune": {"vacuum_every": value}})
        assert info.value.problems == [
            f"tune.vacuum_every: {value!r} is out of range (expected 1m..30d)"
        ]
    assert build({"tune": {"analyze_every": "1m"}}).tune.analyze_every == timedelta(minutes=1)
    with pytest.raises(ConfigError) as info:
        build({"tune": {"analyze_every": None}})
    assert info.value.problems == [
        "tune.analyze_every: null is not a duration (expected a number and a unit: 500ms, 30s, "
        "5m, 2h, 1d, 1w)"
    ]
    with pytest.raises(ConfigError) as info:
        build({"database": {"lock_timeout": "1000000000000d"}})
    assert info.value.problems == [
        "database.lock_timeout: '1000000000000d' is out of range (far too long)"
    ]
