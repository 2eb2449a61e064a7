-- A relation's own settings, beyond its columns: its storage parameters and its TOAST
-- table's (name, value pairs), tablespace, kind, persistence (p, u), replica identity (a table's: d,
-- n, f, i: using identity_index), row-level security (enabled, forced), and the security labels on it
-- and its columns (a replacement cannot give them again: refused); and its name as the server
-- prints it in the definitions of its triggers and rules.
SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) AS qualified,
       (SELECT json_agg(json_build_array(o.option_name, o.option_value))
        FROM pg_catalog.pg_options_to_table(c.reloptions) o) AS options,
       (SELECT json_agg(json_build_array(o.option_name, o.option_value))
        FROM pg_catalog.pg_class t, pg_catalog.pg_options_to_table(t.reloptions) o
        WHERE t.oid = c.reltoastrelid) AS toast_options,
       (SELECT t.spcname::text FROM pg_catalog.pg_tablespace t
        WHERE t.oid = c.reltablespace) AS tablespace,
       c.relkind::text AS relkind,
       c.relpersistence::text AS persistence,
       c.relreplident::text AS replica_identity,
       (SELECT ic.relname::text FROM pg_catalog.pg_index i
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
        WHERE i.indrelid = c.oid AND i.indisreplident) AS identity_index,
       c.relrowsecurity AS row_security,
       c.relforcerowsecurity AS force_row_security,
       ARRAY(SELECT s.provider || ': ' || s.label FROM pg_catalog.pg_seclabel s
             WHERE s.classoid = 'pg_catalog.pg_class'::regclass AND s.objoid = c.oid
             ORDER BY s.objsubid, s.provider) AS security_labels
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = %(oid)s
