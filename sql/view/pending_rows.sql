-- Raw rows the rollup has not aggregated, up to now (rows dated later are in no window).
SELECT count(*) FROM {table} WHERE {unaggregated} AND {timestamp} <= {now}
