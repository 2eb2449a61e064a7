-- A relation's grants, on the whole relation (column NULL) and on single columns, except the
-- owner's own: what a replacement must be given again.
SELECT NULL::text AS column_name,
       CASE WHEN e.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(e.grantee) END AS grantee,
       e.privilege_type AS privilege, e.is_grantable AS grantable
FROM pg_catalog.pg_class c, aclexplode(c.relacl) e
WHERE c.oid = %(oid)s AND e.grantee <> c.relowner
UNION ALL
SELECT a.attname::text,
       CASE WHEN e.grantee = 0 THEN NULL ELSE pg_catalog.pg_get_userbyid(e.grantee) END,
       e.privilege_type, e.is_grantable
FROM pg_catalog.pg_attribute a, aclexplode(a.attacl) e
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped AND a.attacl IS NOT NULL
ORDER BY 1 NULLS FIRST, 2 NULLS FIRST, 4, 3
