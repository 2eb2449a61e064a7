-- Distinct endpoints among the raw rows from {from_ts} to {to_ts}, per {day} (a local day, or
-- one constant for a slice of the newest rows): the rows read, the distinct raw endpoints and
-- how many of them were seen once, the same of the normalized endpoints (each distinct raw
-- endpoint normalized once: {normalized} over d.raw). Those seen once scale a slice's count to
-- a day's (the estimator ANALYZE uses for n_distinct). A range of the timestamp index.
WITH per_raw AS (
    SELECT {day} AS day, {endpoint}::text AS raw, count(*) AS n
    FROM {table}
    WHERE {endpoint} IS NOT NULL AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
    GROUP BY 1, 2
), m AS (
    SELECT d.raw, {normalized} AS endpoint FROM (SELECT DISTINCT raw FROM per_raw) AS d
), per_endpoint AS (
    SELECT p.day, m.endpoint, sum(p.n) AS n
    FROM per_raw AS p JOIN m ON m.raw = p.raw
    GROUP BY p.day, m.endpoint
), raw AS (
    SELECT day, sum(n)::bigint AS requests, count(*) AS raw, count(*) FILTER (WHERE n = 1) AS raw_once
    FROM per_raw
    GROUP BY day
), normalized AS (
    SELECT day, count(*) AS endpoints, count(*) FILTER (WHERE n = 1) AS endpoints_once
    FROM per_endpoint
    GROUP BY day
)
SELECT raw.day, raw.requests, raw.raw, raw.raw_once, normalized.endpoints, normalized.endpoints_once
FROM raw JOIN normalized ON normalized.day IS NOT DISTINCT FROM raw.day
ORDER BY raw.day
