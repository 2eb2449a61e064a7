-- One endpoint's days: the rollup's whole days plus the raw rows it has not aggregated and
-- those of the window's partial days ({since}), in one statement (see top_auto).
WITH parts AS (
    SELECT day, request_count, total_response_time, response_count, min_response_time,
           max_response_time, error_count
    FROM {view}
    WHERE endpoint = %(endpoint)s AND day >= %(from_day)s AND day <= %(to_day)s
    UNION ALL
    SELECT {day}, count(*), sum({response_time}::double precision), count({response_time}), min({response_time}),
           max({response_time}), count(*) FILTER (WHERE {status} >= %(error_min)s)
    FROM {table}
    WHERE {endpoint} = %(endpoint)s AND ({unaggregated} OR {since})
      AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
    GROUP BY 1
)
SELECT day,
       sum(request_count)::bigint AS requests,
       sum(total_response_time) AS total_ms,
       sum(response_count)::bigint AS responses,
       min(min_response_time) AS min_ms,
       max(max_response_time) AS max_ms,
       sum(error_count)::bigint AS errors
FROM parts
GROUP BY 1
ORDER BY 1
