"""Retention on real servers (issue 16): raw rows of whole days older than source.retention are
retired by the `retention` task, on a plain table (verified DELETE batches that merge late rows
into the rollup) and on a partitioned one (each old partition compared, detached and dropped),
and the rollup keeps every number: its sums over all days (counts, errors, status classes,
response times, latency histograms) are the same before and after, plus any late row that
arrived just before its day was retired. The rules around the retention horizon hold
afterwards: `view refresh --since`, `view build --replace`, `view verify` and the verify task
never recompute a retired day, and a change of parameters is refused unless --keep-retired."""

from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rich.console import Console

from epstats_cli import retention
from epstats_cli.config import load as load_config
from epstats_cli.db import session
from epstats_cli.execute import Executor
from tests.conftest import Server, run_cli
from tests.helpers import fill
from tests.layout_check import plain_lines
from tests.rollup_oracle import compare_view, raw_rollup

pytestmark = pytest.mark.one_version  # heavy: the first server version only

TZ = "America/New_York"
VIEW = "endpoint_daily_stats"
SUMS = (
    "request_count",
    "error_count",
    "response_count",
    "status_2xx",
    "status_3xx",
    "status_4xx",
    "status_5xx",
    "status_other",
)


def _cfg(
    tmp_path: Path, strategy: str = "incremental", retention_: str = "10d", extra: str = ""
) -> str:
    cfg = tmp_path / "epstats.yaml"
    cfg.write_text(
        f"source: {{timezone: {TZ}, retention: {retention_}}}\n"
        f"view: {{strategy: {strategy}, lookback: 2d}}\n" + extra
    )
    return str(cfg)


def _cli(cfg: str, dsn: str, *args: str) -> Any:
    return run_cli("-c", cfg, "--dsn", dsn, *args)


def _json(cfg: str, dsn: str, *args: str, code: int = 0) -> Any:
    r = _cli(cfg, dsn, "--format", "json", *args)
    assert r.code == code, (r.stdout, r.stderr)
    return json.loads(r.stdout)


def totals(conn: psycopg.Connection[Any]) -> dict[str, Any]:
    """The rollup's numbers summed over every day: counts, response times, histograms."""
    sums = ", ".join(f"sum({c})::bigint" for c in SUMS)
    row = conn.execute(
        f"SELECT {sums}, round(sum(total_response_time)::numeric, 3), min(min_response_time), "
        f"max(max_response_time) FROM {VIEW} WHERE endpoint IS NOT NULL"
    ).fetchone()
    assert row is not None
    hist = conn.execute(
        f"SELECT b, sum(c)::bigint FROM {VIEW}, unnest(latency_buckets, latency_counts) AS h(b, c) "
        "WHERE endpoint IS NOT NULL GROUP BY b ORDER BY b"
    ).fetchall()
    per_day = conn.execute(
        f"SELECT day, sum(request_count)::bigint FROM {VIEW} WHERE endpoint IS NOT NULL "
        "GROUP BY day ORDER BY day"
    ).fetchall()
    return {"sums": tuple(row), "histogram": hist, "days": dict(per_day)}


