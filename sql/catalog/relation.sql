-- The relation behind a schema-qualified name, matched exactly (no case folding, no search_path).
SELECT c.oid, c.relkind, pg_catalog.pg_get_userbyid(c.relowner) AS owner
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
