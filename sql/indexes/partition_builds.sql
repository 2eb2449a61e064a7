-- Index builds running now on any partition of a partitioned table (ours or anybody's): an
-- invalid index one is filling is not a leftover to drop.
SELECT p.index_relid::bigint AS index_relid
FROM pg_catalog.pg_stat_progress_create_index p
WHERE p.relid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(%(oid)s::oid::regclass) t)
  AND p.index_relid IS NOT NULL AND p.pid <> pg_backend_pid()
