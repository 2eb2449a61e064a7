"""Very late rows, future rows and a changed configuration, on real servers (issue 12): the
`verify` task finds and repairs rows that arrived later than view.lookback, `check` says how
late they were, `check` and `status` work on a naive column, and `maintain` refuses a rollup
built with other parameters."""

from __future__ import annotations

import datetime as dt
import json
import random
import re
from pathlib import Path
from typing import Any

import psycopg
import pytest

from epstats_cli.config import load as load_config
from epstats_cli.db import session
from epstats_cli.execute import Executor
from epstats_cli.rollup import sweep
from tests.conftest import run_cli
from tests.helpers import fill
from tests.rollup_oracle import compare_view, raw_rollup
from tests.test_truth import NY, SESSION_ZONES, TZ, history, make_table

VIEW = "endpoint_daily_stats"
LATE = 3000


def _cfg(tmp_path: Path, strategy: str, extra: str = "") -> str:
    cfg = tmp_path / "epstats.yaml"
    cfg.write_text(
        f"source: {{timezone: {TZ}}}\nview: {{strategy: {strategy}, lookback: 2d}}\n" + extra
    )
    return str(cfg)


def _cli(cfg: str, dsn: str, *args: str, env: dict[str, str | None] | None = None) -> Any:
    return run_cli("-c", cfg, "--dsn", dsn, *args, env=env)


def _json(cfg: str, dsn: str, *args: str, code: int = 0) -> Any:
    r = _cli(cfg, dsn, "--format", "json", *args)
    assert r.code == code, (r.stdout, r.stderr)
    return json.loads(r.stdout)


def _requests(doc: dict[str, Any]) -> int:
    return sum(r["requests"] for r in doc["rows"])


def _insert_late(conn: psycopg.Connection[Any], days: int = 40) -> None:
    """LATE rows dated `days` ago (within one minute), written now."""
    conn.execute(
        "INSERT INTO requests SELECT '/late' || (g %% 3), now() - %s * interval '1 day' "
        "+ g * interval '10 ms', g %% 100, CASE WHEN g %% 10 = 0 THEN 503 ELSE 200 END "
        "FROM generate_series(1, %s) g",
        (days, LATE),
    )


def _as_of(conn: psycopg.Connection[Any]) -> dt.datetime:
    row = conn.execute(f"SELECT as_of FROM {VIEW} WHERE endpoint IS NULL").fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


@pytest.mark.parametrize("strategy", ["incremental", "materialized"])
def test_rows_40_days_late_are_found_repaired_and_reported(
    strategy: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, strategy, "reports: {limit: 100}\n")
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 100000)  # 29 days of rows
    assert _cli(cfg, dsn, "indexes", "apply").code == 0
    assert _cli(cfg, dsn, "view", "build").code == 0
    assert _json(cfg, dsn, "maintain", "--force", "verify")["tasks"][-1]["status"] == "ok"
    _insert_late(conn)
    # reports from the rollup do not see them: they are long before its as-of
    auto = _json(cfg, dsn, "report", "top", "--days", "45")
    raw = _json(cfg, dsn, "report", "top", "--days", "45", "--source", "raw")
    assert _requests(raw) - _requests(auto) == LATE
    assert not any(r["endpoint"].startswith("/late") for r in auto["rows"])
    # view verify keeps its default window (reports.days, 30): they are outside it
    assert _json(cfg, dsn, "view", "verify")["ok"]
    # the verify task compares every settled day, finds the day and repairs it
    doc = _json(cfg, dsn, "maintain", "--force", "verify")
    summary = doc["tasks"][-1]
    assert (summary["task"], summary["target"], summary["status"]) == (
        "verify",
        f"public.{VIEW}",
        "ok",
    )
    late_day = conn.execute(
        "SELECT ((now() - interval '40 days') AT TIME ZONE %s)::date", (TZ,)
    ).fetchone()[0]  # type: ignore[index]
    assert f"repaired {late_day} (+3,000 rows)" in summary["reason"], summary["reason"]
    assert re.search(r"3,000 rows arrived up to 40d \d+h late", summary["reason"])
    assert "view.lookback 2d is too short for this API" in summary["reason"]
    repairs = [t for t in doc["tasks"] if t["task"] == "verify" and t != summary]
    assert [t["status"] for t in repairs] == ["ok"]
    if strategy == "incremental":
        assert repairs[0]["target"] == f"public.{VIEW} {late_day}"
        assert f'DELETE FROM "public"."{VIEW}" WHERE endpoint IS NOT NULL' in repairs[0]["sql"]
    else:
        assert "REFRESH MATERIALIZED VIEW CONCURRENTLY" in repairs[0]["sql"]
    # the rollup now equals a from-scratch computation over the raw rows
    assert compare_view(conn, VIEW, raw_rollup(conn, TZ, until=_as_of(conn))) == []
    auto = _json(cfg, dsn, "report", "top", "--days", "45")
    assert _requests(auto) == _requests(raw)
    assert _json(cfg, dsn, "view", "verify", "--days", "45")["ok"]
    # the history says which day, by how many rows
    reasons = [r[0] for r in conn.execute("SELECT reason FROM epstats.runs WHERE task = 'verify'")]
    assert any(f"repaired {late_day} (+3,000 rows)" in r for r in reasons)
    # check: late_rows WARNING, saying how late they were
    r = _cli(cfg, dsn, "--format", "json", "check", "--only", "late_rows")
    assert r.code == 1, r.stdout
    check = json.loads(r.stdout)["checks"][0]
    assert check["state"] == "WARNING"
    assert re.match(
        r"3,000 rows arrived up to 40d \d+h late \(found by verify at", check["summary"]
    )
    assert "view.lookback 2d is too short for this API" in check["summary"]
    # a second run finds nothing; the warning stays for check.late_rows
    doc = _json(cfg, dsn, "maintain", "--force", "verify")
    assert doc["tasks"][-1]["reason"].endswith(": no differences")
    assert _cli(cfg, dsn, "check", "--only", "late_rows").code == 1
    # ... and ends after it
    conn.execute("UPDATE epstats.runs SET started_at = started_at - interval '8 days'")
    check = _json(cfg, dsn, "check", "--only", "late_rows")["checks"][0]
    assert (check["state"], check["summary"]) == ("OK", "no verify run in the last 1w")
    assert _json(cfg, dsn, "maintain", "--force", "verify")["tasks"][-1]["status"] == "ok"
    check = _json(cfg, dsn, "check", "--only", "late_rows")["checks"][0]
    assert check["summary"] == "no rows later than view.lookback 2d found by verify in the last 1w"


