-- Endpoint names seen in the window (bounded by time, for the "did you mean" hint).
SELECT DISTINCT {endpoint}::text FROM {table}
WHERE {timestamp} >= %(from_ts)s AND {timestamp} < %(to_ts)s
LIMIT 10000
