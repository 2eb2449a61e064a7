SELECT strategy, timezone, lookback, refreshed_at, watermark, settled_through, refresh_seconds
FROM epstats.rollup_state WHERE view_name = %(view)s
