-- The mapping table joined to the raw rows on their endpoint ({key}: the column as text, so
-- that the planner knows its distinct values and hashes the map for many rows, looks it up
-- for few), for one rule. The map's columns are renamed so that no column of the source
-- table can be ambiguous; a raw endpoint the map lacks finds no row (the caller falls back
-- to the expression: fragments/endpoint_mapped).
LEFT JOIN (
    SELECT raw AS epstats_map_raw, endpoint AS epstats_map_endpoint
    FROM epstats.endpoint_map
    WHERE rule = {rule}
) AS epstats_map ON epstats_map.epstats_map_raw = {key}
