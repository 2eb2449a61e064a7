-- Top endpoints from the rollup alone: whole days, averages weighted by response counts.
-- %(min_requests)s drops endpoints with fewer requests in the window, %(pattern)s keeps those
-- like it, %(limit)s the first rows; a NULL parameter restricts nothing. The percentiles are
-- read from the days' latency histograms summed ({quantiles}:
-- fragments/latency_quantiles.sql, for every q of %(quantiles)s).
WITH days AS (
    SELECT *
    FROM {view}
    WHERE endpoint IS NOT NULL AND day >= %(from_day)s AND day <= %(to_day)s
      AND (%(pattern)s::text IS NULL OR endpoint LIKE %(pattern)s::text)
),
histogram AS (
    SELECT days.endpoint AS key, h.bucket, h.n,
           days.min_response_time AS low, days.max_response_time AS high
    FROM days, unnest(days.latency_buckets, days.latency_counts) AS h(bucket, n)
),
figures AS (
    SELECT endpoint,
           sum(request_count)::bigint AS requests,
           sum(total_response_time) / nullif(sum(response_count), 0) AS avg_ms,
           min(min_response_time) AS min_ms,
           max(max_response_time) AS max_ms,
           sum(error_count)::bigint AS errors,
           sum(error_count)::double precision / nullif(sum(request_count), 0) AS error_rate,
           sum(status_2xx)::bigint AS status_2xx,
           sum(status_3xx)::bigint AS status_3xx,
           sum(status_4xx)::bigint AS status_4xx,
           sum(status_5xx)::bigint AS status_5xx,
           sum(status_other)::bigint AS status_other
    FROM days
    GROUP BY 1
    HAVING %(min_requests)s::bigint IS NULL OR sum(request_count) >= %(min_requests)s::bigint
)
SELECT figures.*, latency_quantiles.percentiles
FROM figures LEFT JOIN {quantiles} ON latency_quantiles.key = figures.endpoint
ORDER BY {order}
LIMIT %(limit)s
