-- Top endpoints from the raw rows: exact, and it scans the window (the guide's query, done right).
-- {from_ts} and {to_ts} are the window's instants as bounds of the timestamp column; the
-- filters are top_view's. {normalized} is the endpoint as reports name it (the column, or
-- normalized through the map that {join} adds: epstats_cli/endpoints.py); the status classes
-- are sql/view/aggregate.sql's (other: any other status, NULL included). The percentiles are
-- exact: percentile_disc of every q of %(quantiles)s (NULL without a response time).
SELECT *
FROM (
    SELECT {normalized}::text AS endpoint,
           count(*) AS requests,
           avg({response_time}::double precision) AS avg_ms,
           min({response_time})::double precision AS min_ms,
           max({response_time})::double precision AS max_ms,
           count(*) FILTER (WHERE {status} >= %(error_min)s) AS errors,
           (count(*) FILTER (WHERE {status} >= %(error_min)s))::double precision / count(*) AS error_rate,
           count(*) FILTER (WHERE {status} >= 200 AND {status} < 300) AS status_2xx,
           count(*) FILTER (WHERE {status} >= 300 AND {status} < 400) AS status_3xx,
           count(*) FILTER (WHERE {status} >= 400 AND {status} < 500) AS status_4xx,
           count(*) FILTER (WHERE {status} >= 500 AND {status} < 600) AS status_5xx,
           count(*) FILTER (WHERE {status} IS NULL OR {status} < 200 OR {status} >= 600) AS status_other,
           percentile_disc(%(quantiles)s::double precision[])
               WITHIN GROUP (ORDER BY {response_time}::double precision) AS percentiles
    FROM {table} {join}
    WHERE {endpoint} IS NOT NULL AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
      AND (%(pattern)s::text IS NULL OR {normalized} LIKE %(pattern)s::text)
    GROUP BY 1
    HAVING %(min_requests)s::bigint IS NULL OR count(*) >= %(min_requests)s::bigint
) AS figures
ORDER BY {order}
LIMIT %(limit)s
