-- The source table and every partition under it (a partitioned table's storage is in its
-- leaf partitions, relkind r; the parent and any sub-parent, relkind p, have none), with the
-- storage parameters set on each and its estimated rows (-1, never counted: 0).
SELECT c.oid, n.nspname AS schema, c.relname AS name, c.relkind,
       coalesce(c.reloptions, ARRAY[]::text[]) AS options,
       greatest(c.reltuples, 0)::bigint AS rows
FROM (SELECT %(oid)s::oid AS relid
      UNION
      SELECT tree.relid FROM pg_catalog.pg_partition_tree(%(oid)s::oid) tree) members
JOIN pg_catalog.pg_class c ON c.oid = members.relid AND c.relkind IN ('r', 'p')
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY c.oid <> %(oid)s::oid, n.nspname, c.relname
