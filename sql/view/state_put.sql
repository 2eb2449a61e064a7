INSERT INTO epstats.rollup_state AS s
    (view_name, strategy, timezone, lookback, refreshed_at, refreshed_through, refresh_seconds)
VALUES (%(view)s, %(strategy)s, %(timezone)s, %(lookback)s, %(refreshed_at)s,
        %(refreshed_through)s, %(refresh_seconds)s)
ON CONFLICT (view_name) DO UPDATE
SET strategy = excluded.strategy, timezone = excluded.timezone, lookback = excluded.lookback,
    refreshed_at = excluded.refreshed_at, refreshed_through = excluded.refreshed_through,
    refresh_seconds = excluded.refresh_seconds
