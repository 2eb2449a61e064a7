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


def main() -> int:
    """Catch the stopping signals (those the parent left ignored stay ignored), import the
    command line, run it (cli.main installs its own handlers first thing)."""
    for signum in _STOPPING:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, _stop_while_starting)
    from epstats_cli.cli import main as run

    return run()


if __name__ == "__main__":
    sys.exit(main())
