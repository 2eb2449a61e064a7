-- The sequences feeding the columns of the relation %(oid)s: owned by a column (serial, OWNED
-- BY), an identity column's, or named by a column default's nextval(). For each: its limits,
-- its last value (NULL when never used, or when this role may not read it: `readable`), and
-- the limits of the column's type (under any domain): an integer column stops every INSERT at
-- 2^31 - 1 whatever the sequence's own maximum.
WITH RECURSIVE feeds AS (
    SELECT d.objid AS seq, d.refobjsubid AS attnum
    FROM pg_catalog.pg_depend d
    WHERE d.classid = 'pg_catalog.pg_class'::regclass
      AND d.refclassid = 'pg_catalog.pg_class'::regclass
      AND d.refobjid = %(oid)s AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
    UNION
    SELECT d.refobjid, ad.adnum
    FROM pg_catalog.pg_attrdef ad
    JOIN pg_catalog.pg_depend d
      ON d.classid = 'pg_catalog.pg_attrdef'::regclass AND d.objid = ad.oid
     AND d.refclassid = 'pg_catalog.pg_class'::regclass
    WHERE ad.adrelid = %(oid)s
),
col AS (
    SELECT f.seq, a.attname::text AS attname, format_type(a.atttypid, a.atttypmod) AS type,
           a.atttypid AS typid
    FROM feeds f
    JOIN pg_catalog.pg_attribute a ON a.attrelid = %(oid)s AND a.attnum = f.attnum
    WHERE NOT a.attisdropped
    UNION ALL
    SELECT col.seq, col.attname, col.type, t.typbasetype
    FROM col JOIN pg_catalog.pg_type t ON t.oid = col.typid
    WHERE t.typtype = 'd'
)
SELECT format('%%I.%%I', n.nspname, c.relname) AS sequence,
       col.attname AS column_name, col.type AS column_type,
       CASE t.typname WHEN 'int2' THEN -32768 WHEN 'int4' THEN -2147483648
                      WHEN 'int8' THEN -9223372036854775808 END::numeric AS type_min,
       CASE t.typname WHEN 'int2' THEN 32767 WHEN 'int4' THEN 2147483647
                      WHEN 'int8' THEN 9223372036854775807 END::numeric AS type_max,
       s.seqmin::numeric AS min_value, s.seqmax::numeric AS max_value,
       s.seqincrement AS increment, s.seqcycle AS cycles,
       has_sequence_privilege(c.oid, 'SELECT,USAGE') AS readable,
       CASE WHEN has_sequence_privilege(c.oid, 'SELECT,USAGE')
            THEN pg_catalog.pg_sequence_last_value(c.oid) END::numeric AS last_value
FROM col
JOIN pg_catalog.pg_type t ON t.oid = col.typid AND t.typtype <> 'd'
JOIN pg_catalog.pg_sequence s ON s.seqrelid = col.seq
JOIN pg_catalog.pg_class c ON c.oid = col.seq
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1, 2
