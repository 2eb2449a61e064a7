-- The BRIN operator classes of a column's type (minmax by default; minmax-multi from
-- PostgreSQL 14 on): none means a BRIN cannot index the column.
SELECT o.opcname::text AS name, o.opcdefault AS is_default
FROM pg_catalog.pg_opclass o
JOIN pg_catalog.pg_am am ON am.oid = o.opcmethod
JOIN pg_catalog.pg_attribute a ON a.atttypid = o.opcintype
WHERE am.amname = 'brin' AND a.attrelid = %(oid)s AND a.attname = %(column)s
  AND NOT a.attisdropped
ORDER BY o.opcdefault DESC, o.opcname
