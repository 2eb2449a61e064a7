-- One endpoint's days, and their total (the row whose day is NULL): the rollup's whole days
-- plus the raw rows it has not aggregated and those of the window's partial days ({since}), in
-- one statement (see top_auto; the raw rows' endpoints and status classes are top_raw's). The
-- raw rows are grouped by day and latency bucket ({bucket}, with the rollup's accuracy), so that
-- their histograms add to the days' ({quantiles}: fragments/latency_quantiles.sql,
-- for every q of %(quantiles)s).
WITH days AS (
    SELECT *
    FROM {view}
    WHERE endpoint = %(endpoint)s AND day >= %(from_day)s AND day <= %(to_day)s
),
raw AS (
    SELECT {day} AS day, {bucket} AS bucket, count(*) AS request_count,
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
    WHERE {normalized} = %(endpoint)s AND ({unaggregated} OR {since})
      AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
    GROUP BY 1, 2
),
histogram AS (
    SELECT k.key, h.bucket, h.n, days.min_response_time AS low, days.max_response_time AS high
    FROM days, unnest(days.latency_buckets, days.latency_counts) AS h(bucket, n),
         LATERAL (VALUES (days.day), (NULL::date)) AS k(key)
    UNION ALL
    SELECT k.key, raw.bucket, raw.response_count, raw.min_response_time, raw.max_response_time
    FROM raw, LATERAL (VALUES (raw.day), (NULL::date)) AS k(key)
),
parts AS (
    SELECT day, request_count, total_response_time, response_count, min_response_time,
           max_response_time, error_count,
           status_2xx, status_3xx, status_4xx, status_5xx, status_other
    FROM days
    UNION ALL
    SELECT day, request_count, total_response_time, response_count, min_response_time,
           max_response_time, error_count,
           status_2xx, status_3xx, status_4xx, status_5xx, status_other
    FROM raw
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
    FROM parts
    GROUP BY GROUPING SETS ((day), ())
)
SELECT figures.*, latency_quantiles.percentiles
FROM figures LEFT JOIN {quantiles} ON latency_quantiles.key IS NOT DISTINCT FROM figures.day
ORDER BY day NULLS LAST
