-- The planner's estimate of the window's raw rows (no row is read): whether to sample.
EXPLAIN (FORMAT JSON)
SELECT FROM {table}
WHERE {endpoint} IS NOT NULL AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
