-- Sequences owned by the table's columns (serial): after the swap the new table's columns own
-- them, so that dropping the old table keeps them.
SELECT sn.nspname::text AS schema, s.relname::text AS name, a.attname::text AS column_name
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace sn ON sn.oid = s.relnamespace
JOIN pg_catalog.pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid
WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.refobjid = %(oid)s::oid
  AND d.deptype = 'a'
ORDER BY 1, 2
