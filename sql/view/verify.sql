-- Compare the rollup with a from-scratch aggregation of the raw rows for days in a window.
-- {definition} aggregates only the raw rows the rollup aggregated (fragments/verify_window).
-- {stored} is the rollup (or, for one built before the latency histograms, the rollup with NULL
-- histograms: fragments/verify_no_latency); its histograms are compared, every bucket and
-- count exactly, when %(histograms)s.
WITH fresh AS (
    {definition}
), stored AS (
    SELECT * FROM {stored}
    WHERE endpoint IS NOT NULL AND day >= %(from_day)s AND day <= %(to_day)s
)
SELECT coalesce(f.endpoint, s.endpoint) AS endpoint,
       coalesce(f.day, s.day) AS day,
       s.request_count AS view_requests, f.request_count AS raw_requests,
       s.error_count AS view_errors, f.error_count AS raw_errors,
       s.min_response_time AS view_min, f.min_response_time AS raw_min,
       s.max_response_time AS view_max, f.max_response_time AS raw_max,
       s.total_response_time AS view_total, f.total_response_time AS raw_total,
       s.response_count AS view_responses, f.response_count AS raw_responses,
       s.status_2xx AS view_2xx, f.status_2xx AS raw_2xx,
       s.status_3xx AS view_3xx, f.status_3xx AS raw_3xx,
       s.status_4xx AS view_4xx, f.status_4xx AS raw_4xx,
       s.status_5xx AS view_5xx, f.status_5xx AS raw_5xx,
       s.status_other AS view_other, f.status_other AS raw_other,
       s.latency_buckets AS view_latency_buckets, f.latency_buckets AS raw_latency_buckets,
       s.latency_counts AS view_latency_counts, f.latency_counts AS raw_latency_counts
FROM fresh f
FULL JOIN stored s ON s.endpoint = f.endpoint AND s.day = f.day
WHERE f.endpoint IS NULL OR s.endpoint IS NULL
   OR s.request_count <> f.request_count
   OR s.error_count <> f.error_count
   OR s.response_count <> f.response_count
   OR (s.status_2xx, s.status_3xx, s.status_4xx, s.status_5xx, s.status_other)
      <> (f.status_2xx, f.status_3xx, f.status_4xx, f.status_5xx, f.status_other)
   OR s.min_response_time IS DISTINCT FROM f.min_response_time
   OR s.max_response_time IS DISTINCT FROM f.max_response_time
   OR (s.total_response_time IS NULL) <> (f.total_response_time IS NULL)
   -- (equal sums first: an infinite response time, bad data, makes both sums Infinity, whose
   -- difference is NaN, which PostgreSQL orders above every number)
   OR (s.total_response_time IS DISTINCT FROM f.total_response_time
       AND abs(s.total_response_time - f.total_response_time)
           > 1e-9 * greatest(abs(f.total_response_time), 1e-300))
   OR (%(histograms)s AND (s.latency_buckets IS DISTINCT FROM f.latency_buckets
                           OR s.latency_counts IS DISTINCT FROM f.latency_counts))
ORDER BY 2, 1
