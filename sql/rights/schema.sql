-- Which of %(privileges)s (USAGE, CREATE) the current role lacks on a schema, matched exactly;
-- no row when the schema does not exist.
SELECT ARRAY(SELECT p FROM unnest(%(privileges)s::text[]) AS p
             WHERE NOT pg_catalog.has_schema_privilege(n.oid, p)) AS missing
FROM pg_catalog.pg_namespace n
WHERE n.nspname = %(schema)s
