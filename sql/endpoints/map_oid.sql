-- The map's oid (NULL before `epstats init` creates it): whose lock holders a fill names.
SELECT to_regclass('epstats.endpoint_map')::oid
