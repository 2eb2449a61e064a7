-- What the current role may do on one relation, matched exactly: which of %(privileges)s it
-- lacks, whether it has its owner's rights (the owner, a member of the owning role, or a
-- superuser), and whether it may REINDEX or REFRESH it: from PostgreSQL 17 the MAINTAIN
-- privilege allows it (the owner has it; pg_maintain gives it on every relation). Catalog
-- only: any role may ask.
SELECT c.oid, format('%%I.%%I', n.nspname, c.relname) AS relation,
       c.relkind,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       o.rolsuper AS owner_is_superuser,
       pg_catalog.pg_has_role(c.relowner, 'USAGE') AS owns,
       pg_catalog.has_table_privilege(c.oid, 'MAINTAIN') AS may_maintain,
       ARRAY(SELECT p FROM unnest(%(privileges)s::text[]) AS p
             WHERE NOT pg_catalog.has_table_privilege(c.oid, p)) AS missing
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_roles o ON o.oid = c.relowner
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
