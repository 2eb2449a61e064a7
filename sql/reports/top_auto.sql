-- Whole days from the rollup plus exactly the raw rows it has not aggregated ({unaggregated}:
-- dated after its as-of, or shortly before it by a transaction its refresh could not see), in
-- one statement of a REPEATABLE READ transaction that also read the as-of: no row counted
-- twice or missed, whoever refreshed the rollup last.
-- A window that starts or ends at a time of day (--hours, --since/--until with a time,
-- --compare's previous window of a window that ends now) reads its partial days from the raw
-- rows alone ({since}: its head, from from_ts to head_to, and its tail, from tail_from to
-- to_ts; report_window.Parts); the rollup then covers the whole days between them, from_day
-- to to_day. NULL: no such part.
-- The filters are top_view's; the raw rows' endpoints and status classes are top_raw's. The
-- raw rows are grouped by endpoint and latency bucket ({bucket}: fragments/latency_bucket.sql,
-- with the rollup's accuracy), so that their histograms add to the days' ({quantiles}:
-- fragments/latency_quantiles.sql, for every q of %(quantiles)s).
WITH days AS (
    SELECT *
    FROM {view}
    WHERE endpoint IS NOT NULL AND day >= %(from_day)s AND day <= %(to_day)s
      AND (%(pattern)s::text IS NULL OR endpoint LIKE %(pattern)s::text)
),
raw AS (
    SELECT {normalized}::text AS endpoint, {bucket} AS bucket, count(*) AS request_count,
           sum({response_time}::double precision) AS total_response_time,
           count({response_time}) AS response_count,
           min({response_time})::double precision AS min_response_time,
           max({response_time})::double precision AS max_response_time,
           count(*) FILTER (WHERE {status} >= %(error_min)s) AS error_count,
           count(*) FILTER (WHERE {status} >= 200 AND {status} < 300) AS status_2xx,
           count(*) FILTER (WHERE {status} >= 300 AND {status} < 400) AS status_3xx,
           count(*) FILTER (WHERE {status} >= 400 AND {status} < 500) AS status_4xx,
           count(*) FILTER (WHERE {status} >= 500 AND {status} < 600) AS status_5xx,
           count(*) FILTER (WHERE {status} IS NULL OR {status} < 200 OR {status} >= 600) AS status_other
    FROM {table} {join}
    WHERE {unaggregated} AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
      AND ({since}) IS NOT TRUE
      AND (%(pattern)s::text IS NULL OR {normalized} LIKE %(pattern)s::text)
    GROUP BY 1, 2
    UNION ALL
    SELECT {normalized}::text, {bucket}, count(*), sum({response_time}::double precision),
           count({response_time}), min({response_time})::double precision,
           max({response_time})::double precision,
           count(*) FILTER (WHERE {status} >= %(error_min)s),
           count(*) FILTER (WHERE {status} >= 200 AND {status} < 300),
           count(*) FILTER (WHERE {status} >= 300 AND {status} < 400),
           count(*) FILTER (WHERE {status} >= 400 AND {status} < 500),
           count(*) FILTER (WHERE {status} >= 500 AND {status} < 600),
           count(*) FILTER (WHERE {status} IS NULL OR {status} < 200 OR {status} >= 600)
    FROM {table} {join}
    WHERE {endpoint} IS NOT NULL AND {since} AND {timestamp} < {to_ts}
      AND (%(pattern)s::text IS NULL OR {normalized} LIKE %(pattern)s::text)
    GROUP BY 1, 2
),
histogram AS (
    SELECT days.endpoint AS key, h.bucket, h.n,
           days.min_response_time AS low, days.max_response_time AS high
    FROM days, unnest(days.latency_buckets, days.latency_counts) AS h(bucket, n)
    UNION ALL
    SELECT endpoint, bucket, response_count, min_response_time, max_response_time
    FROM raw
),
parts AS (
    SELECT endpoint, request_count, total_response_time, response_count,
           min_response_time, max_response_time, error_count,
           status_2xx, status_3xx, status_4xx, status_5xx, status_other
    FROM days
    UNION ALL
    SELECT endpoint, request_count, total_response_time, response_count,
           min_response_time, max_response_time, error_count,
           status_2xx, status_3xx, status_4xx, status_5xx, status_other
    FROM raw
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
    FROM parts
    GROUP BY 1
    HAVING %(min_requests)s::bigint IS NULL OR sum(request_count) >= %(min_requests)s::bigint
)
SELECT figures.*, latency_quantiles.percentiles
FROM figures LEFT JOIN {quantiles} ON latency_quantiles.key = figures.endpoint
ORDER BY {order}
LIMIT %(limit)s
