-- Endpoint names seen in the window (bounded by time, for the "did you mean" hint).
SELECT DISTINCT {endpoint}::text FROM {table}
WHERE {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
LIMIT 10000
