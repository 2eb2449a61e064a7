-- Progress of one backend's index build, for the progress bar (the command and the lockers
-- tell its phases and their counters apart).
SELECT command, phase, blocks_done, blocks_total, tuples_done, tuples_total,
       lockers_done, lockers_total
FROM pg_catalog.pg_stat_progress_create_index
WHERE pid = %(pid)s
