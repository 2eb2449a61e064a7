-- The columns a copy carries, in order: every column but a generated one (the new table
-- computes those itself).
SELECT a.attname::text AS name
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = %(oid)s::oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum
