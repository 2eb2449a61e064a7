"""The judges of the raw rows: when they are dated and when they arrive: `future_rows` (rows
dated ahead of the server's clock), `late_rows` (rows that arrived later than view.lookback,
as the verify task found them) and `ingest_stalled` (no new row: an API that stopped
logging); and what they name: `endpoint_cardinality` (distinct endpoints per day, each a row
of the rollup); and how fast they were served: `latency_p95` (each endpoint's p95 over
check.latency_window, judged by the first check.latency_p95 rule it matches). Pure, like
judges.py, beside which they sit to keep it short."""

from __future__ import annotations

import datetime as dt
import math

from epstats_cli.cardinality import Cardinality
from epstats_cli.config import Levels
from epstats_cli.durations import format_duration, human_seconds
from epstats_cli.health.facts import LateRowsFacts
from epstats_cli.health.judges import CheckResult, State, Thresholds, level
from epstats_cli.health.latency_facts import LatencyFacts, like
from epstats_cli.health.result import Perf
from epstats_cli.health.server_facts import IngestFacts
from epstats_cli.source import FutureRows


def _when(instant: dt.datetime) -> str:
    return instant.isoformat(sep=" ", timespec="seconds")


def future_rows(rows: FutureRows, t: Thresholds, now: dt.datetime) -> CheckResult:
    """How far ahead of the server's now() the newest row is dated (clock skew, bad data)."""
    levels = t.check.future_rows
    warn, crit = levels.warning.total_seconds(), levels.critical.total_seconds()
    if rows.count == 0 or rows.latest is None:
        return CheckResult(
            "future_rows",
            State.OK,
            "no row is dated after the server's clock",
            0,
            warn,
            crit,
            unit="seconds",
        )
    ahead = max(0.0, rows.ahead_seconds or 0.0)
    plural = "row is" if rows.count == 1 else "rows are"
    return CheckResult(
        "future_rows",
        level(ahead, Levels(warn, crit)),
        f"{rows.count:,} {plural} dated in the future, up to {_when(rows.latest)} "
        f"({human_seconds(ahead)} ahead of the server's clock: no report counts them yet)",
        round(ahead),
        warn,
        crit,
        unit="seconds",
    )


