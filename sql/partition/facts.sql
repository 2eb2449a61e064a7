-- The source table's size and rows (estimated, partitions summed), owner, and the range of
-- its timestamps as instants and as local days in %(tz)s (min/max: the timestamp index's ends).
SELECT c.reltuples::bigint AS rows, pg_catalog.pg_total_relation_size(c.oid) AS bytes,
       pg_catalog.pg_get_userbyid(c.relowner) AS owner,
       e.lowest, e.highest,
       (e.lowest AT TIME ZONE %(tz)s)::date AS first_day,
       (e.highest AT TIME ZONE %(tz)s)::date AS last_day,
       (now() AT TIME ZONE %(tz)s)::date AS today
FROM pg_catalog.pg_class c,
     LATERAL (SELECT min({instant}) AS lowest, max({instant}) AS highest FROM {table}) e
WHERE c.oid = %(oid)s::oid
