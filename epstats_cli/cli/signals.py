"""SIGINT, SIGTERM and SIGHUP for the command line: one rule decides how epstats ends.

The first handler to run interrupts the run (raises KeyboardInterrupt) while it is armed, from
main()'s start until the outcome is decided; the first signal received (in the order they
arrived, read from the wakeup fd) decides the exit code (130, 143, 129) and the message
(errors.noted_signal); any later one, of any kind, is noted and said, and changes nothing. The
handlers stay installed until the process ends: the console script ends with os._exit once its
output is flushed, so no signal can land in the interpreter's shutdown (when Python puts the
default handlers back, and a signal would kill the process).

The handler itself only notes its signal: Python may run one handler inside another (between
two of its bytecodes), so a handler that read the order of arrival could lose a signal to
the handler that ran inside it; that order is read by plain code (errors.settle_signals).

Where Python cannot raise (a `__del__`, a weakref callback such as the one importlib runs as a
lazy import ends), the interrupting KeyboardInterrupt is swallowed and printed as "Exception
ignored in"; the run would go on as if nothing had come. The unraisable hook catches exactly
that one (raised by stop_on), prints nothing, and has the signal delivered again, every few
milliseconds until it interrupts (`_owed`).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from epstats_cli.errors import (
    ExitCode,
    Interrupted,
    handled_signals,
    interrupted,
    note_arrival,
    note_signal,
    noted_signal,
    read_arrivals_with,
    settle_signals,
    signal_name,
)

STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
INTERRUPTED_CODES = (ExitCode.INTERRUPTED, ExitCode.INTERRUPTED_TERM, ExitCode.INTERRUPTED_HUP)

_armed = False
# The read end of the pipe Python's C-level signal handler writes each signal's number to as
# it arrives (signal.set_wakeup_fd): the order of arrival, which the order Python runs the
# handlers in (by signal number, when several are pending at once) may not be.
_arrivals: int | None = None
# A signal whose KeyboardInterrupt was swallowed where Python cannot raise: it is delivered
# again (to the main thread) until the handler raises where it can. None: nothing owed.
_owed: int | None = None
_REDELIVER_EVERY_S = 0.005


def _read_arrivals() -> None:
    """Note the signals that arrived, in the order they arrived. Never called from a handler:
    a handler that ran inside it (between the read and the noting) could otherwise take a
    signal's place."""
    if _arrivals is None:
        return
    while True:
        try:
            data = os.read(_arrivals, 64)
        except OSError:  # nothing more to read (BlockingIOError), or closed
            return
        if not data:
            return
        for signum in data:
            if signum in STOPPING:
                note_arrival(signum)


def stop_on(signum: int, _frame: object) -> None:
    """The handler: SIGINT, SIGTERM and SIGHUP stop epstats alike (psycopg cancels the server
    statement, the executor repairs what it can in a few seconds and records the run as
    interrupted). Only the first handler to run interrupts; any later one (another kind, or
    the same again) only notes its signal, so that the repair and the record go on. Which
    signal decides is read later, in the order they arrived (errors.noted_signal)."""
    global _owed
    first = not handled_signals()
    note_signal(signum)
    if _armed and (first or _owed is not None) and not _in_hook(_frame):
        _owed = None
        raise KeyboardInterrupt


def _in_hook(frame: Any) -> bool:
    """Whether `frame` runs in the unraisable hook (a KeyboardInterrupt there would be
    swallowed too: the next redelivery raises it)."""
    while frame is not None:
        if frame.f_code is _unraisable.__code__:
            return True
        frame = frame.f_back
    return False


def _unraisable(args: Any) -> None:
    """sys.unraisablehook: stop_on's KeyboardInterrupt, swallowed where Python cannot raise,
    is owed (and nothing is printed); anything else goes to Python's hook."""
    global _owed
    tb = args.exc_traceback
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    ours = tb is not None and tb.tb_frame.f_code is stop_on.__code__
    if not (ours and args.exc_type is KeyboardInterrupt and _armed):
        sys.__unraisablehook__(args)
        return
    if _owed is None:
        _owed = handled_signals()[0]
        main = threading.main_thread().ident
        threading.Thread(target=_redeliver, args=(main,), daemon=True).start()


