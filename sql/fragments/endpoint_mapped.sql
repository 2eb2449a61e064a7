-- The normalized endpoint of a raw row joined to the map (fragments/endpoint_join): the map's,
-- else computed (a raw endpoint not mapped yet, or too long to be a key).
coalesce(epstats_map.epstats_map_endpoint, {normalized})
