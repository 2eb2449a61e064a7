-- Run once per connection, before anything is set: what the server is, and which backend runs
-- our statements (compared with the pid in the connection's cancel key: through a pooler they
-- differ, and session-level settings would outlive us on a shared server connection).
SELECT current_setting('server_version_num')::int AS version_num,
       current_setting('server_version') AS version,
       pg_is_in_recovery() AS in_recovery,
       current_database() AS database,
       current_user AS "user",
       pg_backend_pid() AS backend_pid,
       current_setting('default_transaction_read_only')::bool AS default_read_only
