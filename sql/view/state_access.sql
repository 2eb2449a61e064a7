-- Whether epstats.rollup_state exists, and whether this role may read it (a reporting role
-- granted only the source table and the rollup may not).
SELECT c.oid IS NOT NULL AS present,
       coalesce(has_schema_privilege(n.oid, 'USAGE'), false) AS usage,
       c.oid IS NOT NULL AND has_table_privilege(c.oid, 'SELECT') AS readable
FROM (SELECT 1) AS one
LEFT JOIN pg_catalog.pg_namespace n ON n.nspname = 'epstats'
LEFT JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = 'rollup_state'
