-- A view as `CREATE VIEW` needs it again: its owner, options and query (its comments come
-- from keep/comments).
SELECT pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       array_to_string(c.reloptions, ', ') AS options,
       pg_catalog.pg_get_viewdef(c.oid) AS definition
FROM pg_catalog.pg_class c
WHERE c.oid = %(oid)s
