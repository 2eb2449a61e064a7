"""How far ahead the source table's partitions reach, and the rows in its DEFAULT partition:
the facts `partition status` shows and `check partition_runway` judges (plain values: the
judge needs no server)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class DefaultRows:
    count: int
    oldest: dt.datetime | None
    newest: dt.datetime | None
    retired: int = 0  # dated before `retired_before` (older than source.retention)
    retired_before: dt.datetime | None = None


@dataclass
class Runway:
    """How far ahead the source table's partitions reach."""

    partitioned: bool
    interval: str | None = None
    ahead: int = 0  # partitions wholly after the one holding now
    covers_now: bool = False
    through: dt.datetime | None = None  # the newest partition's upper bound
    default: str | None = None  # the DEFAULT partition's name
    default_rows: DefaultRows | None = None
