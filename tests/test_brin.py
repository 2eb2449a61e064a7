"""The timestamp index chosen by measurement (`indexes.*.method: auto`): the rule without a
database, then plan/apply/status/--switch-method and maintain's summarizing on real servers."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import psycopg
import pytest

from epstats_cli import source
from epstats_cli.config import Config
from epstats_cli.db import connect
from epstats_cli.index_method import MIN_PAGES, Sample, choose, probe_blocks
from tests.conftest import run_cli
from tests.helpers import Writer, catalog

pytestmark = pytest.mark.one_version  # heavy: the first server version only

HOUR = 3600.0

# 200,000 rows over two days, inserted in time order (about 1,700 heap pages).
ORDERED = """
INSERT INTO requests (endpoint, "timestamp", response_time, status)
SELECT '/api/v1/e' || (g % 40), now() - interval '2 days' + g * interval '864 ms', g % 1000, 200
FROM generate_series(1, 200000) g
"""
# The same, but one row in ten arrives up to a day late (dated up to a day before its place).
LATE = """
INSERT INTO requests (endpoint, "timestamp", response_time, status)
SELECT '/api/v1/e' || (g % 40),
       now() - interval '2 days' + g * interval '864 ms'
       - CASE WHEN g % 10 = 0 THEN ((g * 7919) % 86400) * interval '1 second'
              ELSE interval '0' END,
       g % 1000, 200
