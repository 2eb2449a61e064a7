SELECT phase, heap_blks_scanned, heap_blks_total
FROM pg_catalog.pg_stat_progress_vacuum WHERE pid = %(pid)s
