-- The source table's heap as the measurement of `indexes.*.method: auto` needs it: its size in
-- pages now (not relpages, which only VACUUM and ANALYZE update), the catalog's row estimate
-- and its kind (a partitioned table has no heap of its own).
SELECT pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::bigint AS pages,
       c.reltuples::float8 AS reltuples,
       c.relpages::bigint AS relpages,
       c.relkind::text AS relkind
FROM pg_catalog.pg_class c
WHERE c.oid = %(oid)s
