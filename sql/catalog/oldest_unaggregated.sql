-- The oldest raw row the rollup has not aggregated, dated up to now (NULL: none), and its age
-- by the server's clock. {unaggregated} bounds the timestamp below by the as-of less
-- view.commit_delay and {now} above: a range of the timestamp index, never a full scan.
SELECT min({instant}) AS oldest,
       extract(epoch FROM now() - min({instant}))::double precision AS age_seconds
FROM {table}
WHERE {unaggregated} AND {timestamp} <= {now}
