-- Estimated btree bloat per index, from the catalog and pg_stats (no extension needed):
-- expected pages = tuples x (8-byte tuple header + aligned key width + 4-byte line pointer)
-- / (usable page bytes x fillfactor); bloat = 1 - expected / actual. NULL when the table
-- has no statistics yet (never analyzed), when the role may not see them (pg_stats shows only
-- the columns it may SELECT), or the index is not a btree; the columns after it say which.
WITH idx AS (
    SELECT ic.oid, ic.relname, am.amname, ic.relpages, ic.reltuples, i.indrelid, i.indkey,
           i.indnkeyatts, i.indisvalid,
           coalesce((SELECT option_value::int FROM pg_options_to_table(ic.reloptions)
                     WHERE option_name = 'fillfactor'), 90) AS fillfactor
    FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    JOIN pg_catalog.pg_am am ON am.oid = ic.relam
    WHERE i.indrelid = %(oid)s
), widths AS (
    SELECT idx.oid,
           sum(s.avg_width) AS key_width,
           count(*) AS key_columns,
           count(s.avg_width) AS columns_with_stats,
           count(*) FILTER (WHERE a.attnum > 0 AND pg_catalog.has_column_privilege(
               idx.indrelid, a.attnum, 'SELECT')) AS columns_readable
    FROM idx
    CROSS JOIN LATERAL unnest(idx.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord)
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = idx.indrelid AND a.attnum = k.attnum
    LEFT JOIN pg_catalog.pg_namespace n ON n.oid = (
        SELECT relnamespace FROM pg_catalog.pg_class WHERE oid = idx.indrelid)
    LEFT JOIN pg_catalog.pg_stats s ON s.schemaname = n.nspname
        AND s.tablename = (SELECT relname FROM pg_catalog.pg_class WHERE oid = idx.indrelid)
        AND s.attname = a.attname
    WHERE k.ord <= idx.indnkeyatts
    GROUP BY idx.oid
)
SELECT idx.relname AS name,
       idx.oid AS oid,
       idx.amname AS method,
       idx.indisvalid AS valid,
       pg_relation_size(idx.oid) AS size_bytes,
       idx.relpages AS pages,
       CASE WHEN idx.amname <> 'btree' OR w.columns_with_stats < w.key_columns
                 OR idx.reltuples < 0 OR idx.relpages < 2 THEN NULL
            ELSE greatest(0.0, 1.0 - (
                ceil(idx.reltuples * (8 + ceil(w.key_width / 8.0) * 8 + 4)
                     / ((8192 - 24 - 16) * idx.fillfactor / 100.0)) + 1
            ) / idx.relpages)
       END AS bloat_ratio,
       idx.reltuples < 0 AS never_analyzed,
       w.key_columns,
       w.columns_with_stats,
       w.columns_readable
FROM idx
LEFT JOIN widths w ON w.oid = idx.oid
ORDER BY idx.relname