def late_rows(facts: LateRowsFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """What the verify runs of the last check.late_rows found: CRITICAL when the latest could
    not repair a day that differs, WARNING when any found rows later than view.lookback."""
    window = format_duration(t.check.late_rows)
    lookback = format_duration(facts.lookback)
    if not facts.available:
        return CheckResult("late_rows", State.UNKNOWN, "no run history (run epstats init)")
    runs = facts.runs
    late = [r for r in runs if r.late_rows]
    total = sum(r.late_rows for r in late)
    if runs and runs[0].unrepaired:
        return CheckResult(
            "late_rows",
            State.CRITICAL,
            f"the verify run of {_when(runs[0].started_at)} found days where the rollup "
            "differs from the raw rows and could not repair them (see epstats.runs; the next "
            "verify retries, or: epstats maintain --force verify)",
            total,
            1,
            None,
        )
    if late:
        plural = "row" if total == 1 else "rows"
        return CheckResult(
            "late_rows",
            State.WARNING,
            f"{total:,} {plural} arrived up to {late[0].late_by} late (found by verify at "
            f"{_when(late[0].started_at)}): the rollup is repaired, but view.lookback "
            f"{lookback} is too short for this API",
            total,
            1,
            None,
        )
    said = (
        f"no rows later than view.lookback {lookback} found by verify in the last {window}"
        if runs
        else f"no verify run in the last {window}"
    )
    return CheckResult("late_rows", State.OK, said, 0, 1, None)


def ingest_stalled(facts: IngestFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Age of the newest row dated up to now (rows dated in the future do not count). The facts
    look back only as far as the largest level, so no row there is at least that old. A level
    of 0 is off; both 0 turn the check off."""
    levels = t.check.ingest_stalled
    warn, crit = levels.warning.total_seconds(), levels.critical.total_seconds()
    w, c = (warn or None), (crit or None)
    if not facts.window:
        return CheckResult("ingest_stalled", State.OK, "off (check.ingest_stalled is 0)")
    if facts.newest is None:
        age = facts.window.total_seconds()
        window = format_duration(facts.window)
        text = (
            f"no row in the last {window} (it looks no further back: the age is at least "
            f"{window}): has the API stopped logging?"
        )
    else:
        measured = facts.age_seconds  # by the server's clock; from `now` for facts without it
        if measured is None:
            measured = (now - facts.newest).total_seconds()
        age = max(0.0, measured)
        text = f"newest row dated {_when(facts.newest)} ({human_seconds(age)} ago)"
    state = State.OK
    if c is not None and age >= c:
        state = State.CRITICAL
    elif w is not None and age >= w:
        state = State.WARNING
    if state != State.OK and facts.newest is not None:
        text += ": has the API stopped logging?"
    return CheckResult("ingest_stalled", state, text, round(age), w, c, unit="seconds")


def endpoint_cardinality(facts: Cardinality, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Distinct endpoints per day (normalized ones when normalization is on): each is a row of
    the rollup every day, and past check.endpoint_cardinality it saves little. Not OK, it
    says how to normalize them."""
    levels = t.check.endpoint_cardinality
    count = facts.endpoints
    what = f"endpoints normalized ({facts.normalization})" if facts.normalized else "endpoints"
    text = f"{count:,} distinct {what} per day ({facts.how()})"
    if facts.normalized and facts.raw is not None:
        text += f"; {facts.raw:,} as stored"
    state = level(count, levels)
    if state != State.OK:
        shapes = "epstats endpoints shows their shapes"
        if facts.normalized:
            text += (
                f": the rollup gets a row for each, every day; add source.endpoint_rules for "
                f"what endpoint_ids cannot guess ({shapes}), then epstats view build --replace"
            )
        else:
            text += (
                ": the rollup gets a row for each, every day; if they are paths with ids, "
                "normalize them: source.endpoint_ids: auto (and source.endpoint_rules for "
                f"what it cannot guess; {shapes}), then epstats view build --replace"
            )
    return CheckResult("endpoint_cardinality", state, text, count, levels.warning, levels.critical)


# Endpoints named in latency_p95's line, worst first (the rest are counted; the perfdata has
# every one past its level).
LATENCY_SHOWN = 5


def _ms(value: float) -> str:
    """Milliseconds as the message says them: 2,500 or 950, and 3.5 or 0.001 below 10."""
    return f"{value:,.0f}" if value >= 10 else f"{value:.3g}"


def latency_p95(facts: LatencyFacts, t: Thresholds, now: dt.datetime) -> CheckResult:
    """Each endpoint's p95 over check.latency_window against the first check.latency_p95 rule
    it matches (SQL LIKE): the worst decides; its value and thresholds are the check's
    (seconds, as OpenMetrics wants them), and every endpoint not OK is named with its p95."""
    window = format_duration(facts.window)
    judged: list[tuple[State, float, float, str, Levels]] = []
    for e in facts.endpoints:
        if e.p95_ms is None:
            continue
        rule = next((r for r in t.check.latency_p95 if like(r.endpoint, e.endpoint)), None)
        if rule is None:
            continue
        levels = Levels(rule.warning, rule.critical)
        # a NaN p95 (bad data: NaN response times, which sort above every number) is judged
        # as the infinite one it stands beside, never as within the thresholds
        p95 = math.inf if math.isnan(e.p95_ms) else e.p95_ms
        state = level(p95, levels)
        # the worst: the highest state, then the furthest past (or closest to) its threshold
        edge = levels.critical if state == State.CRITICAL else levels.warning or levels.critical
        judged.append((state, p95 / edge if edge else 0.0, p95, e.endpoint, levels))
    if not judged:
        patterns = ", ".join(r.endpoint for r in t.check.latency_p95)
        text = f"no endpoint like {patterns} had a response time in the last {window}"
        return CheckResult("latency_p95", State.OK, text, details=list(facts.notes))
    judged.sort(key=lambda j: (j[0], j[1]), reverse=True)
    state, _ratio, worst_ms, _worst, levels = judged[0]
    bad = [j for j in judged if j[0] != State.OK]

    def said(j: tuple[State, float, float, str, Levels]) -> str:
        edge = j[4].critical if j[0] == State.CRITICAL else j[4].warning
        kind = j[0].name.lower() if j[0] != State.OK else "warning"
        return f"{j[3]} {_ms(j[2])} ms ({kind} from {_ms(edge or j[4].critical)})"

    if bad:
        text = f"p95 over the last {window}: " + ", ".join(said(j) for j in bad[:LATENCY_SHOWN])
        if len(bad) > LATENCY_SHOWN:
            text += f" and {len(bad) - LATENCY_SHOWN} more"
        text += f"; {len(judged) - len(bad)} of {len(judged)} endpoints within their thresholds"
    else:
        text = (
            f"p95 over the last {window}: {len(judged)} endpoint(s) within their thresholds "
            f"(nearest: {said(judged[0])})"
        )
    extra = [
        Perf(
            "latency_p95_endpoint",
            j[2] / 1000,
            j[4].warning / 1000,
            j[4].critical / 1000,
            "seconds",
            (("endpoint", j[3]),),
        )
        for j in bad
    ]
    return CheckResult(
        "latency_p95",
        state,
        text,
        worst_ms / 1000,
        levels.warning / 1000,
        levels.critical / 1000,
        details=list(facts.notes),
        unit="seconds",
        extra=extra,
    )
