-- Whole days from the rollup plus the raw rows newer than its watermark (the newest timestamp
-- it aggregated, read from its own contents), in one statement: consistent, up to the second,
-- and no row counted twice whoever refreshed the rollup last.
WITH mark AS (
    SELECT coalesce(max(max_timestamp), '-infinity'::timestamptz) AS wm FROM {view}
), parts AS (
    SELECT endpoint, request_count, total_response_time, response_count,
           min_response_time, max_response_time, error_count
    FROM {view}
    WHERE day >= %(from_day)s AND day <= %(to_day)s
      AND (%(pattern)s::text IS NULL OR endpoint LIKE %(pattern)s::text)
    UNION ALL
    SELECT {endpoint}::text, count(*), sum({response_time}), count({response_time}),
           min({response_time}), max({response_time}),
           count(*) FILTER (WHERE {status} >= %(error_min)s)
    FROM {table}, mark
    WHERE {timestamp} > mark.wm AND {timestamp} >= %(from_ts)s AND {timestamp} < %(to_ts)s
      AND (%(pattern)s::text IS NULL OR {endpoint} LIKE %(pattern)s::text)
    GROUP BY 1
)
SELECT endpoint,
       sum(request_count)::bigint AS requests,
       sum(total_response_time) / nullif(sum(response_count), 0) AS avg_ms,
       min(min_response_time) AS min_ms,
       max(max_response_time) AS max_ms,
       sum(error_count)::bigint AS errors,
       sum(error_count)::double precision / nullif(sum(request_count), 0) AS error_rate
FROM parts
GROUP BY 1
ORDER BY {order}
LIMIT %(limit)s
