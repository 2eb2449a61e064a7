"""A check's result and the rules that combine results: Nagios states, levels, severities,
the plugin's one line. Pure, like the judges that make the results."""

from __future__ import annotations

import decimal
import enum
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from epstats_cli.config import CheckConfig, Config, Levels, Schedule


class State(enum.IntEnum):
    """Nagios plugin states, which are also `check`'s exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


# The units a perfdata value can have (OpenMetrics' base units); "" is a plain count.
Unit = Literal["", "seconds", "bytes", "ratio"]


@dataclass(frozen=True)
class Perf:
    """One perfdata value: a Nagios label=value;warn;crit, and an OpenMetrics gauge (the label
    is its name, with `labels` as its labels)."""

    label: str
    value: float
    warning: float | None = None
    critical: float | None = None
    unit: Unit = ""
    labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        # a threshold of 0 is a level that is off (config): no threshold to show
        object.__setattr__(self, "warning", self.warning or None)
        object.__setattr__(self, "critical", self.critical or None)

    def nagios(self) -> str:
        """`label=value;warn;crit`; a labelled value is `label[a,b]`, quoted when it must be."""
        label = self.label
        if self.labels:
            label += "[" + ",".join(v for _k, v in self.labels) + "]"
        label = label.replace("'", "").replace("=", "")  # neither may appear in a label
        if re.search(r"\s", label):
            label = f"'{label}'"
        w = "" if self.warning is None else _num(self.warning)
        c = "" if self.critical is None else _num(self.critical)
        return f"{label}={_num(self.value)};{w};{c}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "value": self.value,
            "warning": self.warning,
            "critical": self.critical,
            "unit": self.unit,
            "labels": dict(self.labels),
        }


@dataclass
class CheckResult:
    name: str
    state: State
    summary: str
    value: float | None = None
    warning: float | None = None
    critical: float | None = None
    details: list[str] = field(default_factory=list)
    unit: Unit = ""  # of value, warning and critical
    extra: list[Perf] = field(default_factory=list)  # perfdata beyond the check's own value
    # said on the plugin's line even when the check is OK (what it could not see, and the fix)
    caveat: str = ""

    def __post_init__(self) -> None:
        # a threshold of 0 is a level that is off (config): no threshold to show
        self.warning = self.warning or None
        self.critical = self.critical or None

    @property
    def state_name(self) -> str:
        return self.state.name

    def perfs(self) -> list[Perf]:
        """Every perfdata value: the check's own (named after it) first, then the extra ones."""
        own = (
            []
            if self.value is None
            else [Perf(self.name, self.value, self.warning, self.critical, self.unit)]
        )
        return own + list(self.extra)

    def perfdata(self) -> str | None:
        perfs = self.perfs()
        return " ".join(p.nagios() for p in perfs) if perfs else None

    def as_dict(self) -> dict[str, Any]:
        perf = {} if self.value is None else {"value": self.value}
        perf.update(
            {
                k: v
                for k, v in (("warning", self.warning), ("critical", self.critical))
                if v is not None and self.value is not None
            }
        )
        return {
            "name": self.name,
            "state": self.state_name,
            "message": self.summary,
            "perfdata": perf,
            "summary": self.summary,
            "value": self.value,
            "warning": self.warning,
            "critical": self.critical,
            "details": self.details,
            "unit": self.unit,
            "extra_perfdata": [p.as_dict() for p in self.extra],
        }


@dataclass(frozen=True)
class Thresholds:
    """What the judges compare facts with: the check: section and the maintenance schedule
    (overdue levels are multiples of a task's interval)."""

    check: CheckConfig
    schedule: Schedule

    @classmethod
    def of(cls, config: Config) -> Thresholds:
        return cls(config.check, config.maintenance.schedule)


def _num(value: float) -> str:
    """Perfdata numbers: plain decimals, never exponents; a value too small for 4 decimals
    keeps its own digits (a threshold of 1 microsecond is not 0, which means "off"); a NaN or
    an infinity (bad data: an infinite response time) is `U`, the plugin guidelines' value
    that could not be determined."""
    if not math.isfinite(value):
        return "U"
    text = f"{value:.4f}".rstrip("0").rstrip(".")
    if value and text in ("0", "-0"):
        text = format(decimal.Decimal(repr(value)), "f")
    return text


def level(value: float, levels: Levels) -> State:
    """OK below warning, WARNING from warning, CRITICAL from critical; a level of 0 is off."""
    if levels.critical and value >= levels.critical:
        return State.CRITICAL
    if levels.warning and value >= levels.warning:
        return State.WARNING
    return State.OK


def severity(setting: str) -> State:
    """A configured severity (ok | warning | critical, validated by config) as a state."""
    return State[setting.upper()]


def overall(results: Iterable[CheckResult]) -> State:
    """The worst state; UNKNOWN only when nothing is worse than it (as Nagios plugins do)."""
    states = [r.state for r in results]
    for state in (State.CRITICAL, State.WARNING, State.UNKNOWN):
        if state in states:
            return state
    return State.OK


# How the line orders what is not OK: the states that set the overall state first (a WARNING
# or CRITICAL outranks an UNKNOWN, as in overall()).
SEVERITY = {State.CRITICAL: 0, State.WARNING: 1, State.UNKNOWN: 2, State.OK: 3}


def nagios_line(results: Sequence[CheckResult]) -> str:
    """`EPSTATS WARNING - name: summary; ... | perfdata`, led by the check(s) that set the
    state, then the caveats of checks that are OK."""
    state = overall(results)
    bad = [r for r in results if r.state != State.OK]
    text = "; ".join(f"{r.name}: {r.summary}" for r in sorted(bad, key=lambda r: SEVERITY[r.state]))
    if not bad:
        text = f"{len(results)} checks OK"
    # what an OK check could not see is said too: the line is all many monitors show
    text += "".join(f"; {r.name}: {r.caveat}" for r in results if r.caveat and r.state == State.OK)
    perf = " ".join(p for r in results if (p := r.perfdata()))
    return f"EPSTATS {state.name} - {text}" + (f" | {perf}" if perf else "")


def cannot_check(name: str, message: str) -> CheckResult:
    """A check whose facts could not be read."""
    return CheckResult(name, State.UNKNOWN, f"cannot check: {message}")
