"""Where a report (or `view verify`) read: on a hot standby, how far behind its data is.

A standby's data lags its primary's by the WAL it has not replayed. The measure is `now() -
pg_last_xact_replay_timestamp()`, the age of the last commit replayed, with the caveat of an
idle primary: it writes nothing, so that age grows while nothing is missing. A standby whose
WAL receiver runs and which has replayed all the WAL it received is therefore 0 behind (what
the primary sent and the standby has not yet received is the streaming delay, well under a
second); otherwise (received WAL waits: replay is slow or paused; or no receiver runs: the
primary may have committed since) the age of the last commit replayed is the lag, an upper
bound when no receiver runs. Read as the first statement of the report's transaction, so it
describes the snapshot the report reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from epstats_cli.db import Session
from epstats_cli.dsn import target
from epstats_cli.durations import human_seconds


@dataclass(frozen=True)
class Lag:
    """How far behind a standby's data is (catalog/replica_lag.sql): `seconds` is 0 when it has
    replayed all the WAL its running receiver got, else the age of the last commit replayed
    (None: it has replayed none since it started)."""

    seconds: float | None
    caught_up: bool
    receiving: bool


def replica_lag(session: Session) -> Lag | None:
    """The lag of the data `session` reads; None on a primary."""
    if not session.server.in_recovery:
        return None
    row = session.one("catalog/replica_lag")
    if row is None or not row["in_recovery"]:  # promoted since we connected
        return None
    caught_up = bool(row["receiving"] and row["replayed_all"])
    seconds = 0.0 if caught_up else row["lag_seconds"]
    return Lag(seconds, caught_up, bool(row["receiving"]))


@dataclass(frozen=True)
class Served:
    """What a report says about the server it read: `lag_s` (JSON `replica_lag_s`: None on
    a primary) and the footer's lines (also the JSON's notes)."""

    lag_s: float | None = None
    notes: list[str] = field(default_factory=list)


def measure(session: Session) -> Served:
    """How far behind the server `session` reads is, and why it reads there."""
    notes = [session.replica_fallback] if session.replica_fallback else []
    lag = replica_lag(session)
    if lag is None:
        return Served(None, notes)
    where = f"read from the standby {target(session.dsn)}"
    if lag.caught_up:
        notes.append(f"{where}: 0s behind (it has replayed all the WAL it received)")
    elif lag.seconds is None:
        notes.append(f"{where}: it has replayed no commit since it started: lag unknown")
    elif lag.receiving:
        notes.append(
            f"{where}: {human_seconds(lag.seconds)} behind (the age of the last commit it "
            "replayed: WAL it received waits to be replayed)"
        )
    else:
        notes.append(
            f"{where}: at most {human_seconds(lag.seconds)} behind (the age of the last commit "
            "it replayed; no WAL receiver runs, so the primary may have written since)"
        )
    return Served(lag.seconds, notes)
