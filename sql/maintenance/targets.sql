-- A relation maintenance may work on (the source table, the rollup), by exact name, and
-- whether it is populated (a materialized view may not be): from the catalog alone, so that
-- finding the targets needs no right on them.
SELECT c.oid, c.relkind, c.relispopulated AS populated
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
