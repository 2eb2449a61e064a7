"""The console script's entry point: the stopping signals are caught before the command line's
modules are imported (a fraction of a second in which Python would otherwise die of a Ctrl-C
with its own traceback, or of SIGTERM and SIGHUP without a word), then cli.main runs.

Standard library only: everything heavier is imported after the handlers are in place.
"""

from __future__ import annotations

import os
import signal
import sys

# The exit codes of an interruption (SPEC): 128 + the signal's number.
_STOPPING = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _stop_while_starting(signum: int, _frame: object) -> None:
    """Before anything ran: nothing to cancel or repair, so end at once, one line."""
    name = signal.Signals(signum).name
    os.write(2, f"epstats: interrupted by {name} while starting (nothing was done)\n".encode())
    os._exit(128 + signum)


def _closed_streams_to_devnull() -> None:
    """A stdout or stderr closed by the caller (`>&-`), which Python leaves as None: give it
    /dev/null on its own descriptor. Its output is discarded and the exit code still says how
    the command went (check's state too), and no connection opened later can take descriptor
    1 or 2 and receive what epstats prints."""
    for fd, name in ((1, "stdout"), (2, "stderr")):
        if getattr(sys, name) is not None:
            continue
        try:
            opened = os.open(os.devnull, os.O_WRONLY)
            if opened != fd:
                os.dup2(opened, fd)
                os.close(opened)
            # the process's stream until it ends, as Python's own are: no context manager
            setattr(sys, name, open(fd, "w", encoding="utf-8", closefd=False))  # noqa: SIM115
        except OSError:  # nothing better to do: Python's own None stays
            pass


def main() -> int:
    """Catch the stopping signals (those the parent left ignored stay ignored), give a closed
    stdout or stderr /dev/null, import the command line, run it (cli.main installs its own
    handlers first thing)."""
    _closed_streams_to_devnull()
    for signum in _STOPPING:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop_while_starting)
    from epstats_cli.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
