"""Read-only health: `check` (Nagios states) and `status`, as gather -> judge -> render.

facts.py reads typed facts from the server, once per run (server_facts.py those of the
server around the table: transactions, connections, replication, sequences, the newest row);
judges.py, row_judges.py, server_judges.py and replication_judges.py turn facts, thresholds
and the clock into states and messages, purely; checks.py wires the two for `check`;
status.py gathers what `status` shows; openmetrics.py writes either as OpenMetrics text. The
click commands in cli/health.py render them.
"""

from epstats_cli.health.checks import CHECKS, evaluate, run_checks
from epstats_cli.health.judges import CheckResult, State, Thresholds, nagios_line, overall

__all__ = [
    "CHECKS",
    "CheckResult",
    "State",
    "Thresholds",
    "evaluate",
    "nagios_line",
    "overall",
    "run_checks",
]
