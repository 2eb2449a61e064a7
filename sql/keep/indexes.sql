-- A relation's indices with their definitions after "USING " (method, columns, INCLUDE,
-- WITH, WHERE as the server prints them), their shape (the definition without its storage
-- parameters: what says whether it is one of epstats's own), storage parameters (name, value
-- pairs), tablespace (pg_get_indexdef leaves it out) and comments, to build the same on a
-- replacement.
SELECT ic.relname AS name,
       i.indisunique AS is_unique,
       starts_with(pg_catalog.pg_get_indexdef(i.indexrelid), p.prefix) AS readable,
       substr(pg_catalog.pg_get_indexdef(i.indexrelid), length(p.prefix) + 1) AS definition,
       CASE WHEN ic.reloptions IS NULL OR i.indpred IS NOT NULL
            THEN substr(pg_catalog.pg_get_indexdef(i.indexrelid), length(p.prefix) + 1)
            ELSE split_part(substr(pg_catalog.pg_get_indexdef(i.indexrelid),
                                   length(p.prefix) + 1), ' WITH (', 1)
       END AS shape,
       (SELECT json_agg(json_build_array(o.option_name, o.option_value))
        FROM pg_catalog.pg_options_to_table(ic.reloptions) o) AS options,
       (SELECT t.spcname::text FROM pg_catalog.pg_tablespace t
        WHERE t.oid = ic.reltablespace) AS tablespace,
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
