-- One endpoint's days: the rollup's whole days plus the raw rows it has not aggregated and
-- those of the window's partial days ({since}), in one statement (see top_auto; the raw rows'
-- endpoints and status classes are top_raw's).
WITH parts AS (
    SELECT day, request_count, total_response_time, response_count, min_response_time,
           max_response_time, error_count,
           status_2xx, status_3xx, status_4xx, status_5xx, status_other
    FROM {view}
    WHERE endpoint = %(endpoint)s AND day >= %(from_day)s AND day <= %(to_day)s
    UNION ALL
    SELECT {day}, count(*), sum({response_time}::double precision), count({response_time}), min({response_time}),
           max({response_time}), count(*) FILTER (WHERE {status} >= %(error_min)s),
           count(*) FILTER (WHERE {status} >= 200 AND {status} < 300),
           count(*) FILTER (WHERE {status} >= 300 AND {status} < 400),
           count(*) FILTER (WHERE {status} >= 400 AND {status} < 500),
           count(*) FILTER (WHERE {status} >= 500 AND {status} < 600),
           count(*) FILTER (WHERE {status} IS NULL OR {status} < 200 OR {status} >= 600)
    FROM {table} {join}
    WHERE {normalized} = %(endpoint)s AND ({unaggregated} OR {since})
      AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
    GROUP BY 1
)
SELECT day,
       sum(request_count)::bigint AS requests,
       sum(total_response_time) AS total_ms,
       sum(response_count)::bigint AS responses,
       min(min_response_time) AS min_ms,
       max(max_response_time) AS max_ms,
       sum(error_count)::bigint AS errors,
       sum(status_2xx)::bigint AS status_2xx,
       sum(status_3xx)::bigint AS status_3xx,
       sum(status_4xx)::bigint AS status_4xx,
       sum(status_5xx)::bigint AS status_5xx,
       sum(status_other)::bigint AS status_other
FROM parts
GROUP BY 1
ORDER BY 1
