"""Progress bars from pg_stat_progress_*, polled on a second connection while a statement runs.

Only for a person at a terminal: callers pass no console for pipes, cron and --quiet. The
console is the command's own (stderr, honouring --no-color and NO_COLOR).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import psycopg

from epstats_cli.db import Session
from epstats_cli.polling import polling

if TYPE_CHECKING:
    from rich.console import Console


def _fraction(row: dict[str, Any]) -> tuple[float, float]:
    for done_key, total_key in (
        ("blocks_done", "blocks_total"),
        ("tuples_done", "tuples_total"),
        ("heap_blks_scanned", "heap_blks_total"),
        ("sample_blks_scanned", "sample_blks_total"),
    ):
        total = row.get(total_key) or 0
        if total:
            return float(row.get(done_key) or 0), float(total)
    return 0.0, 0.0


@contextmanager
def watch(session: Session, query: str, label: str, console: Console | None) -> Iterator[None]:
    """Show a bar for `query` (params: pid) about session's backend until the block ends."""
    if console is None:
        yield
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    pid = session.pid
    text = session.statement(query)

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        TextColumn("{task.percentage:>5.1f}%"),
        TimeElapsedColumn(),
        TextColumn("[dim]{task.fields[phase]}"),
        console=console,
        transient=True,
    ) as progress:
        task = progress.add_task(label, total=None, phase="starting")

        def tick(cur: psycopg.Cursor[dict[str, Any]]) -> None:
            row = cur.execute(text, {"pid": pid}).fetchone()
            if row is not None:
                done, total = _fraction(row)
                progress.update(
                    task, completed=done, total=total or None, phase=row.get("phase", "")
                )

        with polling(session, "epstats-progress", 0.5, tick):
            yield
