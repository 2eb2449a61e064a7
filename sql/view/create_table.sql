-- The incremental rollup: data rows have an endpoint and a day; the one bookkeeping row has
-- neither, and alone carries as_of and snapshot.
CREATE TABLE {view} (
    endpoint text,
    day date,
    request_count bigint NOT NULL,
    avg_response_time double precision,
    max_response_time double precision,
    min_response_time double precision,
    error_count bigint NOT NULL,
    total_response_time double precision,
    response_count bigint NOT NULL,
    max_timestamp timestamptz,
    status_2xx bigint NOT NULL,
    status_3xx bigint NOT NULL,
    status_4xx bigint NOT NULL,
    status_5xx bigint NOT NULL,
    status_other bigint NOT NULL,
    as_of timestamptz,
    snapshot text,
    latency_buckets integer[],
    latency_counts bigint[],
    CHECK ((endpoint IS NULL) = (as_of IS NOT NULL) AND (endpoint IS NULL) = (day IS NULL))
)
