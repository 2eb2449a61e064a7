"""The daily rollup `endpoint_daily_stats`: inspect, build, refresh, verify.

Two strategies with the same columns: `materialized` (the guide's view, plus a unique key so
it refreshes CONCURRENTLY) and `incremental` (a table whose refresh recomputes only the days
that can still change). Both hold, besides their data rows, one bookkeeping row (endpoint and
day NULL) written by the statement that aggregates: the instant the rollup is complete through
(its as-of, the refresh's now()) and the snapshot it read with. Reports add exactly the raw
rows it has not aggregated: dated after the as-of, or dated shortly before it by a transaction
that snapshot could not see. That epstats built it, and with what parameters, is recorded in
epstats.rollup_state (an earlier epstats used its comment, still read).

- inspect: the one reader of what the rollup is (kind, parameters, contents, state);
- aggregate: its definition over the raw rows; days: which days a refresh recomputes;
- build, refresh: planners of executor steps; state: their epstats.rollup_state statements;
- verify: the rollup against the raw rows.
"""

from epstats_cli.rollup.build import build, plan_build
from epstats_cli.rollup.days import first_day_to_recompute
from epstats_cli.rollup.inspect import (
    COMMENT_PREFIX,
    RollupFacts,
    differences,
    facts,
    identify,
    parameter_mismatch,
    parse_comment,
    require_parameters,
)
from epstats_cli.rollup.refresh import plan_refresh, refresh
from epstats_cli.rollup.verify import Verification, verify

__all__ = [
    "COMMENT_PREFIX",
    "RollupFacts",
    "Verification",
    "build",
    "differences",
    "facts",
    "first_day_to_recompute",
    "identify",
    "parameter_mismatch",
    "parse_comment",
    "plan_build",
    "plan_refresh",
    "refresh",
    "require_parameters",
    "verify",
]
