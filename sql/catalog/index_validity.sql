-- Whether each index on one table is valid, from the catalog alone: no size and no definition,
-- which would wait for a lock on an index someone holds ACCESS EXCLUSIVE (a plain REFRESH of
-- the rollup, a REINDEX). What a task's rights depend on (rights.task_needs).
SELECT ic.relname AS name, ic.oid AS oid, i.indisvalid AS valid
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
WHERE i.indrelid = %(oid)s
ORDER BY ic.relname
