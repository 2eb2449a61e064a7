-- Statistics for the map after a fill that added many keys, so that the statement joining it
-- is planned for its real size (a hash join), not for an empty table.
ANALYZE epstats.endpoint_map
