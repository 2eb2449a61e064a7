SELECT phase, sample_blks_scanned, sample_blks_total
FROM pg_catalog.pg_stat_progress_analyze WHERE pid = %(pid)s
