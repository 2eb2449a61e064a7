-- One endpoint's days from the raw rows ({normalized} and {join}, and the status classes: as
-- in top_raw).
SELECT {day} AS day,
       count(*) AS requests,
       sum({response_time}::double precision) AS total_ms,
       count({response_time}) AS responses,
       min({response_time})::double precision AS min_ms,
       max({response_time})::double precision AS max_ms,
       count(*) FILTER (WHERE {status} >= %(error_min)s) AS errors,
       count(*) FILTER (WHERE {status} >= 200 AND {status} < 300) AS status_2xx,
       count(*) FILTER (WHERE {status} >= 300 AND {status} < 400) AS status_3xx,
       count(*) FILTER (WHERE {status} >= 400 AND {status} < 500) AS status_4xx,
       count(*) FILTER (WHERE {status} >= 500 AND {status} < 600) AS status_5xx,
       count(*) FILTER (WHERE {status} IS NULL OR {status} < 200 OR {status} >= 600) AS status_other
FROM {table} {join}
WHERE {normalized} = %(endpoint)s AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
GROUP BY 1
ORDER BY 1
