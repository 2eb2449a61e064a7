-- The guide's request log, with the configured names.
CREATE TABLE IF NOT EXISTS {table} (
    {endpoint} text NOT NULL,
    {timestamp} timestamptz NOT NULL,
    {response_time} double precision,
    {status} integer
)
