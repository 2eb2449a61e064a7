-- Runs still `running` whose server process is gone: epstats was killed (SIGKILL) or lost its
-- connection before it could record how they ended. They are interrupted, not running.
UPDATE epstats.runs
SET status = 'interrupted', finished_at = clock_timestamp(),
    error = 'its epstats process ended before the run did (killed, or its connection was lost)'
WHERE status = 'running'
  AND pid NOT IN (SELECT a.pid FROM pg_catalog.pg_stat_activity a WHERE a.pid IS NOT NULL)
