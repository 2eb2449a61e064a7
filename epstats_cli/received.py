"""The signals epstats received while it runs, and which one decides how it ends: the first
received (errors.py maps it onto the exit code, cli/signals.py installs the handlers).
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

# The signals epstats received while it ran. One rule decides how epstats ends: the FIRST
# signal received gives the exit code (SIGINT 130, SIGTERM 143, SIGHUP 129) and the message;
# signals after it (of any kind, the same one again) are noted and said, but neither stop
# epstats nor change its exit code, until it has exited.
#
# Two records, each a tuple rebound (never mutated), so that a handler running between two
# bytecodes of a reader cannot upset it:
# - _handled: the signals whose handler ran, in the order Python ran them. A handler records
#   its signal before it interrupts, so the QueryCanceled that follows reads as an
#   interruption (130/143/129), not as statement_timeout (1). When several signals are pending
#   at once, Python runs their handlers by signal number, not in the order they arrived; and a
#   handler may run inside another (between two of its bytecodes).
# - _arrived: the order they arrived in, read (never inside a handler) from what the C-level
#   handler wrote as each one arrived (cli/signals.py registers the reader): what decides.
_handled: tuple[int, ...] = ()
_arrived: tuple[int, ...] = ()
_read_arrivals: Callable[[], None] | None = None


def note_signal(signum: int) -> None:
    """From a signal handler: signal `signum`'s handler ran."""
    global _handled
    if signum not in _handled:
        _handled = (*_handled, signum)


def note_arrival(signum: int) -> None:
    """Signal `signum` arrived (after those noted before it)."""
    global _arrived
    if signum not in _arrived:
        _arrived = (*_arrived, signum)


def read_arrivals_with(reader: Callable[[], None] | None) -> None:
    """Register (None: forget) what reads the order of arrival (calling note_arrival)."""
    global _read_arrivals
    _read_arrivals = reader


def handled_signals() -> tuple[int, ...]:
    """The signals whose handler ran (for the handler itself: whether it is the first)."""
    return _handled


def noted_signals() -> tuple[int, ...]:
    """Every signal received, in the order they arrived as far as it is known: those read
    in their order of arrival, then any other whose handler ran."""
    arrived = _arrived
    return arrived + tuple(s for s in _handled if s not in arrived)


def settle_signals() -> None:
    """Run the Python handlers of signals that arrived but are not handled yet, then read the
    order in which they arrived.

    When one handler raises (SIGINT's KeyboardInterrupt), CPython leaves the other signals
    received with it pending until something next checks for signals, which plain Python code
    does not: a SIGTERM sent with a Ctrl-C would be handled only after epstats had reported
    its exit code. pthread_kill with signal 0 sends nothing, then checks."""
    if hasattr(signal, "pthread_kill"):
        signal.pthread_kill(threading.get_ident(), 0)
    reader = _read_arrivals
    if reader is not None:
        reader()


def noted_signal() -> int | None:
    """The signal that decides how epstats ends (the first received, pending ones included),
    or None."""
    settle_signals()
    noted = noted_signals()
    return noted[0] if noted else None


def later_signals() -> tuple[int, ...]:
    """The signals received after the first (noted, changing nothing)."""
    settle_signals()
    return noted_signals()[1:]


def clear_signal() -> None:
    """Forget the recorded signals (a new run in the same process, or a test)."""
    global _handled, _arrived
    _handled = ()
    _arrived = ()
