-- The raw endpoints ({key}: the endpoint column as text) of the rows that satisfy {where}
-- which the map lacks for this rule, each normalized once ({normalized} over n.raw), in key
-- order (appends to the primary key's index). Endpoints longer than %(longest)s bytes are left out (a btree key has a size limit):
-- their rows are normalized as they are read.
INSERT INTO epstats.endpoint_map (rule, raw, endpoint)
SELECT %(rule)s, n.raw, {normalized}
FROM (
    SELECT DISTINCT {key} AS raw
    FROM {table}
    WHERE {endpoint} IS NOT NULL AND {where}
) AS n
WHERE octet_length(n.raw) <= %(longest)s
  AND NOT EXISTS (
      SELECT FROM epstats.endpoint_map AS m WHERE m.rule = %(rule)s AND m.raw = n.raw
  )
ORDER BY n.raw
ON CONFLICT DO NOTHING
