-- How many raw rows of the window the rollup has not aggregated (what auto adds to it).
SELECT count(*) AS newer_rows
FROM {table}
WHERE {unaggregated} AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
