-- The oldest value of the timestamp column in its statistics (pg_stats: the last ANALYZE's
-- histogram), as an instant: where first_day's bounded window ends (a day after it). NULL
-- without statistics. Reads the catalog only.
SELECT (s.histogram_bounds::text::timestamptz[])[1] AS oldest
FROM pg_catalog.pg_stats s
WHERE s.schemaname = %(schema)s AND s.tablename = %(name)s AND s.attname = %(column)s
ORDER BY s.inherited DESC
LIMIT 1
