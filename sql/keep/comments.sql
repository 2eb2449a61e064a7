-- A relation's comment (column_name NULL) and its columns' comments: what a replacement, or a
-- view created again, is given again.
SELECT a.attname::text AS column_name, d.description AS comment
FROM pg_catalog.pg_description d
LEFT JOIN pg_catalog.pg_attribute a
       ON a.attrelid = d.objoid AND a.attnum = d.objsubid AND d.objsubid > 0
WHERE d.classoid = 'pg_catalog.pg_class'::regclass AND d.objoid = %(oid)s
  AND (d.objsubid = 0 OR (a.attnum IS NOT NULL AND NOT a.attisdropped))
ORDER BY d.objsubid
