"""The progress bar: one percentage for the whole command, the phase beside it, a bar that
keeps its width at 60 and 80 columns; and on a real server, a build that waits for a writer."""

from __future__ import annotations

import io
import itertools
import threading
import time
from typing import Any

import psycopg
import pytest
from psycopg import sql
from rich.console import Console

from epstats_cli.db import Session, connect
from epstats_cli.execute import Executor
from epstats_cli.progress import (
    ANALYZE,
    BAR_WIDTH,
    CONCURRENT_BUILD,
    PLAIN_BUILD,
    REINDEX_CONCURRENTLY,
    VACUUM,
    Overall,
    bar,
)
from epstats_cli.steps import Mode, Statement, Step
from tests.layout_check import assert_fits, assert_whole, plain_lines

CIC = "CREATE INDEX CONCURRENTLY"


def _index_row(phase: str, command: str = CIC, **counters: int) -> dict[str, Any]:
    return {"command": command, "phase": phase, **counters}


def _percentages(query: str, rows: list[dict[str, Any]]) -> list[float]:
    overall = Overall(query)
    seen = []
    for row in rows:
        overall.update(row)
        seen.append(round(overall.fraction * 100, 1))
    return seen


def test_an_index_build_has_one_percentage_across_its_phases() -> None:
    rows = [
        _index_row("initializing"),
        _index_row("waiting for writers before build", lockers_done=1, lockers_total=2),
        _index_row("building index: scanning table", blocks_done=50, blocks_total=100),
        _index_row("building index: scanning table", blocks_done=90, blocks_total=100),
        _index_row("building index: sorting live tuples", blocks_done=0, blocks_total=0),
        _index_row("building index: loading tuples in tree", tuples_done=10, tuples_total=100),
        _index_row("waiting for writers before validation", lockers_done=0, lockers_total=0),
        _index_row("index validation: scanning index", blocks_done=5, blocks_total=10),
        _index_row("index validation: sorting tuples"),
        _index_row("index validation: scanning table", blocks_done=10, blocks_total=10),
        _index_row("waiting for old snapshots", lockers_done=1, lockers_total=1),
    ]
    seen = _percentages("catalog/index_build_progress", rows)
    assert seen == sorted(seen) and len(set(seen)) == len(seen), seen  # always forward
    assert seen[0] == 0.0 and seen[-1] == 100.0
    assert 15 < seen[2] < 30  # half the table scanned is not 50 % of the whole build


def test_the_phase_lists_cover_the_whole_command() -> None:
    for bands in (CONCURRENT_BUILD, REINDEX_CONCURRENTLY, PLAIN_BUILD, VACUUM):
        assert bands[0].start == 0 and bands[-1].end == pytest.approx(1.0)
        assert all(a.end == pytest.approx(b.start) for a, b in itertools.pairwise(bands))
    assert ANALYZE[-1].end == 1.0
    # a plain build has no waits: its table scan is most of it
    seen = _percentages(
        "catalog/index_build_progress",
        [
            _index_row(
                "building index: scanning table", "CREATE INDEX", blocks_done=1, blocks_total=2
            )
        ],
    )
    assert seen == [27.5]


def test_vacuum_pauses_its_scan_for_the_indexes_and_never_goes_back() -> None:
    heap = {"heap_blks_total": 100, "heap_blks_vacuumed": 0}
    rows: list[dict[str, Any]] = [
        {"phase": "scanning heap", "heap_blks_scanned": 40, **heap},
        # maintenance_work_mem full: an index pass in the middle of the scan
        {"phase": "vacuuming indexes", "heap_blks_scanned": 40, **heap},
        {"phase": "vacuuming heap", "heap_blks_scanned": 40, **heap},
        {"phase": "scanning heap", "heap_blks_scanned": 100, **heap},
        {"phase": "vacuuming indexes", "heap_blks_scanned": 100, **heap},
        {"phase": "vacuuming heap", "heap_blks_scanned": 100, **dict(heap, heap_blks_vacuumed=50)},
        {"phase": "performing final cleanup", "heap_blks_scanned": 100, **heap},
        # its TOAST table starts the phases again: the bar stays
        {"phase": "scanning heap", "heap_blks_scanned": 1, **heap},
    ]
    seen = _percentages("catalog/vacuum_progress", rows)
    assert seen == [26.0, 26.0, 26.0, 65.0, 65.0, 86.0, 99.0, 99.0]


def test_an_unknown_phase_keeps_the_bar_where_it_is() -> None:
    overall = Overall("catalog/analyze_progress")
    overall.update(
        {"phase": "acquiring sample rows", "sample_blks_scanned": 1, "sample_blks_total": 2}
    )
    overall.update({"phase": "some phase of a later release"})
    assert overall.fraction == 0.375 and overall.phase == "some phase of a later release"
    build = Overall("catalog/index_build_progress")
    build.update(_index_row("building index", "CREATE INDEX", tuples_done=1, tuples_total=4))
    assert build.fraction == 0.25  # another access method's build: the whole build's share


LABEL = "create idx_requests_endpoint_timestamp_status_response_time_covering_x"


@pytest.mark.parametrize("width", [60, 80, 200])
def test_the_bar_keeps_its_width(width: int) -> None:
    console = Console(file=io.StringIO(), width=width, force_terminal=True, no_color=True)
    progress = bar(console)
    task = progress.add_task(LABEL, total=100.0, phase="starting")
    progress.update(task, completed=42.5, phase="building index: loading tuples in tree")
    console.print(*progress.get_renderables())
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert_fits(out, width)
    assert_whole(out, LABEL, "42.5%", "building index: loading tuples in tree")
    line = next(ln for ln in plain_lines(out) if "%" in ln)
    assert line.startswith("━" * 10) and line.index("42.5%") >= BAR_WIDTH, line


