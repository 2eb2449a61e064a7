-- Written in the refresh's own transaction; the watermark is read from the rollup itself.
INSERT INTO epstats.rollup_state AS s
    (view_name, strategy, timezone, lookback, refreshed_at, watermark, settled_through,
     refresh_seconds)
SELECT %(view)s, %(strategy)s, %(timezone)s, %(lookback)s, %(refreshed_at)s,
       (SELECT max(max_timestamp) FROM {view}), %(settled_through)s, %(refresh_seconds)s
ON CONFLICT (view_name) DO UPDATE
SET strategy = excluded.strategy, timezone = excluded.timezone, lookback = excluded.lookback,
    refreshed_at = excluded.refreshed_at, watermark = excluded.watermark,
    settled_through = excluded.settled_through, refresh_seconds = excluded.refresh_seconds
