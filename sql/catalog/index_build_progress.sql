-- Progress of one backend's index build, for the progress bar.
SELECT phase, blocks_done, blocks_total, tuples_done, tuples_total
FROM pg_catalog.pg_stat_progress_create_index
WHERE pid = %(pid)s
