"""The rollup's recorded parameters and the source's column types, judged without a server."""

from __future__ import annotations

from typing import Any

import pytest

from epstats_cli import config, source
from epstats_cli.config import QualifiedName
from epstats_cli.errors import ConfigError
from epstats_cli.rollup.inspect import (
    COLUMNS,
    DESCRIPTION,
    RollupFacts,
    _ownership,
    comment,
    parameter_mismatch,
    parameters,
    parse_comment,
)

VIEW = QualifiedName("public", "endpoint_daily_stats")


def facts_for(params: dict[str, Any] | None) -> RollupFacts:
    return RollupFacts(VIEW, exists=True, ours=True, parameters=params)


def test_comment_round_trips_and_tells_earlier_and_foreign_ones_apart() -> None:
    cfg = config.build({"source": {"timezone": "Europe/Berlin"}})
    params = parameters(cfg, "incremental")
    assert parse_comment(comment(params)) == params
    assert parse_comment("epstats rollup: strategy=materialized timezone=UTC version=1") == {}
    assert parse_comment("made by hand") is None
    assert parse_comment(None) is None


BUILT = parameters(config.Config(), "materialized")
OID = 4242


def _row(oid: int | None, strategy: str = "materialized", params: Any = BUILT) -> dict[str, Any]:
    return {"relation_oid": oid, "strategy": strategy, "timezone": "UTC", "parameters": params}


@pytest.mark.parametrize(
    ("relkind", "columns", "text", "row", "ours", "params", "recorded_in"),
    [
        # marked in rollup_state: the comment is the team's, whatever it says
        ("m", COLUMNS, DESCRIPTION, _row(OID), True, BUILT, "epstats.rollup_state"),
        ("m", COLUMNS, "edited by the DBA", _row(OID), True, BUILT, "epstats.rollup_state"),
        ("m", COLUMNS, None, _row(OID), True, BUILT, "epstats.rollup_state"),
        # an earlier epstats: its mark in the comment, no row (or one without oid/parameters)
        ("m", COLUMNS, comment(BUILT), None, True, BUILT, "comment"),
        ("m", COLUMNS, comment(BUILT), _row(None, params=None), True, BUILT, "comment"),
        (
            "m",
            COLUMNS,
            "epstats rollup: strategy=materialized timezone=UTC",
            None,
            True,
            None,
            None,
        ),
        # its comment edited since: recognised by its row, with no parameters (rebuild)
        ("m", COLUMNS, "edited", _row(None, params=None), True, None, None),
        # a row at another oid (a restored dump), the same kind and every column: ours
        ("m", COLUMNS, None, _row(1), True, BUILT, "epstats.rollup_state"),
        # ... of another kind, or lacking columns: not ours
        ("r", COLUMNS, None, _row(1), False, None, None),
        ("m", {"endpoint": "text"}, None, _row(1), False, None, None),
        # neither mark
        ("m", COLUMNS, "made by hand", None, False, None, None),
        ("m", COLUMNS, None, None, False, None, None),
        # a plain view is never ours
        ("v", COLUMNS, comment(BUILT), _row(OID), False, None, None),
    ],
)
def test_which_relation_is_ours(
    relkind: str,
    columns: dict[str, str],
    text: str | None,
    row: dict[str, Any] | None,
    ours: bool,
    params: dict[str, Any] | None,
    recorded_in: str | None,
) -> None:
    info = RollupFacts(VIEW, exists=True, oid=OID, relkind=relkind, columns=dict(columns))
    _ownership(info, text, row)
    assert (info.ours, info.parameters, info.recorded_in) == (ours, params, recorded_in)
    if ours:
        assert info.strategy == "materialized" and info.timezone == "UTC"


def test_no_mismatch_for_the_configuration_it_was_built_with() -> None:
    cfg = config.Config()
    assert parameter_mismatch(facts_for(parameters(cfg, "materialized")), cfg) == []
    assert parameter_mismatch(RollupFacts(VIEW), cfg) == []  # no rollup
    assert parameter_mismatch(RollupFacts(VIEW, exists=True), cfg) == []  # not ours


@pytest.mark.parametrize(
    ("change", "key", "built", "configured"),
    [
        ({"view": {"strategy": "incremental"}}, "view.strategy", "materialized", "incremental"),
        ({"source": {"timezone": "Asia/Tokyo"}}, "source.timezone", "UTC", "Asia/Tokyo"),
        (
            {"source": {"naive_timezone": "Asia/Tokyo"}},
            "source.naive_timezone",
            "UTC",
            "Asia/Tokyo",
        ),
        ({"source": {"error_status_min": 400}}, "source.error_status_min", "500", "400"),
        ({"source": {"columns": {"status": "code"}}}, "source.columns.status", "status", "code"),
    ],
)
def test_each_changed_key_is_named(
    change: dict[str, Any], key: str, built: str, configured: str
) -> None:
    params = parameters(config.Config(), "materialized")
    name = key.rsplit(".", 1)[1]
    name = f"{name}_column" if key.startswith("source.columns.") else name
    assert parameter_mismatch(facts_for(params), config.build(change)) == [
        f"{key}: public.endpoint_daily_stats was built with {name} {built}, the configuration "
        f"says {configured}: run `epstats view build --replace`"
    ]


def test_an_earlier_epstats_recorded_no_parameters() -> None:
    (problem,) = parameter_mismatch(facts_for(None), config.Config())
    assert "recorded no parameters" in problem and "epstats view build --replace" in problem


GOOD = {
    "endpoint": ("character varying(200)", "varchar"),
    "timestamp": ("timestamp without time zone", "timestamp"),
    "response_time": ("numeric(10,3)", "numeric"),
    "status": ("http_status", "int2"),  # a domain over smallint
}


def test_accepted_column_types() -> None:
    assert source.type_problems(config.Config(), GOOD) == []
    for base in ("text", "bpchar", "citext", "name"):
        assert source.type_problems(config.Config(), {**GOOD, "endpoint": (base, base)}) == []
    for base in ("int2", "int4", "int8", "float4", "float8"):
        found = {**GOOD, "response_time": (base, base)}
        assert source.type_problems(config.Config(), found) == []


def test_wrong_and_missing_columns_are_all_named() -> None:
    found = {**GOOD, "status": ("text", "text"), "timestamp": ("date", "date")}
    del found["endpoint"]
    assert source.type_problems(config.Config(), found) == [
        "source.columns.endpoint: public.requests has no column 'endpoint' (check source.columns)",
        "source.columns.timestamp: column 'timestamp' of public.requests is date; expected "
        "timestamp with time zone or timestamp without time zone",
        "source.columns.status: column 'status' of public.requests is text; expected an "
        "integer type (smallint, integer, bigint)",
    ]


def test_commit_delay_is_shorter_than_the_lookback() -> None:
    with pytest.raises(
        ConfigError, match=r"view.commit_delay: 2d is not shorter than view.lookback"
    ):
        config.build({"view": {"strategy": "incremental", "lookback": "2d", "commit_delay": "2d"}})
    config.build({"view": {"strategy": "materialized", "lookback": "2d", "commit_delay": "2d"}})
