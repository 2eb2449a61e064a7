-- The oldest raw row the rollup has not aggregated yet (NULL when it is up to date).
SELECT min({timestamp}) AS oldest
FROM {table}
WHERE {timestamp} > (SELECT coalesce(max(max_timestamp), '-infinity'::timestamptz) FROM {view})
