"""Progress bars from pg_stat_progress_*, polled on a second connection while a statement runs.

Only for a person at a terminal: callers pass no console for pipes, cron and --quiet. The
console is the command's own (stderr, honouring --no-color and NO_COLOR).

The server reports a phase and the counters of that phase alone, so its own percentage starts
again at every phase. The bar shows one percentage for the whole command instead: each phase
has a share of its statement (`Band`, a guess at its part of the time), the phase's counters
move the bar within its share, and the bar never goes back. The phase is shown beside it.

A command of several steps (`indexes apply` building two indices) keeps one bar across them
(`Span`): each step has a share of the whole by its weight (an estimate of its work, the size
of the table it reads), its statement moves the bar within that share, and the label names
the step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg

from epstats_cli.db import Session
from epstats_cli.polling import polling

if TYPE_CHECKING:
    from types import TracebackType

    from rich.console import Console
    from rich.progress import Progress, TaskID

BAR_WIDTH = 24  # the bar keeps this width; the label and the phase fold around it
Counter = tuple[str, str] | None  # (done, total) columns of the progress view, or none


@dataclass(frozen=True)
class Band:
    """A phase's share of the whole command, from `start` to `end` (fractions of 1)."""

    phase: str
    start: float
    end: float
    counter: Counter = None


def _weighted(*phases: tuple[str, float, Counter]) -> tuple[Band, ...]:
    """Bands one after another, each as wide as its weight (the weights add up to 100)."""
    bands: list[Band] = []
    at = 0.0
    for phase, weight, counter in phases:
        bands.append(Band(phase, at / 100, (at + weight) / 100, counter))
        at += weight
    return tuple(bands)


BLOCKS = ("blocks_done", "blocks_total")
TUPLES = ("tuples_done", "tuples_total")
LOCKERS = ("lockers_done", "lockers_total")

BUILD = (  # CREATE INDEX and REINDEX: the build alone (btree names its steps)
    ("building index: scanning table", 55.0, BLOCKS),
    ("building index: sorting live tuples", 20.0, None),
    ("building index: sorting dead tuples", 2.0, None),
    ("building index: loading tuples in tree", 23.0, TUPLES),
)
CONCURRENT_BUILD = _weighted(  # CREATE INDEX CONCURRENTLY: waits, the build, a validation
    ("initializing", 0.0, None),
    ("waiting for writers before build", 2.0, LOCKERS),
    *((phase, weight * 0.66, counter) for phase, weight, counter in BUILD),
    ("waiting for writers before validation", 2.0, LOCKERS),
    ("index validation: scanning index", 10.0, BLOCKS),
    ("index validation: sorting tuples", 5.0, None),
    ("index validation: scanning table", 13.0, BLOCKS),
    ("waiting for old snapshots", 2.0, LOCKERS),
)
REINDEX_CONCURRENTLY = _weighted(
    *((b.phase, (b.end - b.start) * 98, b.counter) for b in CONCURRENT_BUILD),
    ("waiting for readers before marking dead", 1.0, LOCKERS),
    ("waiting for readers before dropping", 1.0, LOCKERS),
)
PLAIN_BUILD = _weighted(("initializing", 0.0, None), *BUILD)

SCANNED = ("heap_blks_scanned", "heap_blks_total")
VACUUM = _weighted(
    ("initializing", 0.0, None),
    ("scanning heap", 65.0, SCANNED),
    ("vacuuming indexes", 15.0, ("indexes_processed", "indexes_total")),
    ("vacuuming heap", 12.0, ("heap_blks_vacuumed", "heap_blks_total")),
    ("cleaning up indexes", 5.0, ("indexes_processed", "indexes_total")),
    ("truncating heap", 2.0, None),
    ("performing final cleanup", 1.0, None),
)
# a pass over the indexes and the heap while the heap scan is not done yet (the dead tuples
# filled maintenance_work_mem) is a pause in the scan, not the end of it
SCAN_PAUSES = ("vacuuming indexes", "vacuuming heap")

