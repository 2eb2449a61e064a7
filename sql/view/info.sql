-- What the rollup relation is: kind, populated, our comment, columns, size, indices; read
-- from the catalog without waiting for a lock on the rollup.
SELECT c.oid,
       c.relkind::text AS relkind,
       c.relispopulated AS populated,
       obj_description(c.oid, 'pg_class') AS comment,
       -- the size takes a lock on the rollup and its indices: while anyone holds or awaits an
       -- ACCESS EXCLUSIVE lock on them (a plain REFRESH, a REINDEX), which would make this wait,
       -- it is the catalog's page counts instead (as of the last VACUUM, ANALYZE or build)
       CASE WHEN EXISTS (
                SELECT 1 FROM pg_catalog.pg_locks l
                WHERE l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
                  AND l.pid <> pg_backend_pid()
                  AND l.database = (SELECT d.oid FROM pg_catalog.pg_database d
                                    WHERE d.datname = current_database())
                  AND l.relation IN (SELECT c.oid UNION ALL SELECT c.reltoastrelid
                                     UNION ALL SELECT i.indexrelid FROM pg_catalog.pg_index i
                                     WHERE i.indrelid IN (c.oid, c.reltoastrelid)))
            THEN (SELECT sum(x.relpages)::bigint * current_setting('block_size')::bigint
                  FROM pg_catalog.pg_class x
                  WHERE x.oid IN (c.oid, c.reltoastrelid)
                     OR x.oid IN (SELECT i.indexrelid FROM pg_catalog.pg_index i
                                  WHERE i.indrelid IN (c.oid, c.reltoastrelid)))
            ELSE pg_total_relation_size(c.oid) END AS size_bytes,
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
