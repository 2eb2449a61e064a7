-- Whether this role can read epstats.endpoint_map (it exists, with USAGE on its schema and
-- SELECT on it): reports then join it, else normalize each row by the expression.
SELECT EXISTS (
    SELECT 1
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = 'epstats' AND c.relname = 'endpoint_map'
      AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')
      AND pg_catalog.has_table_privilege(c.oid, 'SELECT')
) AS readable
