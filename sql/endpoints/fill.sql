-- The raw endpoints ({key}: the endpoint column as text) of the rows that satisfy {where}
-- which the map lacks for this rule, each normalized once ({normalized} over n.raw), in key
-- order (appends to the primary key's index). The distinct endpoints are found first (OFFSET 0
-- keeps {wanted}, a test per endpoint, out of the scan: once per distinct endpoint, not per
-- row), then those the map has are left out, and only the others are normalized. Endpoints
-- longer than %(longest)s bytes are left out (a btree key has a size limit): their rows are
-- normalized as they are read. Nothing is mapped unless this transaction holds the rule's
-- fill lock (endpoints/fill_lock, taken by an earlier statement): another fill of the rule
-- cannot add the same keys meanwhile, and no ON CONFLICT is needed.
INSERT INTO epstats.endpoint_map (rule, raw, endpoint)
SELECT %(rule)s::bigint, n.raw, {normalized}
FROM (
    SELECT DISTINCT {key} AS raw
    FROM {table}
    WHERE {endpoint} IS NOT NULL AND {where}
    OFFSET 0
) AS n
WHERE octet_length(n.raw) <= %(longest)s
  AND {wanted}
  AND EXISTS (
      SELECT FROM pg_locks AS l
      WHERE l.locktype = 'advisory' AND l.granted AND l.pid = pg_backend_pid()
        AND l.objsubid = 2 AND l.classid = %(k1)s::oid
        AND l.objid = hashtext('epstats.endpoint_map:' || %(rule)s::bigint::text)::oid
        AND l.database = (SELECT d.oid FROM pg_database AS d WHERE d.datname = current_database())
  )
  AND NOT EXISTS (
      SELECT FROM epstats.endpoint_map AS m WHERE m.rule = %(rule)s AND m.raw = n.raw
  )
ORDER BY n.raw
