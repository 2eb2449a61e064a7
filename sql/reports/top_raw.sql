-- Top endpoints from the raw rows: exact, and it scans the window (the guide's query, done right).
-- {from_ts} and {to_ts} are the window's instants as bounds of the timestamp column; the
-- filters are top_view's.
SELECT {endpoint}::text AS endpoint,
       count(*) AS requests,
       avg({response_time}::double precision) AS avg_ms,
       min({response_time})::double precision AS min_ms,
       max({response_time})::double precision AS max_ms,
       count(*) FILTER (WHERE {status} >= %(error_min)s) AS errors,
       (count(*) FILTER (WHERE {status} >= %(error_min)s))::double precision / count(*) AS error_rate
FROM {table}
WHERE {endpoint} IS NOT NULL AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
  AND (%(pattern)s::text IS NULL OR {endpoint} LIKE %(pattern)s::text)
GROUP BY 1
HAVING %(min_requests)s::bigint IS NULL OR count(*) >= %(min_requests)s::bigint
ORDER BY {order}
LIMIT %(limit)s
