-- Before leaving a server connection that a session pool hands to the next client: drop every
-- setting, prepared statement and session lock of ours (PgBouncer's own server_reset_query may
-- have been configured away).
DISCARD ALL
