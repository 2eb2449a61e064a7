-- Rows changed since the last ANALYZE of each maintained relation (the source table, the
-- rollup), against its rows: a partitioned table's partitions summed (the parent has no
-- storage and no counters of its own). reltuples, or n_live_tup where it is still unknown
-- (-1: never vacuumed or analyzed since it was created or truncated).
SELECT r.nspname AS schema, r.relname AS name,
       coalesce(sum(s.n_mod_since_analyze), 0)::bigint AS modified,
       coalesce(sum(CASE WHEN p.reltuples >= 0 THEN p.reltuples::bigint
                         ELSE coalesce(s.n_live_tup, 0) END), 0)::bigint AS rows
FROM (SELECT c.oid, n.nspname, c.relname
      FROM pg_catalog.pg_class c
      JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
      JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS t(schema, name)
        ON n.nspname = t.schema AND c.relname = t.name
      WHERE c.relkind IN ('r', 'p', 'm')) r
CROSS JOIN LATERAL (
    SELECT r.oid AS relid
    UNION
    SELECT tree.relid FROM pg_catalog.pg_partition_tree(r.oid) tree
) members
JOIN pg_catalog.pg_class p ON p.oid = members.relid AND p.relkind IN ('r', 'm')
LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = p.oid
GROUP BY r.nspname, r.relname
ORDER BY 1, 2