def _redeliver(main: int) -> None:
    """Deliver the owed signal to the main thread until its handler has raised, or until the
    outcome is being decided (disarmed)."""
    while True:
        owed = _owed
        if owed is None or not _armed:
            return
        with contextlib.suppress(OSError):
            signal.pthread_kill(main, owed)
        time.sleep(_REDELIVER_EVERY_S)


def install() -> dict[int, Any]:
    """Install the handlers and arm them; what they replace, to put back with restore() (the
    previous handlers, the wakeup fd under key 0, the unraisable hook under -1). Nothing off
    the main thread, where Python cannot install handlers. A signal the parent set to be
    ignored (`nohup` ignores SIGHUP, a shell's background job SIGINT) stays ignored."""
    global _armed, _arrivals
    if threading.current_thread() is not threading.main_thread():
        return {}
    previous: dict[int, Any] = {}
    read, write = os.pipe()
    os.set_blocking(read, False)
    os.set_blocking(write, False)
    _arrivals = read
    previous[0] = (signal.set_wakeup_fd(write, warn_on_full_buffer=False), read, write)
    read_arrivals_with(_read_arrivals)
    previous[-1] = sys.unraisablehook
    sys.unraisablehook = _unraisable
    for signum in STOPPING:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, stop_on)
    _armed = True
    return previous


def restore(previous: dict[int, Any]) -> None:
    """Put back the handlers and the wakeup fd install() replaced (in-process callers)."""
    global _arrivals
    for signum, handler in previous.items():
        if signum > 0:
            signal.signal(signum, handler)
    if -1 in previous:
        sys.unraisablehook = previous[-1]
    if 0 in previous:
        fd, read, write = previous[0]
        signal.set_wakeup_fd(fd)
        read_arrivals_with(None)
        _arrivals = None
        os.close(read)
        os.close(write)


def disarm() -> None:
    """From here on a signal is noted, never raised: the outcome is being decided. Signals
    already received but not yet handled are noted now, in their order of arrival, so that
    they count."""
    global _armed, _owed
    _armed = False
    _owed = None
    settle_signals()


def late(code: int) -> Interrupted | None:
    """When epstats is about to end with `code` (not an interruption's) though a signal
    arrived after the outcome was decided: the interruption to end with instead (the first
    signal decides, until epstats has exited). None: `code` stands."""
    disarm()
    first = noted_signal()
    if first is None or code in INTERRUPTED_CODES:
        return None
    return interrupted(
        first,
        f"interrupted by {signal_name(first)} as it ended (the command itself had finished, "
        f"with exit code {int(code)})",
    )


def run_exit_functions() -> None:
    """What the interpreter would run at exit (atexit), while the handlers still note signals."""
    import atexit

    with contextlib.suppress(Exception):
        atexit._run_exitfuncs()


def exit_now(code: int, report: Callable[[Interrupted], int]) -> None:
    """End the process with `code` at once, its output flushed: the interpreter's shutdown
    (which puts the default signal handlers back) never runs. The stopping signals are blocked
    first; one that arrived since the outcome was decided (handled, or still pending) decides
    now, as late() would have (`report` prints it and gives its exit code). From there on no
    signal can change the code: only the kernel's end of the process is left."""
    with contextlib.suppress(BaseException):
        signal.pthread_sigmask(signal.SIG_BLOCK, STOPPING)
        for signum in sorted(signal.sigpending() & set(STOPPING)):
            note_arrival(signum)
    with contextlib.suppress(BaseException):
        ended = late(code)
        if ended is not None:
            code = report(ended)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(BaseException):
            stream.flush()
    os._exit(code)
