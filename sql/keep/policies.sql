-- A table's row-level security policies, each as CREATE POLICY needs it again: permissive or
-- restrictive, the command (r SELECT, a INSERT, w UPDATE, d DELETE, * ALL), the roles (public:
-- PUBLIC among them), the USING and WITH CHECK expressions as the server prints them (valid
-- in this session), and its comment.
SELECT p.oid AS objid,
       p.polname::text AS name,
       p.polpermissive AS permissive,
       p.polcmd::text AS command,
       0 = ANY (p.polroles) AS public,
       ARRAY(SELECT pg_catalog.pg_get_userbyid(r) FROM unnest(p.polroles) r
             WHERE r <> 0 ORDER BY 1) AS roles,
       pg_catalog.pg_get_expr(p.polqual, p.polrelid) AS using_expression,
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid) AS check_expression,
       pg_catalog.obj_description(p.oid, 'pg_policy') AS comment
FROM pg_catalog.pg_policy p
WHERE p.polrelid = %(oid)s
ORDER BY p.polname
