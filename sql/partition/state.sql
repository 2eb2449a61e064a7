-- Where a conversion of the source table stands: the kinds of the table, of the partitioned
-- table built beside it and of the old one kept after the swap, whether the capture trigger
-- is on the table, the capture table's existence, and the progress note on the new table.
SELECT (SELECT c.relkind FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
        ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s AND c.relname = %(table)s)
           AS table_kind,
       (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
        ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s AND c.relname = %(new)s)
           AS new_oid,
       (SELECT pg_catalog.obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND c.relname = %(new)s) AS new_note,
       (SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
        ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s AND c.relname = %(retired)s)
           AS retired_oid,
       (SELECT pg_catalog.obj_description(c.oid, 'pg_class') FROM pg_catalog.pg_class c
        JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = %(schema)s AND c.relname = %(retired)s) AS retired_note,
       EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n
               ON n.oid = c.relnamespace WHERE n.nspname = %(schema)s
               AND c.relname = %(captured)s) AS capturing_table,
       EXISTS (SELECT FROM pg_catalog.pg_trigger t JOIN pg_catalog.pg_class c ON c.oid = t.tgrelid
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE n.nspname = %(schema)s AND c.relname = %(table)s
               AND t.tgname = %(trigger)s) AS capturing
