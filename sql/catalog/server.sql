-- Server-wide facts for `status`, `check` and `advise`; readable by any role.
SELECT current_setting('server_version') AS server_version,
       current_database() AS database,
       pg_database_size(current_database()) AS database_bytes,
       pg_is_in_recovery() AS in_recovery,
       pg_postmaster_start_time() AS started_at,
       current_setting('max_connections')::int AS max_connections,
       current_setting('autovacuum_freeze_max_age')::bigint AS autovacuum_freeze_max_age,
       now() AS now
