-- Which server process runs this statement (compared with the process id in the connection's
-- cancel key, which a pooler mints itself) and the port that server listens on.
SELECT pg_backend_pid(), current_setting('port')::int
