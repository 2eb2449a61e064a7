-- Per day of the window (and for the whole window: day NULL), the requests read, the distinct
-- raw endpoints and the distinct normalized ones. {sample} is empty or a TABLESAMPLE clause;
-- each distinct raw endpoint is normalized once ({normalized} over d.raw).
WITH r AS (
    SELECT {endpoint}::text AS raw, {day} AS day
    FROM {table} {sample}
    WHERE {endpoint} IS NOT NULL AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
), n AS (
    SELECT d.raw, {normalized} AS endpoint FROM (SELECT DISTINCT raw FROM r) AS d
)
SELECT r.day,
       count(*) AS requests,
       count(DISTINCT r.raw) AS raw_endpoints,
       count(DISTINCT n.endpoint) AS endpoints
FROM r JOIN n ON n.raw = r.raw
GROUP BY GROUPING SETS ((r.day), ())
ORDER BY r.day NULLS LAST
