-- Reads and writes since the statistics were reset, for this database.
SELECT tup_returned + tup_fetched AS reads,
       tup_inserted + tup_updated + tup_deleted AS writes,
       stats_reset
FROM pg_catalog.pg_stat_database WHERE datname = current_database()
