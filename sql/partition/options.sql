-- A relation's storage parameters (name=value strings).
SELECT coalesce(c.reloptions, ARRAY[]::text[]) AS options
FROM pg_catalog.pg_class c WHERE c.oid = %(oid)s::oid
