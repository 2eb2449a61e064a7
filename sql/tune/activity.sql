-- What the table's rows went through since the statistics were reset, its partitions summed:
-- inserts against updates and deletes (is it an append-only log?), and its size.
SELECT coalesce(sum(s.n_tup_ins), 0)::bigint AS inserted,
       coalesce(sum(s.n_tup_upd), 0)::bigint AS updated,
       coalesce(sum(s.n_tup_del), 0)::bigint AS deleted,
       coalesce(sum(greatest(c.reltuples, 0)), 0)::bigint AS rows,
       coalesce(sum(c.relpages), 0)::bigint AS pages
FROM (SELECT %(oid)s::oid AS relid
      UNION
      SELECT tree.relid FROM pg_catalog.pg_partition_tree(%(oid)s::oid) tree) members
JOIN pg_catalog.pg_class c ON c.oid = members.relid AND c.relkind = 'r'
LEFT JOIN pg_catalog.pg_stat_all_tables s ON s.relid = c.oid
