-- A relation's columns: the type as declared, and the base type under any domains (typname).
WITH RECURSIVE col AS (
    SELECT a.attname::text AS attname, format_type(a.atttypid, a.atttypmod) AS type,
           a.atttypid AS typid
    FROM pg_catalog.pg_attribute a
    WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT col.attname, col.type, t.typbasetype
    FROM col JOIN pg_catalog.pg_type t ON t.oid = col.typid
    WHERE t.typtype = 'd'
)
SELECT col.attname, col.type, t.typname::text AS base
FROM col JOIN pg_catalog.pg_type t ON t.oid = col.typid
WHERE t.typtype <> 'd'
