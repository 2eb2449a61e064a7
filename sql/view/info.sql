-- What the rollup relation is: kind, populated, our comment, columns, size, indices.
SELECT c.oid,
       c.relkind::text AS relkind,
       c.relispopulated AS populated,
       obj_description(c.oid, 'pg_class') AS comment,
       pg_total_relation_size(c.oid) AS size_bytes,
       CASE WHEN c.reltuples < 0 THEN NULL ELSE c.reltuples::bigint END AS estimated_rows,
       ARRAY(
           SELECT a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
           FROM pg_catalog.pg_attribute a
           WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
           ORDER BY a.attnum
       ) AS columns,
       EXISTS (
           SELECT 1 FROM pg_catalog.pg_index i
           WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indpred IS NULL
             AND i.indexprs IS NULL AND i.indnkeyatts = 2
             AND ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) k(n)
                       JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.n)
                 <@ ARRAY['endpoint', 'day']
       ) AS has_unique_key,
       ARRAY(SELECT ic.relname::text FROM pg_catalog.pg_index i
             JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
             WHERE i.indrelid = c.oid ORDER BY 1) AS index_names
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
