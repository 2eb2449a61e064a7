-- One endpoint's days from the rollup, and their total (the row whose day is NULL). The
-- percentiles of a day are read from its latency histogram, the total's from the days' summed
-- ({quantiles}: fragments/latency_quantiles.sql,
-- for every q of %(quantiles)s).
WITH days AS (
    SELECT *
    FROM {view}
    WHERE endpoint = %(endpoint)s AND day >= %(from_day)s AND day <= %(to_day)s
),
histogram AS (
    SELECT k.key, h.bucket, h.n, days.min_response_time AS low, days.max_response_time AS high
    FROM days, unnest(days.latency_buckets, days.latency_counts) AS h(bucket, n),
         LATERAL (VALUES (days.day), (NULL::date)) AS k(key)
),
figures AS (
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
    FROM days
    GROUP BY GROUPING SETS ((day), ())
)
SELECT figures.*, latency_quantiles.percentiles
FROM figures LEFT JOIN {quantiles} ON latency_quantiles.key IS NOT DISTINCT FROM figures.day
ORDER BY day NULLS LAST
