-- Each relation's size in pages as the catalog last estimated it (pg_class.relpages, set by
-- VACUUM, ANALYZE and CREATE INDEX; no lock taken): how a command's steps share its progress bar.
SELECT c.oid, c.relpages::bigint AS pages
FROM pg_catalog.pg_class c
WHERE c.oid = ANY (%(oids)s::oid[])
