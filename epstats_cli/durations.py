"""Durations as people write them in configuration: 500ms, 30s, 5m, 2h, 1d, 1w."""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
TOO_LONG = "is far too long"
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(value: object) -> timedelta:
    """Parse `500ms`, `30s`, `5m`, `2h`, `1d`, `1w` (or a bare 0) into a timedelta."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 500ms, 30s, 5m, 2h, 1d or 1w")
    if isinstance(value, int | float) and value == 0:
        return timedelta(0)
    if isinstance(value, str):
        if value.strip() == "0":
            return timedelta(0)
        match = _PATTERN.match(value)
        if match:
            try:
                return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2)])
            except OverflowError:
                raise ValueError(TOO_LONG) from None
    raise ValueError("expected a duration such as 500ms, 30s, 5m, 2h, 1d or 1w")


def format_duration(delta: timedelta) -> str:
    """The shortest exact spelling of a duration in the units parse_duration accepts."""
    ms = round(delta.total_seconds() * 1000)
    if ms == 0:
        return "0s"
    for unit, seconds in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if ms % (seconds * 1000) == 0:
            return f"{ms // (seconds * 1000)}{unit}"
    return f"{ms}ms"


def human_seconds(seconds: float) -> str:
    """A rough, readable age: 42s, 5m 3s, 3h 12m, 2d 4h."""
    s = round(seconds)
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m {s % 60}s"
    if s < 86400:
        return f"{s // 3600}h {s % 3600 // 60}m"
    return f"{s // 86400}d {s % 86400 // 3600}h"
