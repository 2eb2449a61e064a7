-- Every partition under a partitioned table (all levels, foreign tables left out: they have no
-- indices) with each of its indices: which partition has an index of a recommended definition,
-- valid or not, and to which parent index it is attached (attached_to NULL: to none). A
-- partition without any index is one row with index NULL.
SELECT t.relid::bigint AS partition_oid, pn.nspname AS schema, pc.relname AS partition,
       t.parentrelid::bigint AS parent_oid, t.level, pc.relkind = 'p' AS partitioned,
       ic.oid::bigint AS index_oid, ic.relname AS index, am.amname AS method,
       i.indisvalid AS valid,
       (i.indexprs IS NULL AND i.indpred IS NULL AND i.indnatts = i.indnkeyatts
        AND NOT i.indisunique AND NOT i.indisexclusion) AS plain,
       ARRAY(
           SELECT a.attname::text
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           WHERE k.ord <= i.indnkeyatts
           ORDER BY k.ord
       ) AS columns,
       ARRAY(
           SELECT CASE WHEN o.opcdefault THEN '' ELSE o.opcname::text END
           FROM unnest(i.indclass::oid[]) AS k(opc)
           JOIN pg_catalog.pg_opclass o ON o.oid = k.opc
       ) AS opclasses,
       i.indoption::int2[]::text[] AS options,
       inh.inhparent::bigint AS attached_to
FROM pg_catalog.pg_partition_tree(%(oid)s::oid::regclass) t
JOIN pg_catalog.pg_class pc ON pc.oid = t.relid
JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = t.relid
LEFT JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
LEFT JOIN pg_catalog.pg_am am ON am.oid = ic.relam
LEFT JOIN pg_catalog.pg_inherits inh ON inh.inhrelid = i.indexrelid
WHERE t.level > 0 AND pc.relkind IN ('r', 'p')
ORDER BY t.level, pc.relname, ic.relname
