-- The source table's partitions (epstats's own reader of them: pg_inherits and each bound as
-- the server prints it), their range bounds as instants (a naive column's wall-clock bound
-- read in source.naive_timezone), whether one is the DEFAULT partition, and whether a DETACH
-- ... CONCURRENTLY of it was interrupted (never, before PostgreSQL 14: no such DETACH).
SELECT c.oid, n.nspname AS schema, c.relname AS name,
       pg_get_expr(c.relpartbound, c.oid) AS bound,
       pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default,
       false AS detach_pending,
       CASE WHEN %(naive)s
            THEN substring(pg_get_expr(c.relpartbound, c.oid) FROM $$FROM \('([^']*)'\)$$)::timestamp
                 AT TIME ZONE %(naive_tz)s
            ELSE substring(pg_get_expr(c.relpartbound, c.oid) FROM $$FROM \('([^']*)'\)$$)::timestamptz
       END AS lower_at,
       CASE WHEN %(naive)s
            THEN substring(pg_get_expr(c.relpartbound, c.oid) FROM $$TO \('([^']*)'\)$$)::timestamp
                 AT TIME ZONE %(naive_tz)s
            ELSE substring(pg_get_expr(c.relpartbound, c.oid) FROM $$TO \('([^']*)'\)$$)::timestamptz
       END AS upper_at
FROM pg_inherits i
JOIN pg_class c ON c.oid = i.inhrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE i.inhparent = %(parent)s
ORDER BY 7 NULLS FIRST, 3
