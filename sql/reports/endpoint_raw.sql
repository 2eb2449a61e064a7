-- One endpoint's days from the raw rows, and their total (the row whose day is NULL);
-- {normalized} and {join}, the status classes and the exact percentiles: as in top_raw.
SELECT day,
       count(*) AS requests,
       sum(response_time) AS total_ms,
       count(response_time) AS responses,
       min(response_time) AS min_ms,
       max(response_time) AS max_ms,
       count(*) FILTER (WHERE status >= %(error_min)s) AS errors,
       count(*) FILTER (WHERE status >= 200 AND status < 300) AS status_2xx,
       count(*) FILTER (WHERE status >= 300 AND status < 400) AS status_3xx,
       count(*) FILTER (WHERE status >= 400 AND status < 500) AS status_4xx,
       count(*) FILTER (WHERE status >= 500 AND status < 600) AS status_5xx,
       count(*) FILTER (WHERE status IS NULL OR status < 200 OR status >= 600) AS status_other,
       percentile_disc(%(quantiles)s::double precision[])
           WITHIN GROUP (ORDER BY response_time) AS percentiles
FROM (
    SELECT {day} AS day, {response_time}::double precision AS response_time,
           {status} AS status
    FROM {table} {join}
    WHERE {normalized} = %(endpoint)s AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
) AS rows_read
GROUP BY GROUPING SETS ((day), ())
ORDER BY day NULLS LAST
