"""The daily rollup `endpoint_daily_stats`: inspect, build, refresh, verify.

Two strategies with the same columns: `materialized` (the guide's view, plus a unique key so
it refreshes CONCURRENTLY) and `incremental` (a table whose refresh recomputes only the days
that can still change). Both keep their watermark in their own contents (max_timestamp per
endpoint and day), so reports can add newer raw rows without counting any twice.

- inspect: the one reader of what the rollup is (kind, parameters, contents, state);
- aggregate: its definition over the raw rows; days: which days a refresh recomputes;
- build, refresh: planners of executor steps; state: their epstats.rollup_state statements;
- verify: the rollup against the raw rows.
"""

from epstats_cli.rollup.build import build, plan_build
from epstats_cli.rollup.days import first_day_to_recompute
from epstats_cli.rollup.inspect import COMMENT_PREFIX, RollupFacts, facts, parse_comment
from epstats_cli.rollup.refresh import plan_refresh, refresh
from epstats_cli.rollup.verify import Verification, verify

__all__ = [
    "COMMENT_PREFIX",
    "RollupFacts",
    "Verification",
    "build",
    "facts",
    "first_day_to_recompute",
    "parse_comment",
    "plan_build",
    "plan_refresh",
    "refresh",
    "verify",
]
