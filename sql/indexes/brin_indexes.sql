-- The valid BRIN indices of one table, for maintain's summarizing of new block ranges.
SELECT c.oid::bigint AS oid, n.nspname AS schema, c.relname AS name
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class c ON c.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_am am ON am.oid = c.relam
WHERE i.indrelid = %(oid)s AND i.indisvalid AND am.amname = 'brin'
ORDER BY c.relname
