"""What maintenance is due: pure logic over the run history, the schedule, measured need and
the clock, all passed in, so it is tested without a database."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from epstats_cli.config import TASKS, MaintenanceConfig
from epstats_cli.durations import human_seconds

# verify last: it compares the rollup the refresh just brought up to date, with what is left
# of max_runtime (it stops itself, see SELF_LIMITED)
# partitions early: an INSERT past the last partition lands in the DEFAULT one; retention after
# the refresh (it retires only settled days) and before verify (which then checks only the days
# after the retention horizon)
ORDER = (
    "cleanup",
    "partitions",
    "vacuum",
    "analyze",
    "reindex",
    "refresh",
    "retention",
    "verify",
)
# Tasks that stop themselves when max_runtime is used up: they start whenever time is left,
# whatever their past runs took.
SELF_LIMITED = frozenset({"verify", "retention"})
assert set(ORDER) == set(TASKS)


@dataclass(frozen=True)
class Modified:
    """Rows of one relation (a partitioned table's partitions summed) inserted, updated or
    deleted since its last ANALYZE (`n_mod_since_analyze`), against its rows
    (`reltuples`, or `n_live_tup` before the first VACUUM or ANALYZE counted them)."""

    target: str
    modified: int
    rows: int

    def passes(self, ratio: float) -> bool:
        """Whether the changes reach `ratio` of the rows (0: never)."""
        return ratio > 0 and self.modified > 0 and self.modified >= ratio * self.rows

    def said(self, ratio: float) -> str:
        """Why ANALYZE is due for it, in words."""
        share = (
            f"{self.modified / self.rows:.1%} of its {self.rows:,} rows"
            if self.rows
            else ("it had no rows")
        )
        return (
            f"{self.target}: {self.modified:,} rows changed since its last analyze "
            f"({share}), past analyze_modified_ratio {ratio:.0%}"
        )


@dataclass(frozen=True)
class Need:
    """Measurements that can make a task due before its schedule says so."""

    dead_tuples: int = 0
    live_tuples: int = 0
    xid_age: int = 0
    freeze_max_age: int = 200_000_000
    last_vacuum: dt.datetime | None = None  # from pg_stat (manual or autovacuum)
    last_analyze: dt.datetime | None = None
    # what interrupted work left (invalid indices, a half-done rollup replacement): cleanup now
    leftovers: tuple[str, ...] = ()
    # invalid indices a build is still running on (named with it): not leftovers, but said
    building: tuple[str, ...] = ()
    # rows changed since the last ANALYZE, per maintained relation (the source, the rollup)
    modified: tuple[Modified, ...] = ()
    # when an early stage of `analyze --in-stages` last left the source table's statistics at
    # a low target (history.partial_analyze): the ANALYZE pg_stat shows then is no full one
    partial_analyze: dt.datetime | None = None

    @property
    def dead_ratio(self) -> float:
        total = self.dead_tuples + self.live_tuples
        return self.dead_tuples / total if total else 0.0

    def changed(self, ratio: float) -> list[Modified]:
        """The relations whose rows changed since their last ANALYZE by `ratio` or more."""
        return [m for m in self.modified if m.passes(ratio)]


@dataclass(frozen=True)
class Decision:
    task: str
    due: bool
    reason: str
    last_run: dt.datetime | None
    next_due: dt.datetime | None
    freeze: bool = False
    # analyze due by analyze_modified_ratio: only these relations (label, why each); empty:
    # every one
    targets: tuple[tuple[str, str], ...] = ()


def parse_tasks(text: str | None) -> set[str]:
    """`vacuum,analyze` -> {"vacuum", "analyze"}; ValueError naming an unknown task."""
    if not text:
        return set()
    tasks = {t.strip() for t in text.split(",") if t.strip()}
    unknown = tasks - set(TASKS)
    if unknown:
        raise ValueError(f"unknown task {', '.join(sorted(unknown))} (tasks: {', '.join(ORDER)})")
    return tasks


def latest(*stamps: dt.datetime | None) -> dt.datetime | None:
    """The most recent of some optional timestamps."""
    present = [s for s in stamps if s is not None]
    return max(present) if present else None


def due_tasks(
    last_ok: Mapping[str, dt.datetime],
    config: MaintenanceConfig,
    now: dt.datetime,
    need: Need,
    *,
    only: Iterable[str] = (),
    skip: Iterable[str] = (),
    force: Iterable[str] = (),
    off: Mapping[str, str] | None = None,
) -> list[Decision]:
    """One Decision per task, in the order maintain runs them; a task in `off` (why: a task
    with nothing configured to do, such as retention without source.retention) is never due
    unless forced."""
    only, skip, force = set(only), set(skip), set(force)
    off = off or {}
    decisions = []
    for task in ORDER:
        every = getattr(config.schedule, task)
        last = last_ok.get(task)
        if task == "vacuum":
            last = latest(last, need.last_vacuum)
        elif task == "refresh":
            # `view build` and the swap of `view build --replace` leave the rollup fresh
            last = latest(last, last_ok.get("build"), last_ok.get("swap"))
        elif task == "analyze":
            # VACUUM (ANALYZE) and autovacuum's analyze count as an analyze; an early stage of
            # `analyze --in-stages` does not (only its final stage, recorded as the analyze)
            stats = need.last_analyze
            if stats is not None and need.partial_analyze and stats <= need.partial_analyze:
                stats = None
            last = latest(last, last_ok.get("vacuum"), stats)
        next_due = last + every if last else None
        freeze = (
            task == "vacuum"
            and need.freeze_max_age > 0
            and need.xid_age >= config.freeze_age_ratio * need.freeze_max_age
        )
        if (only and task not in only) or task in skip:
            decisions.append(Decision(task, False, "not selected", last, next_due))
            continue
        if task in force:
            decisions.append(Decision(task, True, "forced", last, next_due, freeze))
        elif task in off:
            decisions.append(Decision(task, False, off[task], last, next_due))
        elif freeze:
            decisions.append(
                Decision(
                    task,
                    True,
                    f"transaction ID age {need.xid_age:,} is at least "
                    f"{config.freeze_age_ratio:.0%} of autovacuum_freeze_max_age "
                    f"{need.freeze_max_age:,}: VACUUM FREEZE",
                    last,
                    next_due,
                    True,
                )
            )
        elif task == "cleanup" and need.leftovers:
            shown = ", ".join(need.leftovers[:3]) + (" ..." if len(need.leftovers) > 3 else "")
            why = f"{len(need.leftovers)} leftover(s) of interrupted work: {shown}"
            decisions.append(Decision(task, True, why, last, next_due))
        elif task == "vacuum" and need.dead_ratio >= config.dead_tuple_ratio > 0:
            decisions.append(
                Decision(
                    task,
                    True,
                    f"dead tuples {need.dead_ratio:.1%} passed dead_tuple_ratio "
                    f"{config.dead_tuple_ratio:.0%}",
                    last,
                    next_due,
                )
            )
        elif task == "analyze" and (changed := need.changed(config.analyze_modified_ratio)):
            said = tuple((m.target, m.said(config.analyze_modified_ratio)) for m in changed)
            why = "; ".join(w for _t, w in said)
            if last is None or now >= last + every:  # due by the schedule too: every one
                said = ()
            decisions.append(Decision(task, True, why, last, next_due, targets=said))
        elif (
            task == "analyze"
            and need.partial_analyze
            and (last is None or need.partial_analyze > last)
        ):
            why = (
                "an `analyze --in-stages` did not finish: the statistics are left at an early "
                "stage's low target"
            )
            decisions.append(Decision(task, True, why, last, next_due))
        elif last is None:
            decisions.append(Decision(task, True, "never run", None, None))
        elif now >= last + every:
            decisions.append(
                Decision(
                    task,
                    True,
                    f"last run {human_seconds((now - last).total_seconds())} ago "
                    f"(every {human_seconds(every.total_seconds())})",
                    last,
                    next_due,
                )
            )
        else:
            why = f"next due in {human_seconds((last + every - now).total_seconds())}"
            if task == "cleanup" and need.building:
                why += f"; invalid while a build still runs on it: {', '.join(need.building)}"
            decisions.append(Decision(task, False, why, last, next_due))
    return decisions


def fits(estimate: float | None, elapsed: float, max_runtime: float) -> bool:
    """Whether a task whose past runs took `estimate` seconds fits in what is left."""
    if elapsed >= max_runtime:
        return False
    return estimate is None or elapsed + estimate <= max_runtime
