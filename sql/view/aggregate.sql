-- The rollup's data rows, shared by both strategies. {day} is the calendar day in
-- source.timezone whatever the session's TimeZone; total_response_time and response_count
-- let multi-day averages be weighted; max_timestamp is the newest row of the day; as_of and
-- snapshot belong to the bookkeeping row alone (NULL here). A row without an endpoint is in
-- no report, so in no rollup. {normalized} is the endpoint as reports name it (the column as
-- text, or normalized through the map that {join} adds: epstats_cli/endpoints.py). The status
-- classes add up to request_count (other: any other status, NULL included).
-- The raw rows are read once and grouped by endpoint, day and latency bucket ({bucket}:
-- sql/fragments/latency_bucket.sql, NULL for a NULL response time); the day's figures are
-- summed from its buckets, and its latency histogram is the buckets' counts in bucket order
-- (latency_buckets, latency_counts: epstats_cli/latency.py; NULL without a response time).
-- The planner cannot tell how many buckets the rows make (it counts as many groups as rows)
-- and would sort every row read to group them: run it after aggregate.planner_settings
-- (hashing: 2x faster on a refresh's days, benchmarks/README.md).
SELECT endpoint, day, request_count, avg_response_time, max_response_time, min_response_time,
       error_count, total_response_time, response_count, max_timestamp,
       status_2xx, status_3xx, status_4xx, status_5xx, status_other, as_of, snapshot,
       -- the day's buckets in bucket order, each count beside its bucket (aggregated without
       -- ORDER BY below, so that both levels can hash their groups)
       (SELECT array_agg(b ORDER BY b) FROM unnest(buckets) AS b) AS latency_buckets,
       (SELECT array_agg(n ORDER BY b) FROM unnest(buckets, counts) AS h(b, n)) AS latency_counts
FROM (
SELECT endpoint,
       day,
       sum(requests)::bigint AS request_count,
       sum(total) / nullif(sum(responses), 0) AS avg_response_time,
       max(max_time) AS max_response_time,
       min(min_time) AS min_response_time,
       sum(errors)::bigint AS error_count,
       sum(total) AS total_response_time,
       sum(responses)::bigint AS response_count,
       max(newest) AS max_timestamp,
       sum(s2xx)::bigint AS status_2xx,
       sum(s3xx)::bigint AS status_3xx,
       sum(s4xx)::bigint AS status_4xx,
       sum(s5xx)::bigint AS status_5xx,
       sum(sother)::bigint AS status_other,
       NULL::timestamptz AS as_of,
       NULL::text AS snapshot,
       -- one aggregate node feeds both in the same row order: each count stays beside its bucket
       array_agg(bucket) FILTER (WHERE bucket IS NOT NULL) AS buckets,
       array_agg(responses) FILTER (WHERE bucket IS NOT NULL) AS counts
FROM (
    SELECT {normalized} AS endpoint,
           {day} AS day,
           {bucket} AS bucket,
           count(*) AS requests,
           sum({response_time}::double precision) AS total,
           count({response_time}) AS responses,
           max({response_time})::double precision AS max_time,
           min({response_time})::double precision AS min_time,
           count(*) FILTER (WHERE {status} >= {error_min}) AS errors,
           max({instant})::timestamptz AS newest,
           count(*) FILTER (WHERE {status} >= 200 AND {status} < 300) AS s2xx,
           count(*) FILTER (WHERE {status} >= 300 AND {status} < 400) AS s3xx,
           count(*) FILTER (WHERE {status} >= 400 AND {status} < 500) AS s4xx,
           count(*) FILTER (WHERE {status} >= 500 AND {status} < 600) AS s5xx,
           count(*) FILTER (WHERE {status} IS NULL OR {status} < 200 OR {status} >= 600) AS sother
    FROM (
        -- the raw rows read (a subquery the planner pulls up: {where} may name system columns,
        -- which a join would hide)
        SELECT * FROM {table} WHERE {endpoint} IS NOT NULL AND {where}
    ) AS raw_rows
    {join}
    GROUP BY 1, 2, 3
) AS per_bucket
GROUP BY 1, 2
) AS per_day