def _day(conn: psycopg.Connection[Any], days_ago: int) -> dt.date:
    row = conn.execute(
        "SELECT ((now() - %s * interval '1 day') AT TIME ZONE %s)::date", (days_ago, TZ)
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _insert_late(conn: psycopg.Connection[Any], days_ago: int) -> None:
    """One late row: dated `days_ago` days back (a day long settled), written now."""
    conn.execute(
        "INSERT INTO requests VALUES ('/late', now() - %s * interval '1 day', 1234.5, 503)",
        (days_ago,),
    )


def _horizon(conn: psycopg.Connection[Any]) -> dt.date | None:
    row = conn.execute(
        "SELECT retired_through FROM epstats.rollup_state WHERE view_name = %s",
        (f"public.{VIEW}",),
    ).fetchone()
    return None if row is None else row[0]


def _oldest_raw(conn: psycopg.Connection[Any]) -> dt.date:
    row = conn.execute(
        'SELECT (min("timestamp") AT TIME ZONE %s)::date FROM requests', (TZ,)
    ).fetchone()
    assert row is not None
    return row[0]  # type: ignore[no-any-return]


def _partitioned(conn: psycopg.Connection[Any], default: bool = False) -> None:
    """requests partitioned by day at local midnights in TZ, 35 days back to 3 ahead."""
    conn.execute(
        'CREATE TABLE requests (endpoint text NOT NULL, "timestamp" timestamptz NOT NULL, '
        'response_time double precision, status integer) PARTITION BY RANGE ("timestamp")'
    )
    today = _day(conn, 0)
    for i in range(-35, 4):
        day = today + dt.timedelta(days=i)
        conn.execute(
            f"CREATE TABLE requests_p{day:%Y%m%d} PARTITION OF requests FOR VALUES "
            f"FROM (('{day}'::timestamp AT TIME ZONE '{TZ}')) "
            f"TO (('{day + dt.timedelta(days=1)}'::timestamp AT TIME ZONE '{TZ}'))"
        )
    if default:
        conn.execute("CREATE TABLE requests_default PARTITION OF requests DEFAULT")


def _retire_and_check(
    cfg: str, dsn: str, conn: psycopg.Connection[Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Build; add a late row to a day about to be retired (the comparison before retiring finds
    it and recomputes the day), and another one just after that comparison, before the day's
    rows go (merged into the rollup by the statement that deletes or drops them); retire; and
    check every number."""
    assert _cli(cfg, dsn, "view", "build").code == 0
    _insert_late(conn, 15)  # after the build: the rollup lacks it
    early, late_day = _day(conn, 15), _day(conn, 13)
    settle = retention._settle

    def settled_then_a_late_row(*args: Any) -> str | None:
        snapshot = settle(*args)
        unit = args[3]
        if unit.first <= late_day <= unit.last:
            conn.execute(
                "INSERT INTO requests VALUES ('/late', (%s::timestamp + interval '12 hours') "
                "AT TIME ZONE %s, 4321.5, 503)",
                (late_day, TZ),
            )
        return snapshot

    monkeypatch.setattr(retention, "_settle", settled_then_a_late_row)
    before = totals(conn)
    doc = _json(cfg, dsn, "maintain", "--only", "retention", "--force", "retention")
    summary = doc["tasks"][-1]
    assert (summary["task"], summary["status"]) == ("retention", "ok"), doc
    assert "1 late rows merged into the rollup first" in summary["reason"], summary["reason"]
    assert f"recomputed before retiring: {early}" in summary["reason"], summary["reason"]
    horizon = _horizon(conn)
    assert horizon is not None and horizon == _day(conn, 11)
    assert _oldest_raw(conn) > horizon
    after = totals(conn)
    # every number kept, and each late row counted (once) in its day
    want = dict(before["days"])
    want[early] += 1
    want[late_day] += 1
    assert after["days"] == want
    assert after["sums"][0] == before["sums"][0] + 2  # requests
    assert after["sums"][1] == before["sums"][1] + 2  # errors (503)
    assert after["sums"][6] == before["sums"][6] + 2  # 5xx
    assert after["sums"][-1] == 4321.5  # max_response_time: the late row's
    hist = dict(after["histogram"])
    for b, c in before["histogram"]:
        hist[b] -= c
    assert sum(hist.values()) == 2 and all(c >= 0 for c in hist.values())
    settled = after
    # the rules afterwards: nothing recomputes a retired day
    out = _json(cfg, dsn, "view", "refresh", "--since", str(_day(conn, 40)))
    assert f"the retention horizon: days up to {horizon}" in out["tasks"][0]["reason"]
    assert totals(conn) == settled
    verify = _json(cfg, dsn, "view", "verify", "--days", "40")
    assert verify["ok"] and verify["retention_horizon"] == horizon.isoformat()
    assert verify["window"]["from"] == (horizon + dt.timedelta(days=1)).isoformat()
    assert (
        _json(cfg, dsn, "maintain", "--only", "verify", "--force", "verify")["tasks"][-1]["status"]
        == "ok"
    )
    assert totals(conn) == settled
    assert _cli(cfg, dsn, "view", "build", "--replace").code == 0
    assert totals(conn) == settled
    assert _horizon(conn) == horizon
    # the days after the horizon still equal their raw rows
    as_of = conn.execute(f"SELECT as_of FROM {VIEW} WHERE endpoint IS NULL").fetchone()[0]  # type: ignore[index]
    oracle = {k: v for k, v in raw_rollup(conn, TZ, until=as_of).items() if k[1] > horizon}
    kept = [p for p in compare_view(conn, VIEW, oracle) if "missing from the raw rows" not in p]
    assert not [p for p in kept if str(horizon) not in p and any(str(d) in p for d in oracle)]
    # a report over a window before the horizon says it comes from the rollup alone
    report = _json(cfg, dsn, "report", "top", "--days", "30")
    assert report["retention_horizon"] == horizon.isoformat()


def test_retention_on_a_plain_table_keeps_every_number(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _cfg(tmp_path)
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 100000)  # 29 days of rows
    assert _cli(cfg, dsn, "indexes", "apply").code == 0
    _retire_and_check(cfg, dsn, conn, monkeypatch)


@pytest.mark.parametrize("default", [False, True], ids=["concurrently", "default-partition"])
def test_retention_on_a_partitioned_table_drops_old_partitions(
    default: bool,
    dsn: str,
    conn: psycopg.Connection[Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cfg = _cfg(tmp_path)
    _partitioned(conn, default)
    assert _cli(cfg, dsn, "init").code == 0
    fill(conn, 100000)
    conn.execute('CREATE INDEX ON requests ("timestamp")')  # `indexes apply`: h16p's part
    parts = conn.execute("SELECT count(*) FROM pg_inherits WHERE inhparent = 'requests'::regclass")
    before = parts.fetchone()[0]  # type: ignore[index]
    _retire_and_check(cfg, dsn, conn, monkeypatch)
    left = conn.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
        "WHERE inhparent = 'requests'::regclass ORDER BY 1"
    ).fetchall()
    horizon = _horizon(conn)
    assert horizon is not None
    assert f"requests_p{horizon:%Y%m%d}" not in [r[0] for r in left]
    assert f"requests_p{horizon + dt.timedelta(days=1):%Y%m%d}" in [r[0] for r in left]
    assert len(left) < before
    # the dropped partitions are gone, not merely detached
    gone = conn.execute(
        "SELECT count(*) FROM pg_class WHERE relname = %s", (f"requests_p{horizon:%Y%m%d}",)
    ).fetchone()
    assert gone is not None and gone[0] == 0


def test_an_interrupted_run_leaves_no_day_to_repair_down(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Stopped by max_runtime in the middle of a day: the horizon is recorded, no refresh or
    verify recomputes the half-deleted day, and the next run finishes it, counting a late row
    that arrived in between."""
    cfg = _cfg(tmp_path)
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 100000)
    assert _cli(cfg, dsn, "indexes", "apply").code == 0
    assert _cli(cfg, dsn, "view", "build").code == 0
    before = totals(conn)
    first = _oldest_raw(conn)
    ticks = iter(range(1000))
    with session(load_config(cfg), dsn) as s:
        # each clock read is a second: two batches run, the third finds no time left
        result = retention.run(
            s, Executor(s, record=True), "forced", 3.5, clock=lambda: float(next(ticks)), batch=50
        )
    assert "stopped by max_runtime" in result[-1].reason, result[-1].reason
    assert _horizon(conn) == first
    left = conn.execute(
        'SELECT count(*) FROM requests WHERE ("timestamp" AT TIME ZONE %s)::date = %s', (TZ, first)
    ).fetchone()[0]  # type: ignore[index]
    assert 0 < left < before["days"][first]  # half-deleted
    conn.execute(
        "INSERT INTO requests VALUES ('/late', (%s::timestamp + interval '1 hour') AT TIME ZONE %s,"
        " 7, 200)",
        (first, TZ),
    )
    # a refresh of every day, and the verify task, leave the half-deleted day alone
    assert _cli(cfg, dsn, "view", "refresh", "--full").code == 0
    assert (
        _json(cfg, dsn, "maintain", "--only", "verify", "--force", "verify")["tasks"][-1]["status"]
        == "ok"
    )
    assert totals(conn) == before
    doc = _json(cfg, dsn, "maintain", "--only", "retention", "--force", "retention")
    assert doc["tasks"][-1]["status"] == "ok", doc
    after = totals(conn)
    assert after["days"][first] == before["days"][first] + 1
    assert after["sums"][0] == before["sums"][0] + 1


def test_materialized_with_retention_is_refused(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path, strategy="materialized")
    r = _cli(cfg, dsn, "config", "check")
    assert r.code == 3
    assert "source.retention: 10d needs view.strategy incremental" in r.stderr + r.stdout
    for args in (("status",), ("view", "refresh"), ("maintain",), ("report", "top")):
        r = _cli(cfg, dsn, *args)
        assert r.code == 3, (args, r.stderr)
        assert "needs view.strategy incremental" in r.stderr
    # too short to leave the lookback alone
    r = _cli(_cfg(tmp_path, retention_="2d"), dsn, "config", "check")
    assert r.code == 3 and "shorter than view.lookback and a day" in r.stderr + r.stdout


def test_a_parameter_change_is_refused_once_days_are_retired(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path)
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 100000)
    assert _cli(cfg, dsn, "view", "build").code == 0
    assert (
        _json(cfg, dsn, "maintain", "--only", "retention", "--force", "retention")["tasks"][-1][
            "status"
        ]
        == "ok"
    )
    horizon = _horizon(conn)
    assert horizon is not None
    before = totals(conn)
    changed = _cfg(tmp_path, extra="").replace("", "")
    Path(changed).write_text(
        f"source: {{timezone: {TZ}, retention: 10d, error_status_min: 400}}\n"
        "view: {strategy: incremental, lookback: 2d}\n"
    )
    r = _cli(changed, dsn, "view", "build", "--replace")
    assert r.code == 3, r.stderr
    assert "old and new days would disagree" in r.stderr, r.stderr
    assert "--keep-retired" in r.stderr
    r = _cli(changed, dsn, "view", "refresh")
    assert r.code == 3 and "--keep-retired" in r.stderr
    # maintain refuses it as view refresh does (exit 3, the same line), not as a skipped task
    m = _cli(changed, dsn, "maintain", "--only", "retention", "--force", "retention")
    assert (m.code, m.stderr) == (3, r.stderr), (m.stdout, m.stderr)
    assert totals(conn) == before
    assert _cli(changed, dsn, "view", "build", "--replace", "--keep-retired").code == 0
    params = conn.execute(
        "SELECT parameters FROM epstats.rollup_state WHERE view_name = %s", (f"public.{VIEW}",)
    ).fetchone()[0]  # type: ignore[index]
    assert params["parameters_from"] == (horizon + dt.timedelta(days=1)).isoformat()
    assert params["error_status_min"] == 400
    after = totals(conn)
    # retired days keep their numbers (errors at >= 500), the others follow the new threshold
    assert {d: n for d, n in after["days"].items() if d <= horizon} == {
        d: n for d, n in before["days"].items() if d <= horizon
    }
    assert _cli(changed, dsn, "view", "refresh").code == 0


def test_dry_run_shows_the_horizon_the_comparison_and_the_batches_and_changes_nothing(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    cfg = _cfg(tmp_path)
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 100000)
    assert _cli(cfg, dsn, "view", "build").code == 0
    before = totals(conn), conn.execute("SELECT count(*) FROM requests").fetchone()
    runs = conn.execute("SELECT count(*) FROM epstats.runs").fetchone()
    doc = _json(cfg, dsn, "maintain", "--only", "retention", "--force", "retention", "--dry-run")
    horizon, compare, delete = doc["tasks"]
    assert {t["status"] for t in doc["tasks"]} == {"planned"}
    assert horizon["reason"].startswith("due: forced; record the retention horizon")
    assert "UPDATE epstats.rollup_state" in horizon["sql"]
    assert compare["sql"].startswith("WITH fresh AS")
    assert 'DELETE FROM "public"."requests" AS t' in delete["sql"]
    assert "ON CONFLICT (endpoint, day) DO UPDATE" in delete["sql"]
    assert (totals(conn), conn.execute("SELECT count(*) FROM requests").fetchone()) == before
    assert conn.execute("SELECT count(*) FROM epstats.runs").fetchone() == runs
    assert _horizon(conn) is None
    # without source.retention the task is off, and says so
    plain = tmp_path / "plain.yaml"
    plain.write_text(f"source: {{timezone: {TZ}}}\nview: {{strategy: incremental}}\n")
    doc = _json(str(plain), dsn, "maintain", "--only", "retention", "--dry-run")
    assert doc["tasks"] == [] or all(
        "source.retention is not set" in t["reason"] for t in doc["tasks"]
    )


def test_the_delete_batches_show_progress_to_a_person_watching(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A person at a terminal sees each day's DELETE batches move a bar (the rows deleted of
    the day's), not only the summary at the end."""
    cfg = _cfg(tmp_path)
    assert _cli(cfg, dsn, "init", "--with-requests-table").code == 0
    fill(conn, 100000)  # about 3,500 rows a day: four batches of 1,000 each
    assert _cli(cfg, dsn, "indexes", "apply").code == 0
    assert _cli(cfg, dsn, "view", "build").code == 0
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, no_color=True)
    with session(load_config(cfg), dsn) as s:
        results = retention.run(s, Executor(s, console=console), "forced", 3600.0, batch=1000)
    assert results[-1].status == "ok", results[-1]
    frames: dict[str, list[float]] = {}
    label = ""
    for line in plain_lines(out.getvalue()):
        if line.startswith("retention "):
            label = line.strip()
        elif "%" in line and "deleting in batches" in line:
            frames.setdefault(label, []).append(float(line.split("%")[0].split()[-1]))
    first = f"retention public.requests {_retired_days(results)[0]}"
    assert first in frames, (first, list(frames))
    assert all(seen == sorted(seen) and seen[-1] == 100 for seen in frames.values()), frames
    # the oldest day may be a partial one of a single batch (the rows end now): the fullest
    seen = max(frames.values(), key=lambda f: len(set(f)))
    assert any(0 < p < 100 for p in seen), seen
    assert len(set(seen)) >= 3, seen  # a frame per batch
    assert "of" in out.getvalue() and "rows" in out.getvalue()


def _retired_days(results: list[Any]) -> list[dt.date]:
    """The days a run's summary says it retired (its span `(first..last)`)."""
    span = results[-1].reason.split("day(s) (", 1)[1].split(")", 1)[0]
    first, _dots, last = span.partition("..")
    return [dt.date.fromisoformat(first), dt.date.fromisoformat(last or first)]


def test_default_partition_rows_up_to_the_horizon_are_retired_as_a_plain_tables(
    dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """A row dated before the first partition (in the DEFAULT, counted by the rollup) is
    retired without being counted twice; a late row for a day whose partition was dropped
    lands in the DEFAULT: check partition_runway says how many such rows there are, and the
    next run merges it into the rollup and deletes it."""
    cfg = _cfg(tmp_path)
    _partitioned(conn, default=True)
    assert _cli(cfg, dsn, "init").code == 0
    fill(conn, 100000)
    conn.execute('CREATE INDEX ON requests ("timestamp")')
    _insert_late(conn, 40)  # before the first partition: in the DEFAULT
    assert _cli(cfg, dsn, "view", "build").code == 0
    before = totals(conn)
    doc = _json(cfg, dsn, "maintain", "--only", "retention", "--force", "retention")
    summary = doc["tasks"][-1]
    assert summary["status"] == "ok", doc
    assert "1 row(s) found in the DEFAULT partition public.requests_default" in summary["reason"]
    assert totals(conn) == before  # counted once
    assert conn.execute("SELECT count(*) FROM requests_default").fetchone() == (0,)
    horizon = _horizon(conn)
    assert horizon is not None and horizon >= _day(conn, 15)
    _insert_late(conn, 15)  # its partition is gone: the DEFAULT
    _insert_late(conn, 14)
    assert conn.execute("SELECT count(*) FROM requests_default").fetchone() == (2,)
    check = _cli(cfg, dsn, "--format", "json", "check", "--only", "partition_runway")
    assert "2 of them dated before" in check.stdout, check.stdout
    doc = _json(cfg, dsn, "maintain", "--only", "retention", "--force", "retention")
    summary = doc["tasks"][-1]
    assert summary["status"] == "ok", doc
    assert "2 row(s) found in the DEFAULT partition" in summary["reason"], summary["reason"]
    assert "2 deleted as a plain table's" in summary["reason"], summary["reason"]
    assert "2 late rows merged into the rollup first" in summary["reason"], summary["reason"]
    after = totals(conn)
    want = dict(before["days"])
    want[_day(conn, 15)] += 1
    want[_day(conn, 14)] += 1
    assert after["days"] == want
    assert conn.execute("SELECT count(*) FROM requests_default").fetchone() == (0,)


def test_retention_names_the_ownership_of_the_partitions_it_would_drop(
    server: Server, dsn: str, conn: psycopg.Connection[Any], tmp_path: Path
) -> None:
    """Dropping a partition needs the owner's rights on it and on the parent: a role with
    every other right is told so, all at once, before anything runs (dry run included)."""
    cfg = _cfg(tmp_path)
    _partitioned(conn)
    assert _cli(cfg, dsn, "init").code == 0
    fill(conn, 100000)
    conn.execute('CREATE INDEX ON requests ("timestamp")')
    assert _cli(cfg, dsn, "view", "build").code == 0
    db = conn.info.dbname
    role, password = f"ret_{db}", "retention-pw"
    conn.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(password)
        )
    )
    try:
        conn.execute(f"GRANT USAGE ON SCHEMA epstats TO {role}")
        conn.execute(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA epstats TO {role}"
        )
        conn.execute(f"GRANT SELECT, INSERT, DELETE ON requests, {VIEW} TO {role}")
        as_role = server.dsn_for(db, user=role, password=password)
        oldest = f"requests_p{_day(conn, 35):%Y%m%d}"
        args = ("maintain", "--only", "retention", "--force", "retention")
        dry = _json(cfg, as_role, *args, "--dry-run")
        (planned,) = dry["tasks"]
        for needed in ("the owner's rights on public.requests (", f"public.{oldest} (drop it"):
            assert needed in planned["reason"], planned["reason"]
        assert "would fail" in planned["reason"]
        r = _cli(cfg, as_role, "--format", "json", *args)
        assert r.code == 1, (r.stdout, r.stderr)
        (failed,) = json.loads(r.stdout)["tasks"]
        assert failed["status"] == "failed" and f"public.{oldest} (drop it" in failed["reason"]
        assert _horizon(conn) is None  # nothing ran
    finally:
        conn.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
        conn.execute(f"DROP OWNED BY {role}")
        conn.execute(f"DROP ROLE {role}")
