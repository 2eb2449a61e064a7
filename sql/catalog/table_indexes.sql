-- Every index on one table, with what redundancy and recommendation matching need. The index
-- of a partitioned table (relkind I) has no storage: its size and scans are its partitions'.
SELECT ic.relname AS name,
       ic.oid AS oid,
       am.amname AS method,
       i.indisvalid AS valid,
       i.indisready AS ready,
       i.indisunique AS is_unique,
       i.indisprimary AS is_primary,
       con.conname AS constraint_name,
       i.indexprs IS NOT NULL AS has_expressions,
       i.indpred IS NOT NULL AS has_predicate,
       i.indnatts > i.indnkeyatts AS has_include,
       ARRAY(
           SELECT a.attname::text
           FROM unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
           JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
           WHERE k.ord <= i.indnkeyatts
           ORDER BY k.ord
       ) AS columns,
       i.indclass::oid[]::text[] AS opclasses,
       i.indcollation::oid[]::text[] AS collations,
       i.indoption::int2[]::text[] AS options,
       CASE WHEN ic.relkind = 'I'
            THEN (SELECT coalesce(sum(pg_relation_size(t.relid)), 0)::bigint
                  FROM pg_catalog.pg_partition_tree(ic.oid) t WHERE t.isleaf)
            ELSE pg_relation_size(ic.oid) END AS size_bytes,
       CASE WHEN ic.relkind = 'I'
            THEN (SELECT coalesce(sum(ps.idx_scan), 0)::bigint
                  FROM pg_catalog.pg_partition_tree(ic.oid) t
                  JOIN pg_catalog.pg_stat_all_indexes ps ON ps.indexrelid = t.relid
                  WHERE t.isleaf)
            ELSE coalesce(s.idx_scan, 0) END AS scans,
       pg_get_indexdef(ic.oid) AS definition,
       ic.relkind = 'I' AS partitioned
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_am am ON am.oid = ic.relam
LEFT JOIN pg_catalog.pg_constraint con ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid
LEFT JOIN pg_catalog.pg_stat_all_indexes s ON s.indexrelid = i.indexrelid
WHERE i.indrelid = %(oid)s
ORDER BY ic.relname
