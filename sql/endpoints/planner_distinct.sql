-- The planner's estimate of the endpoint column's distinct values in the whole table (from
-- the last ANALYZE; NULL before one): negative n_distinct is a fraction of the rows.
SELECT CASE WHEN s.n_distinct >= 0 THEN s.n_distinct
            ELSE -s.n_distinct * greatest(c.reltuples, 0) END AS n_distinct
FROM pg_stats AS s
JOIN pg_class AS c ON c.oid = %(oid)s
WHERE s.schemaname = %(schema)s AND s.tablename = %(table)s AND s.attname = %(column)s
ORDER BY s.inherited
LIMIT 1
