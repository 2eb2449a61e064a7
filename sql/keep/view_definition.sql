-- A view as `CREATE VIEW` needs it again: its owner, options, query and comment.
SELECT pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       array_to_string(c.reloptions, ', ') AS options,
       pg_catalog.pg_get_viewdef(c.oid) AS definition,
       pg_catalog.obj_description(c.oid, 'pg_class') AS comment
FROM pg_catalog.pg_class c
WHERE c.oid = %(oid)s
