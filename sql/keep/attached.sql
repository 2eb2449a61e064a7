-- What depends on a relation, besides what every table and view has (row type, TOAST
-- table, its indices, NOT NULL constraints, its own _RETURN rule): one row per dependent
-- object and column of the relation it uses (column_name NULL: none, or the whole relation).
-- The views reading it (view_oid: a replacement recreates them), and anything else (other:
-- what the server calls it; catalog and objid: what it is, for a replacement to carry it over
-- or refuse it).
SELECT DISTINCT
       v.oid AS view_oid,
       v.relkind::text AS view_kind,
       vn.nspname AS view_schema,
       v.relname AS view_name,
       d.classid::regclass::text AS catalog,
       d.objid,
       CASE WHEN v.oid IS NULL OR v.relkind <> 'v' OR d.deptype <> 'n'
            THEN pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) END AS other,
       a.attname::text AS column_name
FROM pg_catalog.pg_depend d
LEFT JOIN pg_catalog.pg_rewrite r ON d.classid = 'pg_catalog.pg_rewrite'::regclass
      AND r.oid = d.objid
LEFT JOIN pg_catalog.pg_class v ON v.oid = r.ev_class AND r.ev_class <> %(oid)s
LEFT JOIN pg_catalog.pg_namespace vn ON vn.oid = v.relnamespace
LEFT JOIN pg_catalog.pg_attribute a ON d.refobjsubid > 0 AND a.attrelid = d.refobjid
      AND a.attnum = d.refobjsubid
WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = %(oid)s
  AND d.deptype IN ('n', 'a')
  AND NOT (d.classid = 'pg_catalog.pg_class'::regclass
           AND (SELECT relkind FROM pg_catalog.pg_class WHERE oid = d.objid) IN ('i', 'I'))
  AND NOT (d.classid = 'pg_catalog.pg_constraint'::regclass
           AND (SELECT contype FROM pg_catalog.pg_constraint WHERE oid = d.objid) = 'n')
  -- (r.oid IS NULL: not a rule; a plain NOT would drop every row that is not one)
  AND (r.oid IS NULL OR NOT (r.ev_class = %(oid)s AND r.rulename = '_RETURN'))
ORDER BY 3, 4, 5, 6, 8
