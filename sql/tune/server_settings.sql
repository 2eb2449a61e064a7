-- The server's own values of the autovacuum settings a table's storage parameters override
-- (those this server knows: the insert ones from 13, the max threshold from 18).
SELECT name, setting FROM pg_catalog.pg_settings WHERE name = ANY(%(names)s::text[])
