SELECT phase, sample_blks_scanned, sample_blks_total, child_tables_done, child_tables_total,
       ext_stats_computed, ext_stats_total
FROM pg_catalog.pg_stat_progress_analyze WHERE pid = %(pid)s