ANALYZE = (  # a partitioned or inherited table samples its children in the same share
    Band("initializing", 0.0, 0.0),
    Band("acquiring sample rows", 0.0, 0.75, ("sample_blks_scanned", "sample_blks_total")),
    Band("acquiring inherited sample rows", 0.0, 0.75, ("child_tables_done", "child_tables_total")),
    Band("computing statistics", 0.75, 0.92),
    Band("computing extended statistics", 0.92, 0.97, ("ext_stats_computed", "ext_stats_total")),
    Band("finalizing analyze", 0.97, 1.0),
)


def bands_for(query: str, row: dict[str, Any]) -> tuple[Band, ...]:
    """The phases of the command a progress query watches (an index build's depend on its
    command: a plain build has no waits and no validation)."""
    if query == "catalog/vacuum_progress":
        return VACUUM
    if query == "catalog/analyze_progress":
        return ANALYZE
    command = str(row.get("command") or "")
    if "CONCURRENTLY" not in command:
        return PLAIN_BUILD
    return REINDEX_CONCURRENTLY if command.startswith("REINDEX") else CONCURRENT_BUILD


def _fraction(row: dict[str, Any], counter: Counter) -> float:
    if counter is None:
        return 0.0
    done, total = (float(row.get(key) or 0) for key in counter)
    return min(done / total, 1.0) if total > 0 else 0.0


def _generic(row: dict[str, Any]) -> float:
    """A phase this module does not know by name: its own counters, whichever move."""
    for counter in (BLOCKS, TUPLES, SCANNED):
        if row.get(counter[1]):
            return _fraction(row, counter)
    return 0.0


def position(bands: Sequence[Band], row: dict[str, Any]) -> float | None:
    """Where a progress row stands in the whole command (0..1); None for a phase that is in
    none of the bands (the bar then stays where it is)."""
    phase = str(row.get("phase") or "")
    for band in bands:
        if band.phase == phase:
            if phase in SCAN_PAUSES and _fraction(row, SCANNED) < 1.0 and bands is VACUUM:
                scan: Band = next(b for b in bands if b.counter == SCANNED)
                return scan.start + (scan.end - scan.start) * _fraction(row, SCANNED)
            return band.start + (band.end - band.start) * _fraction(row, band.counter)
    # a step the bands do not name ("building index: initializing", another access method's
    # "building index"): the share of all the steps it belongs to
    family = [b for b in bands if _step_of(b.phase) == _step_of(phase)]
    if not family:
        return None
    start, end = family[0].start, family[-1].end
    return start + (end - start) * _generic(row)


def _step_of(phase: str) -> str:
    return phase.split(":", maxsplit=1)[0]


class Overall:
    """One percentage for a whole command from the rows of its progress view: it moves with
    the phases and never goes back (a VACUUM's TOAST table starts its phases again)."""

    def __init__(self, query: str) -> None:
        self.query = query
        self.fraction = 0.0
        self.phase = "starting"

    def update(self, row: dict[str, Any]) -> None:
        at = position(bands_for(self.query, row), row)
        if at is not None:
            self.fraction = max(self.fraction, at)
        self.phase = str(row.get("phase") or self.phase)


def bar(console: Console) -> Progress:
    """The progress display: the label on a line of its own (folded if longer than the
    line), then a bar of BAR_WIDTH, the overall percentage, the time and the phase (which
    wraps in a narrow terminal; the bar, the percentage and the time keep their widths)."""
    from rich.console import RenderableType
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
    from rich.table import Column
    from rich.text import Text

    class LabelAbove(Progress):
        def get_renderables(self) -> Iterable[RenderableType]:
            for task in self.tasks:
                yield Text(task.description, overflow="fold")
                yield self.make_tasks_table([task])

    return LabelAbove(
        BarColumn(bar_width=BAR_WIDTH, table_column=Column(width=BAR_WIDTH, no_wrap=True)),
        TextColumn("{task.percentage:>5.1f}%", table_column=Column(width=6, no_wrap=True)),
        TimeElapsedColumn(table_column=Column(width=7, no_wrap=True)),
        TextColumn(
            "{task.fields[phase]}",
            style="dim",
            markup=False,
            table_column=Column(overflow="fold"),
        ),
        console=console,
        transient=True,
    )


