-- The relations (the table and its partitions) that the current role may not VACUUM or
-- ANALYZE, with their owners. Up to PostgreSQL 16 only the owner (or a role that has the
-- owner's privileges) and the database owner may; the server skips the rest with a WARNING.
-- Whether the owner is a superuser: its role is never to be granted.
SELECT format('%%I.%%I', n.nspname, c.relname) AS relation, c.relkind::text AS relkind,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner, o.rolsuper AS owner_is_superuser
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
WHERE (c.oid = %(oid)s OR c.oid IN (SELECT relid FROM pg_catalog.pg_partition_tree(%(oid)s)))
  AND c.relkind IN ('r', 'm', 'p')
  AND NOT pg_catalog.pg_has_role(c.relowner, 'USAGE')
  AND NOT (SELECT pg_catalog.pg_has_role(d.datdba, 'USAGE') FROM pg_catalog.pg_database d
           WHERE d.datname = current_database())
ORDER BY 1
