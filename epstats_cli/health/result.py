"""A check's result and the rules that combine results: Nagios states, levels, severities,
the plugin's one line. Pure, like the judges that make the results."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from epstats_cli.config import CheckConfig, Config, Levels, Schedule


class State(enum.IntEnum):
    """Nagios plugin states, which are also `check`'s exit codes."""

    OK = 0
    WARNING = 1
    CRITICAL = 2
    UNKNOWN = 3


@dataclass
class CheckResult:
    name: str
    state: State
    summary: str
    value: float | None = None
    warning: float | None = None
    critical: float | None = None
    details: list[str] = field(default_factory=list)

    @property
    def state_name(self) -> str:
        return self.state.name

    def perfdata(self) -> str | None:
        if self.value is None:
            return None
        w = "" if self.warning is None else _num(self.warning)
        c = "" if self.critical is None else _num(self.critical)
        return f"{self.name}={_num(self.value)};{w};{c}"

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
    """Perfdata numbers: plain decimals, never exponents."""
    return f"{value:.4f}".rstrip("0").rstrip(".")


def level(value: float, levels: Levels) -> State:
    """OK below warning, WARNING from warning, CRITICAL from critical."""
    if value >= levels.critical:
        return State.CRITICAL
    if value >= levels.warning:
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


def nagios_line(results: Sequence[CheckResult]) -> str:
    """`EPSTATS WARNING - name: summary; ... | perfdata`."""
    state = overall(results)
    bad = [r for r in results if r.state != State.OK]
    text = "; ".join(f"{r.name}: {r.summary}" for r in sorted(bad, key=lambda r: -r.state))
    if not bad:
        text = f"{len(results)} checks OK"
    perf = " ".join(p for r in results if (p := r.perfdata()))
    return f"EPSTATS {state.name} - {text}" + (f" | {perf}" if perf else "")


def cannot_check(name: str, message: str) -> CheckResult:
    """A check whose facts could not be read."""
    return CheckResult(name, State.UNKNOWN, f"cannot check: {message}")
