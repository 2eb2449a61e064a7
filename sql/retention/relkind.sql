-- Whether the source table is partitioned ('p') or plain ('r').
SELECT relkind::text FROM pg_class WHERE oid = %(oid)s
