SELECT strategy, timezone, lookback, refreshed_at, refreshed_through, refresh_seconds
FROM epstats.rollup_state WHERE view_name = %(view)s
