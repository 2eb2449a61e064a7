-- Estimated heap bloat of one table from the catalog and pg_stats (no extension needed):
-- expected pages = rows x (23-byte tuple header + null bitmap, aligned, + average row width
-- + 4-byte line pointer) / usable page bytes; bloat = 1 - expected / actual.
SELECT pg_relation_size(c.oid) AS size_bytes,
       c.relpages AS pages,
       CASE WHEN c.reltuples < 0 OR c.relpages < 2 OR w.width IS NULL THEN NULL
            ELSE greatest(0.0, 1.0 - ceil(
                c.reltuples * (24 + ceil(w.width / 8.0) * 8 + 4) / (8192 - 24)
            ) / c.relpages)
       END AS bloat_ratio
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN LATERAL (
    SELECT sum(s.avg_width) AS width FROM pg_catalog.pg_stats s
    WHERE s.schemaname = n.nspname AND s.tablename = c.relname
) w ON true
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
