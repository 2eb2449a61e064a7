SELECT phase, heap_blks_scanned, heap_blks_vacuumed, heap_blks_total,
       NULL::bigint AS indexes_processed, NULL::bigint AS indexes_total
FROM pg_catalog.pg_stat_progress_vacuum WHERE pid = %(pid)s
