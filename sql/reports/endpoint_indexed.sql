-- Whether a valid btree or hash index of the source table leads with the endpoint column
-- (and has no predicate): then endpoint_seen_raw is an index probe, not a scan of the table.
SELECT EXISTS (
    SELECT 1
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
    JOIN pg_catalog.pg_namespace n ON n.oid = t.relnamespace
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE n.nspname = %(schema)s AND t.relname = %(name)s AND a.attname = %(column)s
      AND i.indisvalid AND i.indpred IS NULL AND am.amname IN ('btree', 'hash')
) AS indexed
