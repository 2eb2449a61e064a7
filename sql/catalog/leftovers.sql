-- What interrupted work left behind, which makes the cleanup task due at once: invalid
-- indices on the given tables (and their partitions: those attached to no parent index; a
-- partitioned index not yet on every partition is `indexes apply`'s to finish) that no build
-- is filling now, a spare relation that should
-- not exist (the new rollup of a `view build --replace` stopped before its swap), and runs
-- still `running` in epstats.runs whose process is gone (a command killed before it could
-- record how they ended: cleanup marks them interrupted), and the old index of a switch of
-- method interrupted after its swap (`<name>_old` beside the valid `<name>` that replaced it,
-- %(switch_old)s and %(switch_of)s). Kind 'building': an invalid index
-- a build is still running on (an epstats killed mid-build leaves its statement running):
-- not a leftover, but said.
WITH tables AS (
    SELECT c.oid
    FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS t(nspname, relname)
      ON n.nspname = t.nspname AND c.relname = t.relname
    UNION
    SELECT t.relid FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    JOIN unnest(%(schemas)s::text[], %(names)s::text[]) AS s(nspname, relname)
      ON n.nspname = s.nspname AND c.relname = s.relname
    CROSS JOIN LATERAL pg_catalog.pg_partition_tree(c.oid) t
    WHERE c.relkind = 'p'
)
SELECT format('%%I.%%I', n.nspname, ic.relname) AS name, 'leftover' AS kind
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
WHERE i.indrelid IN (SELECT oid FROM tables) AND NOT i.indisvalid
  AND ic.relkind <> 'I'  -- a partitioned index not yet on every partition: apply finishes it
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid)
  AND i.indexrelid NOT IN (SELECT p.index_relid FROM pg_catalog.pg_stat_progress_create_index p
                           WHERE p.index_relid IS NOT NULL)
UNION ALL
SELECT format('%%I.%%I (%%s, pid %%s, %%s)', n.nspname, ic.relname, p.command, p.pid,
              coalesce(nullif(a.application_name, ''), 'no application name')),
       'building'
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_catalog.pg_stat_progress_create_index p ON p.index_relid = i.indexrelid
LEFT JOIN pg_catalog.pg_stat_activity a ON a.pid = p.pid
WHERE i.indrelid IN (SELECT oid FROM tables) AND NOT i.indisvalid
UNION ALL
SELECT format('%%I.%%I', n.nspname, ic.relname), 'leftover'
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
JOIN unnest(%(switch_old)s::text[], %(switch_of)s::text[]) AS s(old, target)
  ON s.old = ic.relname
WHERE i.indrelid IN (SELECT oid FROM tables) AND i.indisvalid
  AND EXISTS (SELECT 1
              FROM pg_catalog.pg_index j
              JOIN pg_catalog.pg_class jc ON jc.oid = j.indexrelid
              WHERE j.indrelid = i.indrelid AND j.indisvalid AND jc.relname = s.target)
UNION ALL
SELECT format('%%I.%%I', n.nspname, c.relname), 'leftover'
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = %(spare_schema)s AND c.relname = %(spare_name)s
UNION ALL
SELECT format('the %%s of %%s left running (run %%s)', r.task, r.target, r.id), 'leftover'
FROM epstats.runs r
WHERE r.status = 'running'
  AND r.pid NOT IN (SELECT a.pid FROM pg_catalog.pg_stat_activity a WHERE a.pid IS NOT NULL)
ORDER BY 1
