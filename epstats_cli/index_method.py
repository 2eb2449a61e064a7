"""The timestamp index's method chosen by measurement (`indexes.*.method: auto`): BRIN where
the heap's block ranges are ordered in time well enough, btree otherwise.

`pg_stats.correlation` does not predict it: with 10 % of the rows up to a day late it still
reads 0.9998 while every BRIN range spans a day. So the measurement reads the heap itself, at a
bounded cost: `PROBE_RANGES` block ranges of `PROBE_PAGES` pages spread over the table, every
`PROBE_STEP`th page of each (at most 1,024 blocks, 8 MB, whatever the table's size; on
PostgreSQL 14+ each block is read once, by a TID range scan). Of each sampled range it keeps
the timestamps, and `choose` (pure) works out, for ranges of 16..128 pages and the minmax and
minmax-multi operator classes, how many heap blocks a BRIN would read for a one-hour and a
one-day window anywhere, and for the newest hour (the ranges its rows fill, and every older
range where a row of it is a stray: rows put into the free space VACUUM recorded in old
pages), against what a btree would read for the rows those windows hold. BRIN wins where it
reads at most `MAX_RATIO` times the btree's blocks for every window; of those, the one that
reads the fewest blocks (its own pages counted).
"""

from __future__ import annotations

import heapq
import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import psycopg

from epstats_cli.db import Session
from epstats_cli.durations import format_duration

PROBE_RANGES = 32
PROBE_PAGES = 128
PROBE_STEP = 4
PAGES_PER_RANGE = (128, 64, 32, 16)
WINDOWS = (("1h", 3600.0), ("1d", 86400.0), ("newest 1h", 3600.0))
NEWEST = "newest 1h"  # the hour the tool reads most (ingest_stalled, today's reports)
MAX_RATIO = 2.0
# Below this many heap pages (8 MB) both indices are small and cheap: a btree, which fits any
# order of the rows (`indexes status` says when the table has grown into a BRIN).
MIN_PAGES = 1024
BTREE_ENTRIES_PER_PAGE = 367  # a timestamp btree's leaf at fillfactor 90
BRIN_MINMAX_PER_PAGE = 290  # a minmax tuple of two 8-byte values and its line pointer
BRIN_REVMAP_PER_PAGE = 1360
HOUR = 3600.0
VALUES_PER_RANGE = 32  # minmax-multi's default: a point costs one value, an interval two
PAGE = 8192


@dataclass(frozen=True)
class Sample:
    """What the measurement read: the table's size and the sampled blocks' timestamps."""

    pages: int
    rows: float  # pg_class.reltuples (negative: never analyzed)
    blocks_read: int
    values: Mapping[int, Sequence[float]]  # block -> its rows' timestamps (epoch seconds)


@dataclass(frozen=True)
class Option:
    """One way to index the timestamp, with what it would read and weigh."""

    method: str
    opclass: str | None  # None: the default operator class
    pages_per_range: int | None
    reads: Mapping[str, float]  # window label -> heap and index blocks read
    size_bytes: int

    def fits(self, btree: Option) -> bool:
        return all(self.reads[w] <= MAX_RATIO * btree.reads[w] for w, _ in WINDOWS)

    def describe(self) -> str:
        if self.method == "btree":
            return "btree"
        kind = "minmax-multi" if self.opclass and "multi" in self.opclass else "minmax"
        return f"brin {kind}, pages_per_range {self.pages_per_range}"


@dataclass(frozen=True)
class Choice:
    """The method `apply` builds, why, and the measurement behind it."""

    method: str
    reason: str
    opclass: str | None = None
    pages_per_range: int | None = None
    btree_bytes: int | None = None
    brin_bytes: int | None = None
    measurement: dict[str, Any] = field(default_factory=dict)
    measured: bool = True  # False: chosen by default, the measurement could not run

    @property
    def bytes(self) -> int | None:
        return self.brin_bytes if self.method == "brin" else self.btree_bytes


# --- pure ----------------------------------------------------------------------------------