def test_verify_goes_on_where_it_stopped(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """With no time left after the first day, each run checks one day, oldest check first;
    the days inside the lookback window are never compared."""
    cfg = str(tmp_path / "epstats.yaml")
    Path(cfg).write_text(
        f"source: {{timezone: {TZ}}}\n"
        "view: {strategy: incremental, lookback: 2d, verify_horizon: 6d}\n"
    )
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 100000)  # 29 days of rows
    assert _cli(cfg, dsn, "view", "build").code == 0
    checked = []
    total = 0
    with session(load_config(cfg), dsn) as s:
        reasons = [
            sweep.run(s, Executor(s, record=True), "forced", 0.0)[-1].reason for _ in range(5)
        ]
    for reason in reasons:
        assert reason.startswith("forced: ") and reason.endswith(
            ", stopped by max_runtime: no differences"
        )
        found = re.search(r"checked 1 of (\d+) days \((\S+)\), last checked ([\d-]+)", reason)
        assert found, reason
        assert found.group(2) == found.group(3)
        checked.append(dt.date.fromisoformat(found.group(2)))
        total = int(found.group(1))
    # 6 days back to the day before the lookback window of the as-of: 3 or 4 days
    assert total in (3, 4)
    assert checked[:total] == sorted(checked[:total])  # oldest first ...
    assert checked[total] == checked[0]  # ... then round again
    today = conn.execute("SELECT (now() AT TIME ZONE %s)::date", (TZ,)).fetchone()[0]  # type: ignore[index]
    assert max(checked) <= today - dt.timedelta(days=3)


def test_dry_run_prints_the_comparison_and_changes_nothing(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, "incremental")
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 5000)
    assert _cli(cfg, dsn, "view", "build").code == 0
    _insert_late(conn, days=20)
    before = conn.execute(f"SELECT * FROM {VIEW} ORDER BY 1, 2").fetchall()
    runs = conn.execute("SELECT count(*) FROM epstats.runs").fetchone()  # view build's own
    doc = _json(cfg, dsn, "maintain", "--force", "verify", "--only", "verify", "--dry-run")
    compare, repair = doc["tasks"]
    assert compare["status"] == repair["status"] == "planned"
    assert compare["reason"].startswith("due: forced; compare ")
    assert "one day at a time, oldest check first" in compare["reason"]
    assert compare["sql"].startswith("WITH fresh AS")
    assert repair["reason"].startswith("due: forced; only for a day that differs")
    assert 'DELETE FROM "public"."endpoint_daily_stats" WHERE endpoint IS NOT NULL' in repair["sql"]
    assert conn.execute(f"SELECT * FROM {VIEW} ORDER BY 1, 2").fetchall() == before
    assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == runs
    text = _cli(cfg, dsn, "maintain", "--force", "verify", "--only", "verify", "--dry-run")
    assert text.code == 0 and "WITH fresh AS" in text.stdout


