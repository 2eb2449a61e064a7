"""A change as data: `Step`s of `Statement`s that run in a `Mode`, and their text as the
server receives it (what --dry-run prints and the history records). `execute.Executor` runs
them; planners (maintenance, indexes, rollup, init, generate) make them."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from psycopg import sql

from epstats_cli.db import Session
from epstats_cli.sqltext import as_text
from epstats_cli.waits import CONFLICTS_SHARE_UPDATE_EXCLUSIVE


class Mode(enum.Enum):
    """How a step's statements run."""

    AUTOCOMMIT = "autocommit"  # one after another, each retried alone on a lock timeout
    TRANSACTION = "transaction"  # all in one BEGIN ... COMMIT, retried whole
    CONCURRENTLY = "concurrently"  # a CONCURRENTLY statement; `repair` after a failed try


@dataclass(frozen=True)
class Statement:
    """One statement and its parameters, as sent to the server."""

    query: sql.Composed | sql.SQL
    params: Mapping[str, Any] | None = None
    # Called after the statement succeeded (e.g. to advance a row-count progress bar); again
    # when a retry runs it again.
    after: Callable[[], None] | None = field(default=None, compare=False, repr=False)


@dataclass
class Step:
    """One change: what, on what, why, the statements, and how they run."""

    task: str
    target: str
    reason: str
    statements: Sequence[Statement]
    mode: Mode = Mode.AUTOCOMMIT
    done: str | None = None  # the reason shown on success (default: reason)
    relation_oid: int | None = None  # whose lock holders to name when a lock is not granted
    lock_modes: Sequence[str] = CONFLICTS_SHARE_UPDATE_EXCLUSIVE
    skip_locked: bool = False  # a "skipping ... lock" notice counts as a lock not granted
    # The index this step builds or rebuilds: (schema, name). Checked after the run; while it
    # exists and is invalid after a failed or interrupted try, `repair` runs (best effort).
    index: tuple[str, str] | None = None
    repair: Sequence[Statement] = ()
    # Run (best effort) once the step has finally failed or been interrupted, e.g. to drop a
    # half-done replacement; idempotent statements (IF EXISTS).
    on_failure: Sequence[Statement] = ()
    # The message for an error this step expects, by SQLSTATE (e.g. "2BP01"): what to do about
    # it; "{error}" in the text stands for the server's message.
    error_hints: Mapping[str, str] = field(default_factory=dict)
    leftover_hint: str = "`epstats maintain --only cleanup` drops it"
    progress: str | None = None  # a catalog/*_progress statement to draw a bar from
    skip: str | None = None  # planned but not run, for this reason
    retries: int | None = None  # default: maintenance.lock_retries
    # Re-raise the final error (after repair and on_failure; recorded first) instead of
    # returning a failed result: for a step whose failure is its command's failure.
    raise_failure: bool = False
    # Known before running that it would fail, and why (e.g. the role may not vacuum the
    # table): a real run fails with this, sending nothing; a dry run says so.
    refused: str | None = None
    # What an interruption of this step leaves, said after "did not finish" (e.g. statistics
    # at an early stage's target)
    interrupted_note: str = ""


# The names PostgreSQL gives the copies of an index that REINDEX CONCURRENTLY makes:
# `<index>_ccnew` (the new one, until the swap), `<index>_ccold` (the old one, after it), with
# a number when the name is taken, the index name cut to fit NAMEDATALEN.
LEFTOVER = re.compile(r"_cc(new|old)\d*$")
NAMEDATALEN = 64


def left_by(step: Step, name: str) -> bool:
    """Whether an index named `name` that a failed try of `step` left invalid is the step's
    own: its index, or (for a REINDEX CONCURRENTLY, whose index is the predicted `_ccnew`) any
    `_ccnew`/`_ccold` copy of the same index."""
    if step.index is None:
        return False
    own = step.index[1]
    if name == own:
        return True
    mine, theirs = LEFTOVER.search(own), LEFTOVER.search(name)
    if mine is None or theirs is None:
        return False
    a, b = own[: mine.start()], name[: theirs.start()]
    if a == b:
        return True
    # a name cut to fit NAMEDATALEN (63 bytes, less a split character) keeps only the start
    cut = max(len(own.encode()), len(name.encode())) >= NAMEDATALEN - 4
    return cut and (a.startswith(b) or b.startswith(a))


@dataclass(frozen=True)
class Logged:
    """A statement the executor sent: `run` (the plan), `retry` (again after a lock timeout),
    `repair` (after a failed or interrupted try) or `on_failure` (after the step failed)."""

    kind: str
    text: str


def statement_texts(session: Session, step: Step) -> list[str]:
    """The statements of a step as the server receives them, with BEGIN/COMMIT if any."""
    texts = [as_text(session.conn, st.query, st.params) for st in step.statements]
    if step.mode is Mode.TRANSACTION:
        return ["BEGIN", *texts, "COMMIT"]
    return texts


def statements_text(session: Session, step: Step) -> str:
    """The statements of a step joined as one script: what a run sends, and records."""
    return ";\n".join(statement_texts(session, step))


def plan_text(session: Session, step: Step) -> str:
    """What --dry-run prints for a step: its statements, then the repair it may need."""
    text = statements_text(session, step)
    for st in step.repair:
        repair = as_text(session.conn, st.query, st.params)
        text += f";\n-- only if a try fails and leaves the index invalid: {repair}"
    for st in step.on_failure:
        undo = as_text(session.conn, st.query, st.params)
        text += f";\n-- only if the step fails: {undo}"
    return text
