-- PostgreSQL 16 added reserved_connections (for roles with pg_use_reserved_connections).
SELECT current_setting('max_connections')::int AS max_connections,
       current_setting('superuser_reserved_connections')::int
         + current_setting('reserved_connections')::int AS reserved_connections