def test_check_and_status_on_a_naive_column(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    t = make_table(dsn, conn, tmp_path, naive_zone="America/Chicago", strategy="incremental")
    t.insert(history(random.Random(9), t.now(), 500))
    assert t.cli("view", "build").code == 0
    as_of = t.as_of()
    t.insert([("/a", as_of + dt.timedelta(milliseconds=1), 1.0, 200)])  # newer than the as-of
    for env in SESSION_ZONES:
        r = t.cli("--format", "json", "check", "--only", "view_staleness,future_rows", env=env)
        assert r.code == 0, r.stdout
        checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
        assert checks["view_staleness"]["state"] == "OK"
        assert checks["view_staleness"]["summary"].startswith("rows up to ")
        assert 0 <= checks["view_staleness"]["value"] < 300
        assert checks["future_rows"]["summary"] == "no row is dated after the server's clock"
        status = t.json("status", env=env)
        rollup = status["rollup"]
        assert rollup["usable"] and 0 <= rollup["unaggregated_age_seconds"] < 300
        oldest = dt.datetime.fromisoformat(rollup["oldest_unaggregated"])
        assert oldest == t.read_back(t.stored(as_of + dt.timedelta(milliseconds=1)))
        assert oldest.utcoffset() == oldest.astimezone(NY).utcoffset()  # shown in New York
        text = t.cli("status", env=env)
        assert text.code == 0 and "Traceback" not in text.stderr and "not aggregated" in text.stdout
    # a row ten minutes ahead: WARNING; two days ahead: CRITICAL
    t.insert([("/b", t.now() + dt.timedelta(minutes=10), 1.0, 200)])
    r = t.cli("check", "--only", "future_rows")
    assert r.code == 1 and "future_rows: 1 row is dated in the future, up to" in r.stdout
    assert re.search(r"future_rows=(59\d|600);300;86400", r.stdout), r.stdout
    ahead = t.now() + dt.timedelta(days=2)
    t.insert([("/b", ahead, 1.0, 200)])
    r = t.cli("--format", "json", "check", "--only", "future_rows", env={"PGTZ": "UTC"})
    assert r.code == 2
    summary = json.loads(r.stdout)["checks"][0]["summary"]
    shown = t.read_back(t.stored(ahead)).astimezone(NY)
    assert summary.startswith(f"2 rows are dated in the future, up to {shown:%Y-%m-%d %H:%M:%S}")


@pytest.mark.parametrize(("column", "type_"), [("status", "text"), ("ts", "date")])
def test_check_and_status_on_a_column_of_the_wrong_type(
    column: str, type_: str, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    t = make_table(dsn, conn, tmp_path, naive_zone=None, strategy="incremental")
    t.insert(history(random.Random(10), t.now(), 100))
    assert t.cli("view", "build").code == 0
    conn.execute(f'ALTER TABLE "Api"."Requests" ALTER COLUMN {column} TYPE {type_}')
    r = t.cli("--format", "json", "check", "--only", "view_staleness,future_rows,late_rows")
    assert r.code == 3 and "Traceback" not in r.stderr, r.stderr
    checks = {c["name"]: c for c in json.loads(r.stdout)["checks"]}
    for name in ("view_staleness", "future_rows"):
        assert checks[name]["state"] == "UNKNOWN"
        assert f'column \'{column}\' of "Api"."Requests" is' in checks[name]["summary"]
        assert "\n" not in checks[name]["summary"]
    assert checks["late_rows"]["state"] == "OK"  # reads only the run history
    r = t.cli("check")  # every check: the worst of the others wins over UNKNOWN
    assert r.code in (1, 2, 3) and r.stdout.count("\n") == 1 and "Traceback" not in r.stderr
    assert "view_staleness: cannot check: source.columns." in r.stdout
    r = t.cli("--format", "json", "status")
    assert r.code == 0 and "Traceback" not in r.stderr
    assert json.loads(r.stdout)["rollup"].startswith("unavailable: source.columns.")


def test_maintain_refuses_a_rollup_built_with_other_parameters(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, "incremental")
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 2000)
    assert _cli(cfg, dsn, "view", "build").code == 0
    runs = conn.execute("SELECT count(*) FROM epstats.runs").fetchone()
    Path(cfg).write_text(
        f"source: {{timezone: {TZ}, error_status_min: 400}}\n"
        "view: {strategy: incremental, lookback: 2d}\n"
    )
    for args in ((), ("--dry-run",), ("--force", "verify")):
        r = _cli(cfg, dsn, "maintain", *args)
        assert r.code == 3, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("epstats: error: source.error_status_min: ")
        assert "built with error_status_min 500, the configuration says 400" in r.stderr
        assert "epstats view build --replace" in r.stderr and "Traceback" not in r.stderr
    assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == runs  # nothing ran
    # no rollup: maintain runs, and the refresh is skipped as before
    conn.execute(f"DROP TABLE {VIEW}")
    r = _cli(cfg, dsn, "--format", "json", "maintain")
    assert r.code == 0, r.stderr
    tasks = {t["task"]: t for t in json.loads(r.stdout)["tasks"]}
    assert tasks["refresh"]["status"] == tasks["verify"]["status"] == "skipped"
    assert tasks["verify"]["reason"] == "no rollup yet (epstats view build creates it)"
