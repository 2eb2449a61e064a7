-- The busiest normalized endpoints of the window (or of its sample): requests, how many raw
-- endpoints each gathers, and one of them.
WITH r AS (
    SELECT {endpoint}::text AS raw
    FROM {table} {sample}
    WHERE {endpoint} IS NOT NULL AND {timestamp} >= {from_ts} AND {timestamp} < {to_ts}
), n AS (
    SELECT d.raw, {normalized} AS endpoint FROM (SELECT DISTINCT raw FROM r) AS d
)
SELECT n.endpoint,
       count(*) AS requests,
       count(DISTINCT r.raw) AS raw_endpoints,
       min(r.raw) AS example
FROM r JOIN n ON n.raw = r.raw
GROUP BY n.endpoint
ORDER BY requests DESC, n.endpoint
LIMIT %(limit)s
