-- How many raw rows of the window the rollup has not aggregated (what auto adds to it; those
-- of auto's partial days, {since}, are read from the raw rows anyway).
SELECT count(*) AS newer_rows
FROM {table}
WHERE {unaggregated} AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
  AND ({since}) IS NOT TRUE
