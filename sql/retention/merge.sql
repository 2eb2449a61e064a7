-- Late rows ({rows}: the rollup's data rows aggregated from them) merged into the rollup
-- additively: counts and sums add, min/max combine, latency histograms add bucket by bucket
-- (epstats_cli/latency.py: two arrays ordered by bucket, no empty bucket).
INSERT INTO {view} AS r ({columns})
SELECT {columns} FROM ({rows}) AS late
ON CONFLICT (endpoint, day) DO UPDATE SET
    request_count = r.request_count + excluded.request_count,
    error_count = r.error_count + excluded.error_count,
    response_count = r.response_count + excluded.response_count,
    total_response_time = CASE
        WHEN r.total_response_time IS NULL THEN excluded.total_response_time
        WHEN excluded.total_response_time IS NULL THEN r.total_response_time
        ELSE r.total_response_time + excluded.total_response_time END,
    avg_response_time = (coalesce(r.total_response_time, 0)
                         + coalesce(excluded.total_response_time, 0))
                        / nullif(r.response_count + excluded.response_count, 0),
    max_response_time = greatest(r.max_response_time, excluded.max_response_time),
    min_response_time = least(r.min_response_time, excluded.min_response_time),
    max_timestamp = greatest(r.max_timestamp, excluded.max_timestamp),
    status_2xx = r.status_2xx + excluded.status_2xx,
    status_3xx = r.status_3xx + excluded.status_3xx,
    status_4xx = r.status_4xx + excluded.status_4xx,
    status_5xx = r.status_5xx + excluded.status_5xx,
    status_other = r.status_other + excluded.status_other,
    (latency_buckets, latency_counts) = (
        SELECT array_agg(b ORDER BY b), array_agg(c ORDER BY b)
        FROM (SELECT b, sum(c)::bigint AS c
              FROM (SELECT * FROM unnest(r.latency_buckets, r.latency_counts)
                    UNION ALL
                    SELECT * FROM unnest(excluded.latency_buckets, excluded.latency_counts))
                   AS h (b, c)
              GROUP BY b) AS m)
