-- A relation's per-column settings that differ from a new column's: statistics target,
-- storage (when not its type's), compression, and options (n_distinct: name, value pairs).
SELECT a.attname::text AS column_name,
       CASE WHEN a.attstattarget >= 0 THEN a.attstattarget::int END AS statistics,
       CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END AS storage,
       nullif(a.attcompression::text, '') AS compression,
       (SELECT json_agg(json_build_array(o.option_name, o.option_value))
        FROM pg_catalog.pg_options_to_table(a.attoptions) o) AS options
FROM pg_catalog.pg_attribute a
JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
  AND (a.attstattarget >= 0 OR a.attstorage <> t.typstorage OR a.attcompression <> ''
       OR a.attoptions IS NOT NULL)
ORDER BY a.attnum