def probe_blocks(pages: int) -> list[int]:
    """The heap blocks the measurement reads: every PROBE_STEP-th page of PROBE_RANGES ranges
    of PROBE_PAGES pages spread evenly over the table (aligned, as BRIN's ranges are)."""
    ranges = max(1, math.ceil(pages / PROBE_PAGES))
    n = min(ranges, PROBE_RANGES)
    # the first and the last range among them: the sample spans the table's time
    picked = sorted({(k * (ranges - 1)) // max(1, n - 1) for k in range(n)})
    return [
        r * PROBE_PAGES + p
        for r in picked
        for p in range(0, PROBE_PAGES, PROBE_STEP)
        if r * PROBE_PAGES + p < pages
    ]


def _groups(values: Sequence[float], multi: bool) -> list[tuple[float, float]]:
    """The intervals a range's summary keeps: its min and max, or (minmax-multi) as many
    points and intervals as VALUES_PER_RANGE holds, split at the widest gaps."""
    vals = sorted(values)
    if not multi or len(vals) < 2:
        return [(vals[0], vals[-1])]
    gaps = heapq.nlargest(
        VALUES_PER_RANGE - 1, range(1, len(vals)), key=lambda i: vals[i] - vals[i - 1]
    )
    for count in range(VALUES_PER_RANGE, 0, -1):
        cuts = sorted(gaps[: count - 1])
        bounds = [0, *cuts, len(vals)]
        groups = [(vals[a], vals[b - 1]) for a, b in itertools.pairwise(bounds)]
        cost = sum(1 if lo == hi else 2 for lo, hi in groups)
        if cost <= VALUES_PER_RANGE:
            return groups
    return [(vals[0], vals[-1])]


def _hit(groups: list[tuple[float, float]], window: float, t0: float, t1: float) -> float:
    """The share of windows [a, a + window), a anywhere in the table's span, that touch the
    range: the measure of the union of (lo - window, hi) within [t0, t1 - window]."""
    last = t1 - window
    if last <= t0:
        return 1.0
    covered = 0.0
    edge = t0
    for lo, hi in sorted(groups):
        a, b = max(lo - window, edge), min(hi, last)
        if b > a:
            covered += b - a
            edge = b
    return min(1.0, covered / (last - t0))


def _ranges(sample: Sample, size: int) -> list[list[float]]:
    """The sampled ranges of `size` pages (those holding a row), in block order."""
    out: dict[int, list[float]] = {}
    for block, vals in sample.values.items():
        if vals:
            out.setdefault(block // size, []).extend(vals)
    return [out[k] for k in sorted(out)]


def _newest(
    ranges: list[list[float]],
    summaries: list[list[tuple[float, float]]],
    size: int,
    hour_pages: float,
    pages: int,
    t1: float,
) -> float:
    """The heap blocks a BRIN reads for the newest hour: the ranges its rows fill, written
    together wherever they went (the end of the heap, or the free space a retention by DELETE
    left), and every range where a row of it is a stray among older rows (single rows put into
    free space VACUUM recorded in old pages), those counted over the whole table from the
    sample. A range mostly of the newest hour's rows is part of the first, never a stray: the
    sample would count each of those it happens to hold once for every unsampled part of the
    table."""
    cut = t1 - HOUR
    filled = hour_pages + size  # a range more, on average, where the hour starts mid-range
    stray = sum(
        1
        for vals, s in zip(ranges, summaries, strict=True)
        if max(hi for _, hi in s) > cut and 2 * sum(1 for v in vals if v > cut) < len(vals)
    )
    return min(float(pages), filled + stray / max(1, len(summaries)) * pages)


def _brin_pages(ranges: int, per_page: float) -> int:
    return 1 + math.ceil(ranges / BRIN_REVMAP_PER_PAGE) + math.ceil(ranges / per_page)


def options(
    sample: Sample, multi_opclass: str | None
) -> tuple[Option, list[Option], dict[str, Any]]:
    """The btree, every BRIN candidate, and the facts of the measurement. Minmax-multi is
    weighed only when no minmax fits (it is bigger, and there for tables with late rows)."""
    all_values = [v for vals in sample.values.values() for v in vals]
    rows_per_page = len(all_values) / max(1, sample.blocks_read)
    rows = sample.rows if sample.rows > 0 else rows_per_page * sample.pages
    t0, t1 = min(all_values), max(all_values)
    span = max(t1 - t0, 1.0)
    btree_reads = {}
    for label, width in WINDOWS:
        held = rows * min(1.0, width / span)  # the newest hour holds an hour's rows too
        btree_reads[label] = held / max(rows_per_page, 1.0) + held / BTREE_ENTRIES_PER_PAGE + 3
    hour_pages = rows * min(1.0, HOUR / span) / max(rows_per_page, 1.0)
    btree = Option(
        "btree", None, None, btree_reads, int(math.ceil(rows / BTREE_ENTRIES_PER_PAGE) + 2) * PAGE
    )
    candidates: list[Option] = []
    for multi in (False, True) if multi_opclass else (False,):
        if multi and any(c.fits(btree) for c in candidates):
            break
        for size in PAGES_PER_RANGE:
            ranges = _ranges(sample, size)
            summaries = [_groups(r, multi) for r in ranges]
            count = math.ceil(sample.pages / size)
            if multi:
                values = sum(sum(1 if a == b else 2 for a, b in s) for s in summaries)
                per_range = 40 + 8 * values / max(1, len(summaries))
                pages = _brin_pages(count, (PAGE - 40) / (per_range + 4))
            else:
                pages = _brin_pages(count, BRIN_MINMAX_PER_PAGE)
            reads = {}
            for label, width in WINDOWS[:2]:
                share = sum(_hit(s, width, t0, t1) for s in summaries) / max(1, len(summaries))
                reads[label] = share * sample.pages + pages
            reads[NEWEST] = _newest(ranges, summaries, size, hour_pages, sample.pages, t1) + pages
            opclass = multi_opclass if multi else None
            candidates.append(Option("brin", opclass, size, reads, pages * PAGE))
    facts = {
        "pages": sample.pages,
        "blocks_sampled": sample.blocks_read,
        "rows_per_page": round(rows_per_page, 1),
        "span_hours": round(span / 3600, 1),
    }
    return btree, candidates, facts


def choose(sample: Sample | None, multi_opclass: str | None, why_not: str = "") -> Choice:
    """BRIN (the smallest that fits) or btree, from the measurement. No sample (a small,
    empty or partitioned table, or a type without a BRIN operator class): btree."""
    if sample is None or not any(sample.values.values()):
        return Choice("btree", why_not or "no rows to measure: btree fits any order")
    btree, candidates, facts = options(sample, multi_opclass)
    fitting = sorted(
        (c for c in candidates if c.fits(btree)),
        # the fewest blocks read (the index's own pages counted: a smaller pages_per_range
        # reads less heap but more index), then the smallest
        key=lambda c: (round(c.reads["1h"] + c.reads["1d"] / 24), c.size_bytes),
    )
    best = (
        fitting[0] if fitting else min(candidates, key=lambda c: c.reads["1h"] / btree.reads["1h"])
    )
    facts["windows"] = {
        label: {"btree_blocks": round(btree.reads[label]), "brin_blocks": round(best.reads[label])}
        for label, _ in WINDOWS
    }
    facts["brin"] = best.describe()
    ratios = ", ".join(
        f"{label} {best.reads[label] / btree.reads[label]:.1f}x" for label, _ in WINDOWS
    )
    if fitting:
        return Choice(
            "brin",
            f"heap in time order: {best.describe()} reads {ratios} a btree's blocks",
            best.opclass,
            best.pages_per_range,
            btree.size_bytes,
            best.size_bytes,
            facts,
        )
    out_of_order = any(best.reads[w] > MAX_RATIO * btree.reads[w] for w in ("1h", "1d"))
    what = (
        "rows out of time order"
        if out_of_order
        else "rows of the newest hour scattered over older block ranges"
    )
    return Choice(
        "btree",
        f"{what}: the best BRIN ({best.describe()}) would read {ratios} "
        f"a btree's blocks (more than {MAX_RATIO:g}x)",
        btree_bytes=btree.size_bytes,
        brin_bytes=best.size_bytes,
        measurement=facts,
    )


# --- the measurement -----------------------------------------------------------------------


def cancelled(timeout: str) -> Choice:
    """The choice when statement_timeout cancelled the measurement: btree, which fits any
    order of the rows (`kept`: an existing index of either method stays)."""
    why = f"the measurement was cancelled by statement_timeout ({timeout}; raise it to measure)"
    return Choice(
        "btree",
        f"{why}: btree by default, which fits any order",
        measurement={"cancelled": why},
        measured=False,
    )


def kept(choice: Choice, method: str) -> Choice:
    """An unmeasured choice where an index of `method` exists: it is kept as it is."""
    why = choice.measurement.get("cancelled", choice.reason)
    return replace(choice, method=method, reason=f"{why}: the existing {method} index is kept")


def measure(session: Session, oid: int, column: str) -> Choice:
    """Sample the table's block ranges (at most PROBE_RANGES x PROBE_PAGES / PROBE_STEP blocks)
    and choose (statement_timeout cancelling the sample: `cancelled`)."""
    table = session.one("indexes/heap_pages", {"oid": oid})
    assert table is not None
    opclasses = session.all("indexes/brin_opclasses", {"oid": oid, "column": column})
    multi = next((o["name"] for o in opclasses if o["name"].endswith("_minmax_multi_ops")), None)
    if table["relkind"] == "p":
        return Choice("btree", "a partitioned table: measured only on plain tables")
    if not opclasses:
        return Choice("btree", "the column's type has no BRIN operator class")
    pages = int(table["pages"])
    if pages < MIN_PAGES:
        return Choice(
            "btree",
            f"a small table ({pages} pages): btree fits any order; BRIN pays from "
            f"{MIN_PAGES} pages (8 MB)",
        )
    blocks = probe_blocks(pages)
    values: dict[int, list[float]] = {b: [] for b in blocks}
    per_page = None  # the line pointers a block may hold: half as many again as the average
    if table["reltuples"] > 0 and table["relpages"] > 0:
        per_page = math.ceil(1.5 * table["reltuples"] / table["relpages"]) + 10
    try:
        rows = session.all(
            "indexes/sample_blocks",
            {"blocks": blocks, "per_page": per_page},
            table=(session.config.source.table.schema, session.config.source.table.name),
            timestamp=column,
        )
    except psycopg.errors.QueryCanceled:  # the measurement never stops a command
        limit = session.config.database.statement_timeout
        return cancelled(f"database.statement_timeout {format_duration(limit)}")
    for r in rows:
        values[int(r["block"])].append(float(r["ts"]))
    return choose(Sample(pages, float(table["reltuples"]), len(blocks), values), multi)