FROM generate_series(1, 200000) g
"""


def _sample(late_every: int, pages: int = 4096, rows_per_page: int = 100) -> Sample:
    """A table written at one row a second; every `late_every`th row (0: none) is dated up to
    a day before its place."""
    values: dict[int, list[float]] = {}
    for block in probe_blocks(pages):
        vals = []
        for i in range(rows_per_page):
            n = block * rows_per_page + i
            late = late_every and n % late_every == 0
            vals.append(float(n) - ((n * 7919) % 86400 if late else 0))
        values[block] = vals
    return Sample(pages, float(pages * rows_per_page), len(values), values)


def test_probe_is_bounded() -> None:
    assert len(probe_blocks(10_000_000)) == 32 * 32
    assert probe_blocks(100) == list(range(0, 100, 4))


def test_ordered_heap_gets_brin_and_late_rows_btree() -> None:
    ordered = choose(_sample(0), "timestamptz_minmax_multi_ops")
    assert ordered.method == "brin" and ordered.opclass is None, ordered
    assert ordered.pages_per_range in (16, 32, 64, 128)
    assert ordered.brin_bytes is not None and ordered.btree_bytes is not None
    assert ordered.brin_bytes * 20 < ordered.btree_bytes
    w = ordered.measurement["windows"]
    assert w["1h"]["brin_blocks"] <= 2 * w["1h"]["btree_blocks"]

    late = choose(_sample(10), "timestamptz_minmax_multi_ops")
    assert late.method == "btree" and "out of time order" in late.reason, late
    w = late.measurement["windows"]
    assert w["1h"]["brin_blocks"] > 2 * w["1h"]["btree_blocks"]


def test_a_few_late_rows_take_minmax_multi() -> None:
    # one row in 2,000 late: each range's min is a day early (minmax reads too much), but
    # minmax-multi keeps the outliers as points
    few = choose(_sample(2000), "timestamptz_minmax_multi_ops")
    assert few.method == "brin" and few.opclass == "timestamptz_minmax_multi_ops", few
    assert choose(_sample(2000), None).method == "btree"  # before PostgreSQL 14


def test_newest_rows_in_old_pages_take_btree() -> None:
    # single-row INSERTs put into the free space VACUUM recorded in old pages: every old range
    # holding a row of the newest hour is read by every newest-hour query
    sample = _sample(0)
    newest = max(v for vals in sample.values.values() for v in vals)
    strays = {b: [*v, newest] if b % 64 == 8 else v for b, v in sample.values.items()}
    stray = choose(Sample(sample.pages, sample.rows, sample.blocks_read, strays), "multi_ops")
    assert stray.method == "btree" and "newest 1h" in stray.reason, stray
    w = stray.measurement["windows"]["newest 1h"]
    assert w["brin_blocks"] > 2 * w["btree_blocks"]
    clean = choose(sample, "multi_ops").measurement["windows"]["newest 1h"]
    assert clean["brin_blocks"] <= 2 * clean["btree_blocks"]


def test_nothing_to_measure_is_btree() -> None:
    assert choose(None, None, "a small table").method == "btree"
    assert choose(Sample(5000, 0.0, 10, {0: []}), None).method == "btree"


def _plan(dsn: str, *extra: str) -> dict[str, Any]:
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "plan", *extra)
    assert r.code == 0, r.stderr
    doc: dict[str, Any] = json.loads(r.stdout)
    return doc


def _ts_index(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT pg_get_indexdef('idx_requests_timestamp'::regclass)").fetchone()
    assert row is not None
    return str(row[0])


def _load(dsn: str, conn: psycopg.Connection[Any], rows_sql: str) -> None:
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    conn.execute("DROP INDEX IF EXISTS idx_requests_timestamp")
    conn.execute(rows_sql)
    conn.execute("ANALYZE requests")
    pages = conn.execute("SELECT pg_relation_size('requests') / 8192").fetchone()
    assert pages is not None and pages[0] >= MIN_PAGES


def test_append_ordered_table_gets_brin(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _load(dsn, conn, ORDERED)
    plan = _plan(dsn)
    rec = {r["name"]: r for r in plan["recommended"]}["idx_requests_timestamp"]
    assert (rec["method"], rec["state"]) == ("brin", "missing")
    m = rec["measurement"]
    assert m["choice"] == "brin" and m["blocks_sampled"] <= 1024 and m["pages"] >= MIN_PAGES
    assert m["brin_bytes"] < m["btree_bytes"]
    [step] = [s for s in plan["steps"] if s["target"] == "idx_requests_timestamp"]
    assert "USING brin" in step["sql"] and "autosummarize = on" in step["sql"]
    assert "CONCURRENTLY" in step["sql"]
    r = run_cli("--dsn", dsn, "indexes", "apply")
    assert r.code == 0, r.stderr
    made = _ts_index(conn)
    assert "USING brin" in made and "autosummarize='on'" in made, made
    assert f"pages_per_range='{m['pages_per_range']}'" in made
    assert json.loads(run_cli("--dsn", dsn, "--format", "json", "indexes", "apply").stdout) == {
        "tasks": []
    }


def test_late_rows_get_btree(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _load(dsn, conn, LATE)
    # correlation alone would call this table ordered
    corr = conn.execute(
        "SELECT correlation FROM pg_stats WHERE tablename = 'requests' AND attname = 'timestamp'"
    ).fetchone()
    assert corr is not None and corr[0] > 0.9
    rec = {r["name"]: r for r in _plan(dsn)["recommended"]}["idx_requests_timestamp"]
    assert (rec["method"], rec["state"]) == ("btree", "missing")
    assert "out of time order" in rec["measurement"]["reason"]
    assert run_cli("--dsn", dsn, "indexes", "apply").code == 0
    assert "USING btree" in _ts_index(conn)


def test_switch_method_both_ways(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _load(dsn, conn, ORDERED)
    # the guide's btree, on a table in time order: plan shows the switch and what it saves
    conn.execute('CREATE INDEX idx_requests_timestamp ON requests ("timestamp")')
    conn.execute('CREATE INDEX idx_requests_endpoint_timestamp ON requests (endpoint, "timestamp")')
    rec = {r["name"]: r for r in _plan(dsn)["recommended"]}["idx_requests_timestamp"]
    assert (rec["method"], rec["state"]) == ("brin", "switch"), rec
    assert "saves" in rec["detail"] and "--switch-method" in rec["detail"]
    status = json.loads(run_cli("--dsn", dsn, "--format", "json", "indexes", "status").stdout)
    assert any("a BRIN fits" in w for w in status["warnings"]), status
    # plain apply leaves it (not an error), and says so
    before = catalog(conn)
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "apply")
    assert r.code == 0 and json.loads(r.stdout) == {"tasks": []}
    assert "--switch-method" in r.stderr
    assert catalog(conn) == before
    dry = run_cli("--dsn", dsn, "indexes", "apply", "--switch-method", "--dry-run")
    assert dry.code == 0, dry.stderr
    assert catalog(conn) == before
    with Writer(dsn) as writer:
        r = run_cli("--dsn", dsn, "--format", "json", "indexes", "apply", "--switch-method")
    assert r.code == 0, r.stderr
    tasks = json.loads(r.stdout)["tasks"]
    assert [(t["task"], t["status"]) for t in tasks] == [("switch", "ok")] * 3
    sent = [t["sql"] for t in tasks]
    assert sent[0].startswith('CREATE INDEX CONCURRENTLY "idx_requests_timestamp_switch"')
    assert "RENAME TO" in sent[1]
    assert sent[2] == 'DROP INDEX CONCURRENTLY IF EXISTS "public"."idx_requests_timestamp_old"'
    assert writer.errors == [] and writer.count > 0
    for text in sent:  # the dry run showed what ran
        assert text in dry.stdout, text
    assert "USING brin" in _ts_index(conn)
    names = {r[0] for r in conn.execute("SELECT relname FROM pg_class WHERE relkind = 'i'")}
    assert not {"idx_requests_timestamp_switch", "idx_requests_timestamp_old"} & names

    # then rows start arriving late (here: the table reloaded so): the BRIN no longer fits
    conn.execute("TRUNCATE requests")
    conn.execute(LATE)
    conn.execute("ANALYZE requests")
    status = json.loads(run_cli("--dsn", dsn, "--format", "json", "indexes", "status").stdout)
    assert any("BRIN that no longer fits" in w for w in status["warnings"]), status
    r = run_cli("--dsn", dsn, "--format", "json", "indexes", "apply", "--switch-method")
    assert r.code == 0, r.stderr
    assert "USING btree" in _ts_index(conn)
    status = json.loads(run_cli("--dsn", dsn, "--format", "json", "indexes", "status").stdout)
    assert status["warnings"] == []


def test_maintain_summarizes_new_ranges(dsn: str, conn: psycopg.Connection[Any]) -> None:
    _load(dsn, conn, ORDERED)
    assert run_cli("--dsn", dsn, "indexes", "apply").code == 0
    assert "USING brin" in _ts_index(conn)
    # autosummarize's request lost (as when its queue is full): ranges stay unsummarized
    conn.execute("ALTER INDEX idx_requests_timestamp SET (autosummarize = off)")
    conn.execute(ORDERED.replace("now() - interval '2 days'", "now()"))
    r = run_cli(
        "--dsn", dsn, "--format", "json", "maintain", "--only", "analyze", "--force", "analyze"
    )
    assert r.code == 0, r.stderr
    tasks = {(t["task"], t["target"]): t for t in json.loads(r.stdout)["tasks"]}
    assert tasks[("analyze", "public.idx_requests_timestamp")]["status"] == "ok", tasks
    left = conn.execute(
        "SELECT brin_summarize_new_values('idx_requests_timestamp'::regclass)"
    ).fetchone()
    assert left == (0,)


def test_first_day_is_bounded_and_right(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """The verify task's oldest raw day is looked for in a window after the statistics' oldest
    value, and found right when the statistics are stale either way."""
    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    conn.execute(
        'INSERT INTO requests (endpoint, "timestamp", response_time, status) '
        "SELECT 'e', timestamptz '2026-01-01 12:00Z' + g * interval '1 hour', 1, 200 "
        "FROM generate_series(0, 239) g"
    )
    conn.execute("ANALYZE requests")
    s = connect(Config(), dsn)
    try:
        basis = source.Basis.of(s.config, source.check_columns(s))
        assert source.first_day(s, basis, dt.date.min) == dt.date(2026, 1, 1)
        assert source.first_day(s, basis, dt.date(2026, 1, 4)) == dt.date(2026, 1, 4)
        # retention by DELETE since the last ANALYZE: nothing in the window, the rest is read
        conn.execute("DELETE FROM requests WHERE \"timestamp\" < '2026-01-06'")
        assert source.first_day(s, basis, dt.date.min) == dt.date(2026, 1, 6)
        # a late row dated before anything the statistics know: in the window
        conn.execute(
            'INSERT INTO requests (endpoint, "timestamp", response_time, status) '
            "VALUES ('e', '2025-12-20 08:00Z', 1, 200)"
        )
        assert source.first_day(s, basis, dt.date.min) == dt.date(2025, 12, 20)
        conn.execute("DELETE FROM requests")
        assert source.first_day(s, basis, dt.date.min) is None
    finally:
        s.conn.close()


def test_newest_rows_in_space_a_delete_freed_are_no_strays() -> None:
    """Retention by DELETE, VACUUM, then new rows written together into the freed pages (trial
    17b, defect 5): the newest hour fills a few ranges there, which the sample must not count
    once for every unsampled part of the table (it did: 11x, "rows out of time order")."""
    pages, per_page = 32768, 100
    blocks = probe_blocks(pages)
    # the new rows fill blocks [0, end) in time order, newer than every old row; end falls
    # inside a sampled probe range, so the sample holds the newest hour
    end = blocks[len(blocks) * 3 // 8] + 60
    old_from = end + 4000  # the freed pages the new rows have not reached yet are empty
    values: dict[int, list[float]] = {}
    for block in blocks:
        if block < end:
            base = float((pages + block) * per_page)  # after the newest old row
        elif block >= old_from:
            base = float(block * per_page)
        else:
            values[block] = []
            continue
        values[block] = [base + i for i in range(per_page)]
    rows = float((end + pages - old_from) * per_page)
    got = choose(Sample(pages, rows, len(blocks), values), "timestamptz_minmax_multi_ops")
    w = got.measurement["windows"]["newest 1h"]
    assert w["brin_blocks"] <= 2 * w["btree_blocks"], got
    assert got.method == "brin" and "out of time order" not in got.reason, got


def test_cancelled_measurement_is_btree_and_keeps_an_existing_index() -> None:
    """statement_timeout cancelling the sample (trial 17b, defect 4): the method is resolved
    (btree by default) and says why; an existing index of either method stays."""
    from epstats_cli.config import IndexSpec
    from epstats_cli.index_method import cancelled
    from epstats_cli.indexes import match_recommended
    from tests.test_indexes import idx

    choice = cancelled("database.statement_timeout 200ms")
    spec = IndexSpec("idx_requests_timestamp", ("timestamp",), "auto")
    physical = {"timestamp": "timestamp"}
    [missing] = match_recommended([spec], physical, [], set(), {spec.name: choice})
    assert (missing.method, missing.build_method, missing.state) == ("btree", "btree", "missing")
    assert "cancelled by statement_timeout" in missing.choice.reason  # type: ignore[union-attr]
    brin = idx(spec.name, "timestamp", method="brin")
    [kept] = match_recommended([spec], physical, [brin], set(), {spec.name: choice})
    assert (kept.method, kept.state) == ("brin", "present"), kept
    assert kept.choice is not None and "existing brin index is kept" in kept.choice.reason


def test_sampling_reads_each_block_once(dsn: str, conn: psycopg.Connection[Any]) -> None:
    """The sample costs the blocks it reads (trial 17b, defect 6: a TID scan probed ~200 line
    pointers per block, 200k buffer accesses for 1,000 blocks)."""
    from epstats_cli import queries

    _load(dsn, conn, ORDERED.replace("200000", "600000"))
    version = conn.info.server_version
    pages = conn.execute("SELECT pg_relation_size('requests') / 8192").fetchone()
    assert pages is not None
    blocks = probe_blocks(int(pages[0]))
    query = queries.get(
        "indexes/sample_blocks", version, table=("public", "requests"), timestamp="timestamp"
    ).as_string(conn)
    plan = conn.execute(
        "EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) " + query, {"blocks": blocks, "per_page": 200}
    ).fetchone()
    assert plan is not None
    top = plan[0][0]["Plan"]
    touched = top["Shared Hit Blocks"] + top["Shared Read Blocks"]
    assert top["Actual Rows"] > 100 * len(blocks)
    if version >= 140000:
        assert touched <= 2 * len(blocks), (touched, len(blocks))
