-- A relation's indices with their definitions after "USING " (method, columns, INCLUDE,
-- WITH, TABLESPACE, WHERE as the server prints them) and comments, to build the same on a
-- replacement.
SELECT ic.relname AS name,
       i.indisunique AS is_unique,
       starts_with(pg_catalog.pg_get_indexdef(i.indexrelid), p.prefix) AS readable,
       substr(pg_catalog.pg_get_indexdef(i.indexrelid), length(p.prefix) + 1) AS definition,
       pg_catalog.obj_description(i.indexrelid, 'pg_class') AS comment
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_class c ON c.oid = i.indrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
    SELECT 'CREATE ' || CASE WHEN i.indisunique THEN 'UNIQUE ' ELSE '' END || 'INDEX '
           || quote_ident(ic.relname) || ' ON ' || quote_ident(n.nspname) || '.'
           || quote_ident(c.relname) || ' USING ' AS prefix
) p
WHERE i.indrelid = %(oid)s
ORDER BY ic.relname
