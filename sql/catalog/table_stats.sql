-- Sizes from the catalog and activity from pg_stat_all_tables: never a count(*). A partitioned
-- table has neither storage nor activity of its own: its leaf partitions' are summed, its
-- transaction-ID age is the oldest partition's, and it was last vacuumed (analyzed) when the
-- least recently vacuumed (analyzed) partition that ever held a row was.
WITH t AS (
    SELECT c.oid, c.relkind FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname = %(schema)s AND c.relname = %(name)s
), members AS (
    SELECT t.oid AS relid FROM t WHERE t.relkind <> 'p'
    UNION ALL
    SELECT tree.relid FROM t, pg_catalog.pg_partition_tree(t.oid) tree
    WHERE t.relkind = 'p' AND tree.isleaf
), m AS (
    SELECT c.oid, c.reltuples, c.reltoastrelid, c.relfrozenxid, s.*,
           (t.relkind <> 'p' OR c.reltuples > 0 OR s.n_tup_ins > 0 OR s.n_live_tup > 0) AS active
    FROM members
    JOIN pg_catalog.pg_class c ON c.oid = members.relid
    CROSS JOIN t
    LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
)
SELECT sum(pg_relation_size(m.oid))::bigint AS heap_bytes,
       sum(pg_indexes_size(m.oid))::bigint AS index_bytes,
       sum(coalesce(pg_total_relation_size(NULLIF(m.reltoastrelid, 0)), 0))::bigint AS toast_bytes,
       sum(pg_total_relation_size(m.oid))::bigint AS total_bytes,
       CASE WHEN bool_or(m.reltuples < 0) AND NOT bool_or(m.reltuples > 0) THEN NULL
            ELSE sum(greatest(m.reltuples, 0))::bigint END AS estimated_rows,
       sum(m.n_live_tup)::bigint AS live_tuples,
       sum(m.n_dead_tup)::bigint AS dead_tuples,
       sum(m.n_mod_since_analyze)::bigint AS modified_since_analyze,
       CASE WHEN bool_and(m.last_vacuum IS NOT NULL OR NOT m.active)
            THEN min(m.last_vacuum) FILTER (WHERE m.active) END AS last_vacuum,
       CASE WHEN bool_and(m.last_autovacuum IS NOT NULL OR NOT m.active)
            THEN min(m.last_autovacuum) FILTER (WHERE m.active) END AS last_autovacuum,
       CASE WHEN bool_and(m.last_analyze IS NOT NULL OR NOT m.active)
            THEN min(m.last_analyze) FILTER (WHERE m.active) END AS last_analyze,
       CASE WHEN bool_and(m.last_autoanalyze IS NOT NULL OR NOT m.active)
            THEN min(m.last_autoanalyze) FILTER (WHERE m.active) END AS last_autoanalyze,
       sum(m.seq_scan)::bigint AS seq_scan,
       sum(m.idx_scan)::bigint AS idx_scan,
       sum(m.n_tup_ins)::bigint AS inserted,
       sum(m.n_tup_upd + m.n_tup_del)::bigint AS updated_or_deleted,
       max(age(m.relfrozenxid)) AS xid_age
FROM m
HAVING count(*) > 0
