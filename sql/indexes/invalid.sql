-- The invalid indices of one relation: compared before and after a CONCURRENTLY step, the
-- ones it left (a _ccnew, a _ccold, a half-built or half-dropped index) are repaired.
SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE i.indrelid = %(oid)s AND NOT i.indisvalid
ORDER BY c.relname