def weights(
    session: Session, relations: Sequence[int | None], watched: Sequence[bool]
) -> list[float]:
    """The weights of a command's steps on its bar: 0 for a step without a bar of its own
    (`watched` False), else the size of the relation it reads as the catalog estimates it; a
    step whose size is unknown (or 0: never vacuumed or analyzed) weighs as the average of the
    others, or 1."""
    oids = [oid for oid, w in zip(relations, watched, strict=True) if w and oid is not None]
    pages = {
        int(r["oid"]): float(r["pages"])
        for r in (session.all("catalog/relation_pages", {"oids": oids}) if oids else [])
        if r["pages"] and r["pages"] > 0
    }
    known = [pages[oid] for oid in oids if oid in pages]
    usual = sum(known) / len(known) if known else 1.0
    return [
        (pages.get(oid, usual) if oid is not None else usual) if w else 0.0
        for oid, w in zip(relations, watched, strict=True)
    ]


class Span:
    """One bar for the steps of a command, shown from the first step watched to the end of the
    block: step i has the share of the whole its weight gives it (weights of any scale), the
    bar moves within it and never goes back, and a step that ends leaves the bar at the end of
    its share."""

    def __init__(self, console: Console, weights: Sequence[float]) -> None:
        total = sum(weights)
        shares = [w / total for w in weights] if total > 0 else [1 / len(weights)] * len(weights)
        self.bounds: list[tuple[float, float]] = []
        at = 0.0
        for share in shares:
            self.bounds.append((at, min(at + share, 1.0)))
            at += share
        self.console = console
        self.fraction = 0.0  # of the whole command
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> Span:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _show(self, label: str, phase: str) -> None:
        if self._progress is None:
            self._progress = bar(self.console)
            self._progress.start()
            self._task = self._progress.add_task(label, total=100.0, phase=phase)
        assert self._task is not None
        self._progress.update(
            self._task, description=label, completed=self.fraction * 100, phase=phase
        )

    def _move(self, at: float, phase: str, label: str) -> None:
        self.fraction = max(self.fraction, at)
        self._show(label, phase)

    @contextmanager
    def step(self, index: int, label: str) -> Iterator[Callable[[float, str], None]]:
        """Step `index` runs in the block: yields move(fraction of the step, phase)."""
        start, end = self.bounds[index]
        if len(self.bounds) > 1:
            label = f"{label} (step {index + 1} of {len(self.bounds)})"
        self._move(start, "starting", label)

        def move(fraction: float, phase: str) -> None:
            self._move(start + (end - start) * fraction, phase, label)

        try:
            yield move
        finally:
            self._move(end, "done", label)


@contextmanager
def watch(
    session: Session,
    query: str | None,
    label: str,
    console: Console | None,
    span: Span | None = None,
    index: int = 0,
) -> Iterator[None]:
    """Show a bar for `query` (params: pid) about session's backend until the block ends: as
    step `index` of `span`, or on a bar of its own (`console`; None: no bar). A step without a
    query names itself on the span's bar, which stays where it is."""
    if span is None:
        if console is None or query is None:
            yield
            return
        with Span(console, [1.0]) as own, watch(session, query, label, console, own):
            yield
        return
    with span.step(index, label) as move:
        if query is None:
            yield
            return
        pid = session.pid
        text = session.statement(query)
        overall = Overall(query)

        def tick(cur: psycopg.Cursor[dict[str, Any]]) -> None:
            row = cur.execute(text, {"pid": pid}).fetchone()
            if row is not None:
                overall.update(row)
                move(overall.fraction, overall.phase)

        with polling(session, "epstats-progress", 0.5, tick):
            yield
