CREATE TABLE {view} (
    endpoint text NOT NULL,
    day date NOT NULL,
    request_count bigint NOT NULL,
    avg_response_time double precision,
    max_response_time double precision,
    min_response_time double precision,
    error_count bigint NOT NULL,
    total_response_time double precision,
    response_count bigint NOT NULL,
    max_timestamp timestamptz NOT NULL
)
