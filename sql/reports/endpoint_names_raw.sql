-- Endpoint names seen in the window (bounded by time, for the "did you mean" hint; {normalized}
-- and {join}: as in top_raw).
SELECT DISTINCT {normalized}::text FROM {table} {join}
WHERE {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
LIMIT 10000