@pytest.fixture
def session(dsn: str) -> Any:
    from epstats_cli.config import Config

    s = connect(Config(), dsn)
    try:
        yield s
    finally:
        s.conn.close()


def test_a_build_waiting_for_a_writer_shows_the_phase_beside_one_percentage(
    session: Session, conn: psycopg.Connection[Any], dsn: str
) -> None:
    name = LABEL.split()[1]
    conn.execute("CREATE TABLE requests AS SELECT g AS x FROM generate_series(1, 50000) g")
    step = Step(
        "create",
        name,
        "why",
        [
            Statement(
                sql.SQL("CREATE INDEX CONCURRENTLY {} ON requests (x)").format(sql.Identifier(name))
            )
        ],
        Mode.CONCURRENTLY,
        progress="catalog/index_build_progress",
    )
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, no_color=True)
    with psycopg.connect(dsn) as writer:  # a transaction that wrote: the build waits for it
        writer.execute("INSERT INTO requests VALUES (0)")
        released = threading.Event()

        def release_when_shown() -> None:
            deadline = time.monotonic() + 60
            while "waiting for writers" not in out.getvalue() and time.monotonic() < deadline:
                time.sleep(0.05)
            writer.commit()
            released.set()

        releaser = threading.Thread(target=release_when_shown)
        releaser.start()
        try:
            result = Executor(session, console=console).run(step)
        finally:
            releaser.join()
    assert result.status == "ok", result
    text = out.getvalue()
    assert "waiting for writers" in text, text
    assert_fits(text, 80)
    assert_whole(text, name, "waiting for writers before build")
    frames = [ln for ln in plain_lines(text) if "%" in ln]
    percentages = [float(ln.split("%")[0].split()[-1]) for ln in frames]
    assert percentages and percentages == sorted(percentages), frames


def _frames(text: str) -> list[tuple[str, float, str]]:
    """The bar's frames as (the step's label, the percentage, the phase), in order."""
    frames, label = [], ""
    for line in plain_lines(text):
        if line.startswith("create "):
            label = line.strip()
        elif "%" in line:
            number, phase = line.split("%", 1)
            frames.append((label, float(number.split()[-1]), phase.split(maxsplit=1)[-1]))
    return frames


def test_indexes_apply_has_one_percentage_across_its_builds(
    conn: psycopg.Connection[Any], dsn: str
) -> None:
    """A real `indexes apply` building two indices of one table: one bar, one percentage for
    the whole command that never goes back (the second build starts at its share of the
    whole, half: both read the same table), the step and the phase beside it. Writers hold each
    build in its first wait and in its wait before validation (a third of the way through the
    build) until the bar has shown them."""
    from epstats_cli import indexes
    from epstats_cli.config import Config
    from tests.conftest import run_cli
    from tests.helpers import fill

    assert run_cli("--dsn", dsn, "init", "--with-requests-table").code == 0
    fill(conn, 20000)
    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=True, no_color=True)
    releasers: list[threading.Thread] = []

    insert = "INSERT INTO requests (endpoint, timestamp) VALUES ('/w', now())"

    def shown(phase: str, mark: int) -> None:
        deadline = time.monotonic() + 60
        while phase not in out.getvalue()[mark:] and time.monotonic() < deadline:
            time.sleep(0.05)

    def hold(writer: psycopg.Connection[Any], mark: int) -> None:
        """Let the build go on once the bar has shown its wait for `writer`, and hold it
        again before its validation with a writer that began after its first wait did."""
        shown("waiting for writers before build", mark)
        with psycopg.connect(dsn) as later:
            later.execute(insert)
            mark = len(out.getvalue())
            writer.commit()
            writer.close()
            shown("waiting for writers before validation", mark)

    class TwoWritersPerBuild(Executor):
        def run(self, step: Step) -> Any:
            if step.task == "create":
                writer = psycopg.connect(dsn)
                writer.execute(insert)  # a writer the build's first wait waits for
                releaser = threading.Thread(target=hold, args=(writer, len(out.getvalue())))
                releasers.append(releaser)
                releaser.start()
            return super().run(step)

    s = connect(Config(), dsn)
    try:
        _plan, results = indexes.apply(s, TwoWritersPerBuild(s, console=console))
    finally:
        for releaser in releasers:
            releaser.join()
        s.conn.close()
    assert [(r.task, r.status) for r in results] == [("create", "ok"), ("create", "ok")]
    text = out.getvalue()
    frames = _frames(text)
    percentages = [p for _label, p, _phase in frames]
    assert percentages == sorted(percentages), frames  # never back to 0 at the second build
    first = [p for label, p, _ in frames if "(step 1 of 2)" in label]
    second = [p for label, p, _ in frames if "(step 2 of 2)" in label]
    assert first and second and min(second) >= 50.0 > max(first) > 25.0, frames
    for step in ("step 1 of 2", "step 2 of 2"):
        phases = {phase for label, _p, phase in frames if step in label}
        assert {
            "waiting for writers before build",
            "waiting for writers before validation",
        } <= phases, frames
    assert_fits(text, 80)
    line = next(ln for ln in plain_lines(text) if "%" in ln)
    assert line.index("%") >= BAR_WIDTH, line  # the bar keeps its width
