-- One endpoint's days from the raw rows.
SELECT {day} AS day,
       count(*) AS requests,
       sum({response_time}::double precision) AS total_ms,
       count({response_time}) AS responses,
       min({response_time})::double precision AS min_ms,
       max({response_time})::double precision AS max_ms,
       count(*) FILTER (WHERE {status} >= %(error_min)s) AS errors
FROM {table}
WHERE {endpoint} = %(endpoint)s AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
GROUP BY 1
ORDER BY 1
